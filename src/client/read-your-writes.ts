/**
 * Read-your-writes: a write acknowledged as sequence S resolves only once the client's replica
 * has applied S (or something newer), so that `await set(k, v)` followed by `get(k)` sees v.
 * Acknowledgements come on the snapshot socket and the change itself on the publisher, and the
 * two race: without this wait one read in 200 saw the old value.
 *
 * A min-heap on the acknowledged sequence: adding is O(log n), and each time the replica moves
 * the caller releases every waiter at or below its sequence, in sequence order, each in O(log n).
 * When the replica is ahead already (the common case) nothing is stored at all. Deadlines are
 * checked by a scan that runs only once the earliest deadline has passed, so it costs nothing on
 * the hot path. Pure: no sockets, time comes from the caller.
 */

interface Waiter<T> {
  readonly sequence: number;
  readonly deadline: number;
  readonly item: T;
}

export class AppliedWaiters<T> {
  private heap: Waiter<T>[] = [];
  private earliestDeadline = Infinity;
  /** when a waiter was last added to an empty set or released: for `stalled` */
  private progressAt = 0;

  get size(): number {
    return this.heap.length;
  }

  /** The lowest sequence waited for (Infinity when none). */
  get lowest(): number {
    return this.heap[0]?.sequence ?? Infinity;
  }

  add(sequence: number, deadline: number, item: T, now: number): void {
    const heap = this.heap;
    if (heap.length === 0) this.progressAt = now;
    heap.push({ sequence, deadline, item });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.sequence <= heap[i]!.sequence) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
    if (deadline < this.earliestDeadline) this.earliestDeadline = deadline;
  }

  /** Hands every waiter whose sequence is at or below `applied` to `release`, lowest first. */
  release(applied: number, now: number, release: (item: T, sequence: number) => void): void {
    if (this.lowest > applied) return;
    this.progressAt = now;
    while (this.heap.length > 0 && this.heap[0]!.sequence <= applied) {
      const top = this.pop();
      release(top.item, top.sequence);
    }
    if (this.heap.length === 0) this.earliestDeadline = Infinity;
  }

  /**
   * True (once per `afterMs`) when writes have waited that long with none released: the change
   * they wait for may have been lost on the way, and the caller should resync.
   */
  stalled(now: number, afterMs: number): boolean {
    if (this.heap.length === 0 || now - this.progressAt <= afterMs) return false;
    this.progressAt = now;
    return true;
  }

  /** Hands every waiter whose deadline has come to `expire`. */
  expire(now: number, expire: (item: T, sequence: number) => void): void {
    if (now < this.earliestDeadline) return;
    const keep: Waiter<T>[] = [];
    const expired: Waiter<T>[] = [];
    let earliest = Infinity;
    for (const w of this.heap) {
      if (w.deadline <= now) expired.push(w);
      else {
        keep.push(w);
        if (w.deadline < earliest) earliest = w.deadline;
      }
    }
    // Rebuild the heap from what is left: a sorted array is a valid min-heap.
    this.heap = keep.sort((a, b) => a.sequence - b.sequence);
    this.earliestDeadline = earliest;
    for (const w of expired) expire(w.item, w.sequence);
  }

  /** Takes every waiter out (closing). */
  drain(each: (item: T, sequence: number) => void): void {
    const all = this.heap;
    this.heap = [];
    this.earliestDeadline = Infinity;
    for (const w of all) each(w.item, w.sequence);
  }

  private pop(): Waiter<T> {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && heap[left]!.sequence < heap[smallest]!.sequence) smallest = left;
        if (right < heap.length && heap[right]!.sequence < heap[smallest]!.sequence) smallest = right;
        if (smallest === i) break;
        [heap[smallest], heap[i]] = [heap[i]!, heap[smallest]!];
        i = smallest;
      }
    }
    return top;
  }
}
