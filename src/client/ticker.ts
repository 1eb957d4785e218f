/**
 * Periodic callbacks of every client in the process, one Node timer per period (issue 18). Each
 * client ticks every 50 ms (agent.ts); with a timer each, 100 clients in one process woke the
 * event loop 2,000 times a second, about half of what 100 idle watchers cost. Callbacks of the
 * same period now run together, in the order they were added. A callback first runs within one
 * period of being added (sooner than a timer of its own would, never later), then every period.
 * One that throws does not stop the others: its error is rethrown on its own, as an uncaught
 * exception, exactly as from a timer of its own.
 */
export interface TickerTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const nodeTimers: TickerTimers = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

export class Ticker {
  private readonly groups = new Map<number, { timer: unknown; fns: Set<() => void> }>();

  constructor(private readonly timers: TickerTimers = nodeTimers) {}

  /** Calls `fn` every `ms`; the handle for `remove`. */
  add(fn: () => void, ms: number): { fn: () => void; ms: number } {
    const period = Math.max(1, ms);
    let group = this.groups.get(period);
    if (group === undefined) {
      const fns = new Set<() => void>();
      const timer = this.timers.setInterval(() => {
        for (const f of [...fns]) {
          if (!fns.has(f)) continue; // removed by an earlier callback of this round
          try {
            f();
          } catch (error) {
            queueMicrotask(() => {
              throw error;
            });
          }
        }
      }, period);
      group = { timer, fns };
      this.groups.set(period, group);
    }
    const entry = () => fn();
    group.fns.add(entry);
    return { fn: entry, ms: period };
  }

  remove(handle: unknown): void {
    const { fn, ms } = (handle ?? {}) as { fn?: () => void; ms?: number };
    if (fn === undefined || ms === undefined) return;
    const group = this.groups.get(ms);
    if (group === undefined || !group.fns.delete(fn) || group.fns.size > 0) return;
    this.timers.clearInterval(group.timer);
    this.groups.delete(ms);
  }

  /** periods with a timer running */
  get periods(): number {
    return this.groups.size;
  }
}
