/**
 * Publish loads for the events suite, for any publisher (twinstar's `client.publish`, JetStream's
 * `js.publish`): a pipelined one (up to `window` publishes unacknowledged) and a paced one (a fixed
 * rate). Every event carries its publish time (CLOCK_MONOTONIC ms as a double in its first 8 bytes:
 * see lib/load.ts). Every loop is bounded by a count and a deadline.
 */
import { nowMs, sleep } from './proc.js';
import { paced, value, type PacedResult, type WriteResult } from './load.js';

/** Publishes event `i` with data `body`; resolves once the broker acknowledged it. */
export type Publish = (i: number, body: Buffer) => Promise<unknown>;

/** As fast as acknowledgements come back, at most `window` in flight, `max` in all, for `ms`. */
export async function pipelinedPublishes(
  publish: Publish,
  o: { ms: number; window: number; max: number; drainMs?: number },
): Promise<WriteResult> {
  const t0 = nowMs();
  const deadline = t0 + o.ms;
  let issued = 0;
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  let lastAck = t0;
  const onDone = () => {
    done++;
    lastAck = nowMs();
  };
  const onFail = (error: unknown) => {
    failed++;
    firstError ??= String(error);
  };
  for (let turn = 0; turn < 10_000_000; turn++) {
    if (issued >= o.max || nowMs() >= deadline || failed > 100) break;
    let n = 0;
    while (issued - done - failed < o.window && issued < o.max && n++ < 500) {
      publish(issued, value(true)).then(onDone, onFail);
      issued++;
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const drainBy = nowMs() + (o.drainMs ?? 30_000);
  while (done + failed < issued && nowMs() < drainBy) await sleep(2);
  if (done + failed < issued) failed += issued - done - failed;
  const elapsed = lastAck - t0;
  return { done, failed, ms: elapsed, rate: (done / elapsed) * 1000, firstError };
}

export type { PacedResult };

/** `rate` publishes per second for `ms`, at most `window` unacknowledged (lib/load.ts `paced`). */
export function pacedPublishes(
  publish: Publish,
  rate: number,
  ms: number,
  window = 10_000,
): Promise<PacedResult> {
  return paced((i) => publish(i, value(true)), rate, ms, window);
}
