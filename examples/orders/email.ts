/**
 * The email service: the one member of the consumer group `email`. It gets every order too (a
 * group of its own), and mails each customer once.
 *
 *   npx tsx examples/orders/email.ts
 */
import { connectService, onShutdown, ORDER_CREATED, type Order } from './common.js';

const name = process.argv[2] ?? 'email';
const client = await connectService();
const orders = client.subscribe(ORDER_CREATED, { group: 'email' });
onShutdown(async () => {
  await orders.unsubscribe();
  await client.close();
});
await orders.ready();
console.log(`${name}: ready, in group email`);

for await (const event of orders) {
  const order = JSON.parse(event.data.toString()) as Order;
  console.log(`${name}: emailed ${order.customer} about order ${order.id} (delivery ${event.deliveryCount})`);
  await event.ack();
}
