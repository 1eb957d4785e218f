/**
 * A watcher in a process of its own, for tests that freeze it (SIGSTOP):
 *
 *   node --import tsx test/integration/watcher-host.ts <servers,comma> <subtree>
 *
 * It connects a native client on SUBTREE and keeps the last value its 'update' events gave for
 * each key. It prints {"ready":true} once connected, then, for each line on stdin, one line of
 * {"keys":{KEY:VALUE,...}}: what it has seen so far.
 */
import { createInterface } from 'node:readline';
import { connect } from '../../src/index.js';

const [servers, subtree] = process.argv.slice(2);
const seen: Record<string, string> = {};
const client = await connect({
  servers: servers!.split(','),
  subtree,
  mode: 'native',
  connectTimeoutMs: 20_000,
});
client.on('update', (u) => {
  if (u.value === undefined) delete seen[u.key];
  else seen[u.key] = u.value.toString();
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
createInterface({ input: process.stdin }).on('line', () =>
  process.stdout.write(`${JSON.stringify({ keys: seen })}\n`),
);
process.stdin.on('end', () => void client.close().then(() => process.exit(0)));
