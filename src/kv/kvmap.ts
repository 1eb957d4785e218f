/**
 * The sequenced key-value map: the state a clone server holds and a client mirrors.
 *
 * Entries are immutable; a change replaces the entry object. That makes a snapshot a plain array
 * of references taken in one step, a consistent point-in-time view that can then be streamed in
 * chunks while the map keeps changing. TTL deadlines are absolute (ms since the Unix epoch) and
 * kept in a min-heap with lazy invalidation: a heap item counts only while the entry it names is
 * still the current one. No clock is read here; callers pass `now`.
 */
import type { PackedEntry } from '../wire/chp.js';

export type Entry = PackedEntry;

interface Deadline {
  at: number;
  key: string;
  sequence: number;
}

export class KvMap {
  private readonly entries = new Map<string, Entry>();
  private deadlines: Deadline[] = [];

  get size(): number {
    return this.entries.size;
  }

  get(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  /** Stores the entry, or removes the key when the body is empty (CHP's delete). */
  put(entry: Entry): void {
    if (entry.body.length === 0) {
      this.entries.delete(entry.key);
      return;
    }
    this.entries.set(entry.key, entry);
    if (entry.expiresAt > 0)
      this.pushDeadline({ at: entry.expiresAt, key: entry.key, sequence: entry.sequence });
  }

  clear(): void {
    this.entries.clear();
    this.deadlines = [];
  }

  /** Live iteration over a subtree (key prefix); '' is everything. */
  *subtree(prefix: string): IterableIterator<Entry> {
    for (const entry of this.entries.values()) {
      if (entry.key.startsWith(prefix)) yield entry;
    }
  }

  /** A point-in-time copy of the entries under a prefix, safe to stream while the map changes. */
  snapshot(prefix: string): Entry[] {
    if (prefix === '') return Array.from(this.entries.values());
    const out: Entry[] = [];
    for (const entry of this.entries.values()) if (entry.key.startsWith(prefix)) out.push(entry);
    return out;
  }

  /** The earliest live deadline, if any (stale heap items are dropped on the way). */
  nextDeadline(): number | undefined {
    this.dropStaleDeadlines();
    return this.deadlines[0]?.at;
  }

  /**
   * Entries whose deadline has passed, oldest first. They stay in the map: the caller turns each
   * into a sequenced delete (only the active does that, promise 5).
   */
  expired(now: number, max = Infinity): Entry[] {
    const out: Entry[] = [];
    while (out.length < max) {
      this.dropStaleDeadlines();
      const top = this.deadlines[0];
      if (top === undefined || top.at > now) break;
      this.popDeadline();
      out.push(this.entries.get(top.key)!);
    }
    return out;
  }

  private dropStaleDeadlines(): void {
    for (let top = this.deadlines[0]; top !== undefined; top = this.deadlines[0]) {
      const current = this.entries.get(top.key);
      if (current !== undefined && current.sequence === top.sequence && current.expiresAt === top.at) return;
      this.popDeadline();
    }
  }

  private pushDeadline(item: Deadline): void {
    // Superseded deadlines are dropped lazily; if they pile up (a passive never expires anything
    // itself), rebuild the heap from the live entries so memory stays proportional to the map.
    if (this.deadlines.length > 2 * this.entries.size + 1024) this.rebuildDeadlines();
    const heap = this.deadlines;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= item.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }

  private rebuildDeadlines(): void {
    const live = this.deadlines.filter((d) => {
      const current = this.entries.get(d.key);
      return current !== undefined && current.sequence === d.sequence && current.expiresAt === d.at;
    });
    this.deadlines = live.sort((a, b) => a.at - b.at); // a sorted array is a valid min-heap
  }

  private popDeadline(): void {
    const heap = this.deadlines;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left;
      if (heap[child]!.at >= last.at) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}
