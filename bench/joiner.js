/* global process, setTimeout */
/**
 * A late joiner for the snapshot benchmark, in plain JavaScript on the compiled client (dist/, built
 * by `npm run bench`), so that its RSS is what a client process holds and not the TypeScript
 * loader's. Forked by bench/suites/snapshot.ts with --expose-gc; it receives one request over IPC
 * ({ servers, subtree, timeoutMs, retryUnavailable }), connects, and answers with the time to load the replica and
 * its memory, then exits. `doneAt` is when the replica was loaded, on CLOCK_MONOTONIC, which every
 * process on the machine shares: the durability suite times a restart from the servers' spawn to it.
 */
import { connect } from '../dist/src/index.js';

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * With `retryUnavailable` (the durability suite, while a pair restarts) a connect() that fails with
 * UnavailableError (ERR_UNAVAILABLE: the only node answering has no complete history yet) is
 * tried again, every 10 ms until `timeoutMs`; `attempts` says how many connects it took.
 */
async function join({ servers, subtree, timeoutMs, retryUnavailable = false }) {
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const first = nowMs();
  let started = first;
  let client;
  let attempts = 0;
  while (client === undefined) {
    started = nowMs();
    attempts++;
    try {
      client = await connect({
        servers,
        subtree,
        mode: 'native',
        connectTimeoutMs: Math.max(1, timeoutMs - (started - first)),
        requestTimeoutMs: 10_000,
      });
    } catch (error) {
      const again = retryUnavailable && error?.code === 'ERR_UNAVAILABLE' && nowMs() - first < timeoutMs;
      if (!again) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  const doneAt = nowMs();
  const ms = doneAt - started;
  const rssReady = process.memoryUsage().rss;
  globalThis.gc?.();
  const mem = process.memoryUsage();
  const keys = client.entries().size;
  const sequence = client.sequence;
  await client.close();
  return { ms, doneAt, attempts, keys, sequence, rssBefore, rssReady, rss: mem.rss, heapUsed: mem.heapUsed };
}

process.once('message', (req) => {
  join(req).then(
    (result) => process.send({ result }, () => process.exit(0)),
    (error) => process.send({ error: String(error?.stack ?? error) }, () => process.exit(1)),
  );
});
process.on('disconnect', () => process.exit(0));
