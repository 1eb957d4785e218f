/**
 * Plain CHP (RFC 12) writes are fire-and-forget: the server never answers a KVSET. The one proof
 * a write arrived is seeing it published back, so the CLI in CHP mode watches its own subtree for
 * the same key with the same value (or a delete) at a sequence after the one it connected at.
 *
 * Start `awaitEcho` BEFORE sending the write, so that an echo arriving at once is not missed.
 * Uses only the public client API ('update' events).
 */
import type { Client, Update } from '../client/index.js';

export interface Echo {
  /** the sequence the write was published at, or undefined if it was not seen in time */
  readonly seen: Promise<number | undefined>;
  /** stop waiting (resolves `seen` with undefined if it has not resolved) */
  cancel(): void;
}

/**
 * Resolves with the sequence of the first published change that matches: `key`, sequence above
 * `after`, and `value` (undefined: a delete). Gives up after `ms`.
 */
export function awaitEcho(
  client: Pick<Client, 'on' | 'off'>,
  key: string,
  value: Buffer | undefined,
  after: number,
  ms: number,
): Echo {
  let finish: (seq: number | undefined) => void = () => undefined;
  const seen = new Promise<number | undefined>((resolve) => {
    const timer = setTimeout(() => done(undefined), ms);
    const listener = (u: Update) => {
      if (matches(u, key, value, after)) done(u.seq);
    };
    const done = (seq: number | undefined) => {
      clearTimeout(timer);
      client.off('update', listener);
      resolve(seq);
    };
    finish = done;
    client.on('update', listener);
  });
  return { seen, cancel: () => finish(undefined) };
}

export function matches(u: Update, key: string, value: Buffer | undefined, after: number): boolean {
  if (u.key !== key || u.seq <= after) return false;
  if (value === undefined) return u.deleted;
  return !u.deleted && u.value !== undefined && u.value.equals(value);
}
