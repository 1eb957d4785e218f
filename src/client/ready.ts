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
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  rejectAll(error: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  /** Waiters whose deadline has come reject with the error `timedOut` makes for their wait. */
  expire(now: number, timedOut: (timeoutMs: number) => Error): void {
    if (!this.waiters.some((w) => w.deadline <= now)) return;
    const due = this.waiters.filter((w) => w.deadline <= now);
    this.waiters = this.waiters.filter((w) => w.deadline > now);
    for (const w of due) w.reject(timedOut(w.timeoutMs));
  }
}
