/**
 * Callers of `ready()` waiting for the client's first (or next) sync, each with a deadline on the
 * client's injected clock: the client's one timer calls `expire(now)`, so no real timer is involved
 * and a fake clock drives the timeout in unit tests. Pure apart from the promises it settles.
 */
interface Waiter {
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class ReadyWaiters {
  private waiters: Waiter[] = [];

  /**
   * `later` runs each settling step: the client's next-tick queue, so a waiter resolves after the
   * events queued before it ('ready', the updates of the sync); at once by default.
   */
  constructor(private readonly later: (step: () => void) => void = (step) => step()) {}

  get size(): number {
    return this.waiters.length;
  }

  /**
   * A promise settled by `resolveAll`, `rejectAll` or, `timeoutMs` after `now`, by `expire` (a
   * timeout that is not a number counts as 0, as setTimeout's did).
   */
  wait(now: number, timeoutMs: number): Promise<void> {
    const ms = Number.isNaN(timeoutMs) ? 0 : timeoutMs;
    return new Promise((resolve, reject) =>
      this.waiters.push({ deadline: now + ms, timeoutMs: ms, resolve, reject }),
    );
  }

  resolveAll(): void {
    const settled = this.waiters.splice(0);
    if (settled.length > 0) this.later(() => settled.forEach((w) => w.resolve()));
  }

  rejectAll(error: Error): void {
    const settled = this.waiters.splice(0);
    if (settled.length > 0) this.later(() => settled.forEach((w) => w.reject(error)));
  }

  /** Waiters whose deadline has come reject with the error `timedOut` makes for their wait. */
  expire(now: number, timedOut: (timeoutMs: number) => Error): void {
    if (!this.waiters.some((w) => w.deadline <= now)) return;
    const due = this.waiters.filter((w) => w.deadline <= now);
    this.waiters = this.waiters.filter((w) => w.deadline > now);
    this.later(() => due.forEach((w) => w.reject(timedOut(w.timeoutMs))));
  }
}
