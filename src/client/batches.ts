/**
 * How a native client cuts its queued writes into write requests (TSET) that the server accepts.
 * A server refuses a batch with more than maxBatchEntries writes or maxBatchBytes of packed batch
 * (TERROR 'batch-too-large', which names its limits); the client cuts batches to its own copy of
 * those limits and, told of smaller ones, adopts them and sends the refused writes again.
 */
import type { Limits } from '../wire/index.js';

/** A queued write as the sizer sees it: its packed size (sizes.ts `packedSize`), counted once. */
export interface BatchWrite {
  readonly size: number;
}

export class BatchSizer {
  private maxEntries: number;
  private maxBytes: number;

  constructor(limits: Pick<Limits, 'maxBatchEntries' | 'maxBatchBytes'>, cap = Infinity) {
    this.maxEntries = Math.max(1, Math.min(cap, limits.maxBatchEntries));
    this.maxBytes = Math.max(1, limits.maxBatchBytes);
  }

  get limits(): { readonly entries: number; readonly bytes: number } {
    return { entries: this.maxEntries, bytes: this.maxBytes };
  }

  /**
   * How many writes from the front of `queue` go in the next batch: as many as fit both limits,
   * and always at least one (a write too big on its own is refused by the server, and failed).
   */
  next(queue: readonly BatchWrite[]): number {
    let bytes = 0;
    let n = 0;
    for (; n < queue.length && n < this.maxEntries; n++) {
      bytes += queue[n]!.size;
      if (bytes > this.maxBytes && n > 0) break;
    }
    return Math.max(n, Math.min(1, queue.length));
  }

  /**
   * A server refused a batch of `writes` as too large, naming its limits (TERROR's `fit`, absent
   * from a server that does not). Returns whether sending those writes again in smaller batches
   * can help: false for a single write, which no split shrinks.
   */
  refused(
    writes: readonly BatchWrite[],
    fit?: { readonly maxBatchEntries: number; readonly maxBatchBytes: number },
  ): boolean {
    const sent = writes.length;
    if (sent <= 1) return false;
    let sentBytes = 0;
    for (const w of writes) sentBytes += w.size;
    if (fit !== undefined) {
      this.maxEntries = Math.min(this.maxEntries, fit.maxBatchEntries);
      this.maxBytes = Math.min(this.maxBytes, fit.maxBatchBytes);
    }
    // Limits the refused batch already met (or none given) say nothing: halve, so retries shrink.
    if (sent <= this.maxEntries && sentBytes <= this.maxBytes)
      this.maxEntries = Math.max(1, Math.ceil(sent / 2));
    return true;
  }
}
