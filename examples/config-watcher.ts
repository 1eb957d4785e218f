/**
 * A configuration watcher: mirrors /app/config/ and reacts to every change, across failovers.
 *
 *   npm start                                  # in one terminal: the local pair
 *   npx tsx examples/config-watcher.ts         # in another
 *   npx tsx examples/producer.ts               # in a third
 */
import { connect } from '../src/index.js';

const servers = (process.env.TWINSTAR_SERVERS ?? 'tcp://127.0.0.1:5556,tcp://127.0.0.1:5566').split(',');
const client = await connect({ servers, subtree: '/app/config/' });
console.log(`watching /app/config/ on ${client.server} (sequence ${client.sequence})`);

client.on('failover', ({ to, sequence }) => console.log(`failover: now on ${to} at sequence ${sequence}`));
client.on('resync', () => console.log('resync: the replica was replaced by a full snapshot'));
client.on('degraded', (degraded) =>
  console.log(degraded ? 'pair degraded: one node only' : 'pair healthy again'),
);

const stop = () => void client.close();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

// Current values first, then every change exactly once, in order; the loop ends on close().
for await (const { key, value, seq, deleted } of client.watch()) {
  if (deleted) console.log(`#${seq} ${key} removed`);
  else console.log(`#${seq} ${key} = ${value!.toString()}`);
}
