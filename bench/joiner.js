/* global process */
/**
 * A late joiner for the snapshot benchmark, in plain JavaScript on the compiled client (dist/, built
 * by `npm run bench`), so that its RSS is what a client process holds and not the TypeScript
 * loader's. Forked by bench/suites/snapshot.ts with --expose-gc; it receives one request over IPC
 * ({ servers, subtree, timeoutMs }), connects, and answers with the time to load the replica and
 * its memory, then exits.
 */
import { connect } from '../dist/src/index.js';

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function join({ servers, subtree, timeoutMs }) {
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const started = nowMs();
  const client = await connect({
    servers,
    subtree,
    mode: 'native',
    connectTimeoutMs: timeoutMs,
    requestTimeoutMs: 10_000,
  });
  const ms = nowMs() - started;
  const rssReady = process.memoryUsage().rss;
  globalThis.gc?.();
  const mem = process.memoryUsage();
  const keys = client.entries().size;
  const sequence = client.sequence;
  await client.close();
  return { ms, keys, sequence, rssBefore, rssReady, rss: mem.rss, heapUsed: mem.heapUsed };
}

process.once('message', (req) => {
  join(req).then(
    (result) => process.send({ result }, () => process.exit(0)),
    (error) => process.send({ error: String(error?.stack ?? error) }, () => process.exit(1)),
  );
});
process.on('disconnect', () => process.exit(0));
