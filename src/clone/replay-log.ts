/**
 * A bounded log of the most recent sequenced changes, so that a passive or a client that missed a
 * few updates can resume from its last sequence instead of taking a whole snapshot. Sequences in
 * the log are contiguous; `since(n)` answers only when the log still covers n + 1.
 */
import type { Entry } from './kvmap.js';

export class ReplayLog {
  private readonly ring: (Entry | undefined)[];
  private start = 0; // index of the oldest entry
  private count = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<Entry | undefined>(Math.max(1, capacity));
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
    if (this.count === this.ring.length) {
      this.ring[this.start] = entry;
      this.start = (this.start + 1) % this.ring.length;
    } else {
      this.ring[(this.start + this.count) % this.ring.length] = entry;
      this.count++;
    }
  }

  clear(): void {
    this.ring.fill(undefined);
    this.start = 0;
    this.count = 0;
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
