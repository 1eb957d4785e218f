/**
 * A first-in first-out queue with O(1) `push` and `shift`. `Array.prototype.shift` moves every
 * remaining element on a large array, so draining n items that way costs O(n²): a profile of a
 * frozen node (issue 13) spent 11.9 s of a 13.4 s freeze there. This queue reads from a head index
 * and drops the consumed prefix only once it is more than half of the storage, so each item is
 * copied at most once on average.
 */
const COMPACT_AFTER = 1024;

export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, left in the queue; undefined when empty. */
  peek(): T | undefined {
    return this.head === this.items.length ? undefined : this.items[this.head];
  }

  /** The oldest item, removed from the queue; undefined when empty. */
  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined; // no reference kept to what was handed out
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Every item, oldest first, leaving the queue empty. */
  takeAll(): T[] {
    const all = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return all;
  }
}
