/**
 * Argument checks of the KV-parity API (issue 17), pure functions that throw
 * InvalidArgumentError; the facade turns them into rejections where it returns a promise.
 */
import { InvalidArgumentError } from '../errors.js';

/** `watch()` options. */
export interface WatchOptions {
  /** without fromSequence: the current values first (default true), as NATS KV watchers do */
  initial?: boolean;
  /**
   * replay every change after this sequence (from the server's history), then go live; `initial`
   * does not apply. Too old a sequence ends the watch with HistoryUnavailableError.
   */
  fromSequence?: number;
}

/** A sequence or lease id given by the application: a whole number >= 0. */
export function checkSequence(value: unknown, name: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0)
    throw new InvalidArgumentError(`${name} must be a whole number >= 0`);
  return value as number;
}

/** `lease({ ttlMs })`: whole milliseconds, at least 1000 (the server's minimum), within 4 bytes. */
export function checkLeaseTtl(options: unknown): number {
  const ttlMs = (options as { ttlMs?: unknown } | undefined)?.ttlMs;
  if (!Number.isSafeInteger(ttlMs) || (ttlMs as number) < 1000 || (ttlMs as number) > 0xffff_ffff)
    throw new InvalidArgumentError('ttlMs must be a whole number of milliseconds >= 1000');
  return ttlMs as number;
}
