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
/**
 * Items of the heap looked at per `schedule` while it holds more than twice what was live at the
 * last sweep (plus SLACK), cursor going round, the dead ones taken out. A rebuild filters and
 * sorts the whole heap in one call, and its bound is the owner's entry count: a map of 300k keys
 * with 10 keys whose TTL is renewed at full speed piled 600k dead items and then stalled 352 ms to
 * rebuild (both nodes: a passive schedules too). Swept as it grows, the heap stays within about
 * twice what is live, and the rebuild is a backstop.
 */
const SWEEP_PER_SCHEDULE = 2;

export class Deadlines<T extends Scheduled> {
  private heap: T[] = [];
  /** where the sweep looks next */
  private cursor = 0;
  /** live items the sweep found in its current round, and in its last whole one */
  private liveThisRound = 0;
  private liveLastRound = 0;

  constructor(private readonly options: DeadlinesOptions<T>) {}

  /** Items held, dead ones included (for memory bounds and tests). */
  get held(): number {
    return this.heap.length;
  }

  schedule(item: T): void {
    if (this.heap.length > 2 * this.liveLastRound + SLACK) this.sweep(SWEEP_PER_SCHEDULE);
    if (this.heap.length > 2 * this.options.liveBound() + SLACK) this.rebuild();
    const heap = this.heap;
    heap.push(item);
    this.siftUp(heap.length - 1);
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
    this.cursor = 0;
    this.liveThisRound = 0;
    this.liveLastRound = 0;
  }

  /** Looks at up to `count` items from the cursor on, taking the dead ones out. */
  private sweep(count: number): void {
    for (let n = 0; n < count && this.heap.length > 0; n++) {
      if (this.cursor >= this.heap.length) {
        this.cursor = 0;
        this.liveLastRound = this.liveThisRound;
        this.liveThisRound = 0;
      }
      if (this.options.isLive(this.heap[this.cursor]!)) {
        this.cursor++;
        this.liveThisRound++;
      } else this.removeAt(this.cursor); // the last item moved here: look at it next
    }
  }

  /** Takes item `i` out: the last item takes its place and moves up or down to where it belongs. */
  private removeAt(i: number): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (i === heap.length) return;
    heap[i] = last;
    this.siftUp(i);
    if (heap[i] === last) this.siftDown(i);
  }

  private siftUp(from: number): void {
    const heap = this.heap;
    const item = heap[from]!;
    let i = from;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= item.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
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
    heap[0] = last;
    this.siftDown(0);
  }

  private siftDown(from: number): void {
    const heap = this.heap;
    const last = heap[from]!;
    let i = from;
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
