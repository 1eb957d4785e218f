/**
 * A push-to-pull queue: listeners push, `for await` pulls. Unbounded on purpose: a watcher must
 * see every change exactly once, so a slow consumer costs memory, never a lost update. Breaking
 * out of the loop (or `return()`) detaches it.
 */
export class WatchStream<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private head = 0;
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private rejectWaiting: ((error: Error) => void) | undefined;
  private ended = false;
  /** the error the stream ended with: next() rejects with it once the items before it are taken */
  private error: Error | undefined;

  constructor(private readonly detach: () => void) {}

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      this.rejectWaiting = undefined;
      resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.detach();
    if (this.waiting) {
      const [resolve, reject] = [this.waiting, this.rejectWaiting];
      this.waiting = undefined;
      this.rejectWaiting = undefined;
      if (this.error && reject) {
        const error = this.error;
        this.error = undefined;
        reject(error);
      } else resolve({ value: undefined, done: true });
    }
  }

  /** Ends the stream with an error: a `for await` over it throws `error` after the items before it. */
  fail(error: Error): void {
    if (this.ended) return;
    this.error = error;
    this.end();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.error) {
      const error = this.error;
      this.error = undefined;
      return Promise.reject(error);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.rejectWaiting = reject;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    this.error = undefined;
    this.items.length = 0;
    this.head = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
