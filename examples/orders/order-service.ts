/**
 * The order service: creates orders and publishes an `orders.created` event for each. A publish
 * resolves once both nodes of the pair have stored the event.
 *
 *   npx tsx examples/orders/order-service.ts [COUNT]     # default 10 orders
 */
import { connectService, ORDER_CREATED, type Order } from './common.js';

const count = Number(process.argv[2] ?? 10);
if (!Number.isInteger(count) || count < 1) throw new Error('COUNT must be a positive whole number');

const client = await connectService();
const run = Date.now().toString(36); // order ids stay unique when the example runs again
const customers = ['ada@example.com', 'grace@example.com', 'linus@example.com'];
for (let i = 1; i <= count; i++) {
  const order: Order = { id: `${run}-${i}`, customer: customers[i % customers.length]!, total: 10 * i };
  const sequence = await client.publish(ORDER_CREATED, JSON.stringify(order), {
    headers: { 'content-type': 'application/json' },
  });
  console.log(`orders: created order ${order.id} (event sequence ${sequence})`);
}
await client.close();
console.log(`orders: ${count} orders created`);
