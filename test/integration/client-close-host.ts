/**
 * A host process for a client that closes while a burst of updates is still arriving. Usage:
 *
 *   node --import tsx test/integration/client-close-host.ts <endpoint>
 *
 * It connects (native, whole map), waits for 2,000 updates, blocks for 300 ms so that a backlog
 * builds up on its subscriber, closes the client while that backlog drains, waits a moment for the sockets' receive loops to end, and prints one JSON line
 * { event: 'survived', updates } before exiting 0. A crash exits non-zero without that line.
 */
import { connect } from '../../src/index.js';

const [endpoint] = process.argv.slice(2);
const client = await connect({ servers: [endpoint!], mode: 'native', connectTimeoutMs: 10_000 });
let updates = 0;
await new Promise<void>((resolve) =>
  client.on('update', () => {
    if (++updates === 2000) resolve();
  }),
);
// Fall behind the burst (as a busy application does), so that a backlog waits on the SUB...
const until = Date.now() + 300;
while (Date.now() < until);
// ...and close the client in the middle of draining it.
await new Promise((resolve) => setImmediate(resolve));
await client.close();
await new Promise((resolve) => setTimeout(resolve, 500));
process.stdout.write(`${JSON.stringify({ event: 'survived', updates })}\n`);
