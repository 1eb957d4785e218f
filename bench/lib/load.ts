/**
 * Load generators on the native client: awaiting writers, a pipelined writer (many set() promises
 * in flight) and a paced writer. Every loop is bounded by a count and a deadline. Values can carry
 * the write time (CLOCK_MONOTONIC ms as a double in the first 8 bytes) for latency measurement.
 */
import { connect, type Client, type ClientOptions } from '../../src/index.js';
import { nowMs, sleep } from './proc.js';

export const VALUE_BYTES = 100;

/**
 * The uncounted warm-up before awaited writes are measured, the same for every system: up to
 * WARM_UP_WRITES writes or WARM_UP_MS, whichever comes first. A fresh twinstar process runs its
 * write path at a quarter of its speed until V8 has optimised it, about 10,000 writes
 * (docs/performance.md, "A fresh pair is slow for its first seconds"); a C or Go server needs
 * none, and is not slowed by it.
 */
export const WARM_UP_WRITES = 10_000;
export const WARM_UP_MS = 3000;

/** A 100-byte value; stamped with the current time when `stamp` is set. */
export function value(stamp: boolean, fill = 0x61): Buffer {
  const buf = Buffer.alloc(VALUE_BYTES, fill);
  if (stamp) buf.writeDoubleBE(nowMs(), 0);
  return buf;
}

/**
 * A writing client. Its own subtree is one nothing is written to, so that measuring writes does
 * not also measure the client applying its own updates (fan-out is measured on its own).
 */
export async function writer(servers: string[], options: Partial<ClientOptions> = {}): Promise<Client> {
  return connect({
    servers,
    subtree: '/bench-writer/',
    mode: 'native',
    connectTimeoutMs: 15_000,
    ...options,
  });
}

export interface WriteResult {
  done: number;
  failed: number;
  ms: number;
  /** writes per second acknowledged */
  rate: number;
  firstError?: string;
}

/** Each client writes and awaits each write, all clients at once, for `ms`. */
export async function awaitingWrites(
  clients: Client[],
  ms: number,
  key: (client: number, i: number) => string,
  maxPerClient = 10_000_000,
): Promise<WriteResult> {
  const body = value(false);
  const t0 = nowMs();
  const deadline = t0 + ms;
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  await Promise.all(
    clients.map(async (client, c) => {
      for (let i = 0; i < maxPerClient && nowMs() < deadline; i++) {
        try {
          await client.set(key(c, i), body);
          done++;
        } catch (error) {
          failed++;
          firstError ??= String(error);
          if (failed > 100) return;
        }
      }
    }),
  );
  const elapsed = nowMs() - t0;
  return { done, failed, ms: elapsed, rate: (done / elapsed) * 1000, firstError };
}

export interface PipelineOptions {
  /** stop issuing after this long */
  ms: number;
  /** at most this many writes unacknowledged at once */
  window: number;
  /** and at most this many writes in all */
  max: number;
  key: (i: number) => string;
  stamp?: boolean;
  /** how long to wait for the last acknowledgements */
  drainMs?: number;
}

/** One client with up to `window` writes in flight; the rate counts acknowledged writes. */
export function pipelinedWrites(client: Client, o: PipelineOptions): Promise<WriteResult> {
  const plain = value(false);
  const t0 = nowMs();
  const deadline = t0 + o.ms;
  let issued = 0;
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  let lastAck = t0;
  let scheduled = false;
  let stopped = false;
  return new Promise<WriteResult>((resolve, reject) => {
    const finish = () => {
      stopped = true;
      clearTimeout(guard);
      const elapsed = lastAck - t0;
      resolve({ done, failed, ms: elapsed, rate: (done / elapsed) * 1000, firstError });
    };
    const guard = setTimeout(
      () => {
        if (stopped) return;
        stopped = true;
        reject(new Error(`pipelined writes: ${issued - done - failed} of ${issued} never settled`));
      },
      o.ms + (o.drainMs ?? 30_000),
    );
    const settled = () => {
      if (stopped) return;
      if (done + failed === issued && (issued >= o.max || nowMs() >= deadline)) return finish();
      if (!scheduled) {
        scheduled = true;
        setImmediate(issue);
      }
    };
    const onDone = () => {
      done++;
      lastAck = nowMs();
      settled();
    };
    const onFail = (error: unknown) => {
      failed++;
      firstError ??= String(error);
      settled();
    };
    const issue = () => {
      scheduled = false;
      if (stopped) return;
      let n = 0;
      while (issued - done - failed < o.window && issued < o.max) {
        if ((n++ & 63) === 0 && nowMs() >= deadline) break;
        const body = o.stamp ? value(true) : plain;
        client.set(o.key(issued), body).then(onDone, onFail);
        issued++;
      }
      if (issued === 0) finish();
    };
    issue();
  });
}

/**
 * Fills a server with keys `key(from)`..`key(to - 1)` of 100-byte values through one pipelined
 * client, as fast as the acknowledgements come back (bounded: 300 s, then 60 s to drain); throws
 * if any write fails. How the snapshot and durability suites load 100k or 1M keys.
 */
export async function loadKeys(
  client: Client,
  from: number,
  to: number,
  key: (i: number) => string,
  window: number,
): Promise<WriteResult> {
  const w = await pipelinedWrites(client, {
    ms: 300_000,
    window,
    max: to - from,
    key: (i) => key(from + i),
    drainMs: 60_000,
  });
  if (w.failed > 0 || w.done !== to - from)
    throw new Error(`loading keys ${from} to ${to}: ${w.failed} failed (${w.firstError})`);
  return w;
}

export interface PacedResult extends WriteResult {
  issued: number;
  /** how far behind schedule the writer ended (writes), e.g. when acknowledgements lag */
  behind: number;
}

/**
 * Calls `send(i)` at `rate` per second for `ms`, with at most `window` unsettled, then waits up to
 * `drainMs` for the rest to settle. The one paced loop of the benchmarks: writes, publishes, and
 * the peers' writes all go through it.
 */
export async function paced(
  send: (i: number) => Promise<unknown>,
  rate: number,
  ms: number,
  window = 50_000,
  drainMs = 20_000,
): Promise<PacedResult> {
  const t0 = nowMs();
  let issued = 0;
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  let behind = 0;
  for (let tick = 0; tick < 1_000_000; tick++) {
    const now = nowMs();
    if (now - t0 >= ms) break;
    const due = Math.floor(((now - t0) / 1000) * rate);
    while (issued < due && issued - done - failed < window) {
      send(issued).then(
        () => done++,
        (error: unknown) => {
          failed++;
          firstError ??= String(error);
        },
      );
      issued++;
    }
    behind = due - issued;
    await sleep(1);
  }
  const elapsed = nowMs() - t0;
  const drainBy = nowMs() + drainMs;
  while (done + failed < issued && nowMs() < drainBy) await sleep(5);
  return { issued, done, failed, ms: elapsed, rate: (issued / elapsed) * 1000, behind, firstError };
}

/** Writes at `rate` per second for `ms`, stamped, with at most `window` in flight. */
export function pacedWrites(
  client: Client,
  rate: number,
  ms: number,
  key: (i: number) => string,
  window = 50_000,
): Promise<PacedResult> {
  return paced((i) => client.set(key(i), value(true)), rate, ms, window);
}
