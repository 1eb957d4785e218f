/**
 * A bounded log of the most recent sequenced changes, so that a passive or a client that missed a
 * few updates can resume from its last sequence instead of taking a whole snapshot. Sequences in
 * the log are contiguous; `since(n)` answers only when the log still covers n + 1.
 *
 * It is bounded twice: by entry count and by bytes (`footprint`), oldest out first. Counting alone
 * let one key overwritten with 1 MiB values hold 100k × 1 MiB; the byte budget keeps that at the
 * budget, and a resume from further back than the log reaches gets a snapshot instead.
 */
import type { Entry } from '../kv/index.js';
import { footprint } from '../wire/index.js';

export class ReplayLog {
  private readonly ring: (Entry | undefined)[];
  private start = 0; // index of the oldest entry
  private count = 0;
  private held = 0;
  /** entries evicted to stay within the byte budget (not those pushed out by count) */
  evictedForBytes = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes = Infinity,
  ) {
    this.ring = new Array<Entry | undefined>(Math.max(1, capacity));
  }

  /** entries held */
  get size(): number {
    return this.count;
  }

  /** bytes held, as `footprint` counts them */
  get bytes(): number {
    return this.held;
  }

  get firstSequence(): number | undefined {
    return this.count === 0 ? undefined : this.ring[this.start]!.sequence;
  }

  get lastSequence(): number | undefined {
    return this.count === 0
      ? undefined
      : this.ring[(this.start + this.count - 1) % this.ring.length]!.sequence;
  }

  append(entry: Entry): void {
    const last = this.lastSequence;
    if (last !== undefined && entry.sequence !== last + 1) this.clear(); // never hold a gap
    if (this.count === this.ring.length) this.dropOldest();
    this.ring[(this.start + this.count) % this.ring.length] = entry;
    this.count++;
    this.held += footprint(entry);
    // The newest entry always stays: it is no bigger than one message the limits allow.
    while (this.held > this.maxBytes && this.count > 1) {
      this.dropOldest();
      this.evictedForBytes++;
    }
  }

  clear(): void {
    this.ring.fill(undefined);
    this.start = 0;
    this.count = 0;
    this.held = 0;
  }

  private dropOldest(): void {
    this.held -= footprint(this.ring[this.start]!);
    this.ring[this.start] = undefined;
    this.start = (this.start + 1) % this.ring.length;
    this.count--;
  }

  /** Whether every change after `sequence` up to the newest is still held. */
  covers(sequence: number): boolean {
    const first = this.firstSequence;
    const last = this.lastSequence;
    if (first === undefined || last === undefined) return false;
    return sequence + 1 >= first && sequence <= last;
  }

  /** Changes with a sequence above `sequence`, oldest first, or undefined when the log no longer has them. */
  since(sequence: number, prefix = ''): Entry[] | undefined {
    if (!this.covers(sequence)) return undefined;
    const out: Entry[] = [];
    const skip = sequence + 1 - this.firstSequence!;
    for (let i = skip; i < this.count; i++) {
      const entry = this.ring[(this.start + i) % this.ring.length]!;
      if (entry.key.startsWith(prefix)) out.push(entry);
    }
    return out;
  }
}
