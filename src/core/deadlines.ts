/**
 * An active-only deadline scheduler: a min-heap of items keyed by an absolute deadline (ms since
 * the Unix epoch). Only the active acts on what falls due: TTL expiry today (promise 5), the event
 * bus's redelivery timers later. A passive schedules too, so that it can take over the deadlines
 * at promotion, but never asks what is due.
 *
 * Pure and clock-free: callers pass `now`. Invalidation is lazy: an item counts only while the
 * owner's `isLive` says so (the entry it names is still the current one, the delivery is still
 * unacknowledged), so re-scheduling or cancelling costs nothing here. Dead items are dropped when
 * they reach the top, and the heap is rebuilt from the live ones when dead items pile up (a
 * passive never pops anything), so memory stays proportional to `liveBound()`.
 */

/** What the heap holds: the owner's item, carrying its own deadline (no wrapper object per item). */
export interface Scheduled {
  readonly at: number;
}

export interface DeadlinesOptions<T extends Scheduled> {
  /** Whether a scheduled item still counts. */
  isLive(item: T): boolean;
  /** The most items that can be live at once (the owner's entry count): bounds dead items. */
  liveBound(): number;
}

/** Dead items tolerated beyond twice the live bound before the heap is rebuilt. */
const SLACK = 1024;

export class Deadlines<T extends Scheduled> {
  private heap: T[] = [];

  constructor(private readonly options: DeadlinesOptions<T>) {}

  /** Items held, dead ones included (for memory bounds and tests). */
  get held(): number {
    return this.heap.length;
  }

  schedule(item: T): void {
    if (this.heap.length > 2 * this.options.liveBound() + SLACK) this.rebuild();
    const heap = this.heap;
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

  /** The earliest live deadline, if any. */
  next(): number | undefined {
    this.dropDead();
    return this.heap[0]?.at;
  }

  /** How long until the earliest live deadline (0 if already due), for a timer; undefined if none. */
  delay(now: number): number | undefined {
    const at = this.next();
    return at === undefined ? undefined : Math.max(0, at - now);
  }

  /**
   * Live items whose deadline is at or before `now`, earliest first, at most `max`. Each is
   * reported once: it leaves the heap (the owner acts on it, or schedules it again).
   */
  due(now: number, max = Infinity): T[] {
    const out: T[] = [];
    while (out.length < max) {
      this.dropDead();
      const top = this.heap[0];
      if (top === undefined || top.at > now) break;
      this.pop();
      out.push(top);
    }
    return out;
  }

  clear(): void {
    this.heap = [];
  }

  private dropDead(): void {
    for (let top = this.heap[0]; top !== undefined && !this.options.isLive(top); top = this.heap[0])
      this.pop();
  }

  private rebuild(): void {
    // A sorted array is a valid min-heap.
    this.heap = this.heap.filter((item) => this.options.isLive(item)).sort((a, b) => a.at - b.at);
  }

  private pop(): void {
    const heap = this.heap;
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
