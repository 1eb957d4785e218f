/**
 * The billing service: a member of the consumer group `billing`. Run two instances: each order
 * goes to one of them, and is billed once.
 *
 *   npx tsx examples/orders/billing.ts billing-1
 *   npx tsx examples/orders/billing.ts billing-2
 */
import { connectService, onShutdown, ORDER_CREATED, type Order } from './common.js';

const name = process.argv[2] ?? 'billing';
const client = await connectService();
const orders = client.subscribe(ORDER_CREATED, { group: 'billing', ackWaitMs: 30_000, maxDeliver: 5 });
onShutdown(async () => {
  await orders.unsubscribe(); // leaves the group at once: what it held goes to the other instance
  await client.close();
});
await orders.ready();
console.log(`${name}: ready, in group billing`);

for await (const event of orders) {
  const order = JSON.parse(event.data.toString()) as Order;
  try {
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80)); // charging the card
    console.log(`${name}: billed order ${order.id}, ${order.total} EUR (delivery ${event.deliveryCount})`);
    await event.ack();
  } catch (error) {
    console.error(`${name}: order ${order.id} failed, again in 5 s: ${String(error)}`);
    await event.nak(5_000);
  }
}
