/**
 * A watcher in a process of its own, for tests that freeze it (SIGSTOP):
 *
 *   node --import tsx test/integration/watcher-host.ts <servers,comma> <subtree>
 *
 * It connects a native client on SUBTREE and keeps, for each key, the SHA-256 (hex) of the last
 * value its 'update' events gave. It prints {"ready":true} once connected, then, for each line on
 * stdin, one line of {"keys":{KEY:SHA256,...}}: what it has seen so far. Digests, not the values:
 * the test's values are 64 KiB each, and a dump of them (20 MB of JSON, made and parsed at every
 * poll) took longer than the test waits on a loaded machine.
 */
import { createHash } from 'node:crypto';
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
  else seen[u.key] = createHash('sha256').update(u.value).digest('hex');
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
createInterface({ input: process.stdin }).on('line', () =>
  process.stdout.write(`${JSON.stringify({ keys: seen })}\n`),
);
process.stdin.on('end', () => void client.close().then(() => process.exit(0)));
