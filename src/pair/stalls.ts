/**
 * Stall detection for a node's one periodic timer: a gap of more than two heartbeats since the
 * timer last ran means the event loop was frozen (SIGSTOP, a long GC, a costly request). Silence
 * measured across such a gap was slept through, not observed. A gap past heartbeat + half the
 * failover timeout is logged and counted as a stall.
 */
import type { Logger } from '../log/index.js';

export class StallClock {
  private lastTick: number;

  constructor(
    private readonly heartbeatMs: number,
    private readonly failoverMs: number,
    now: number,
    private readonly log: Logger,
  ) {
    this.lastTick = now;
  }

  /** The gap if the loop was frozen until `now` (then it counts from now), else undefined. */
  notice(now: number, onStall: (ms: number) => void): number | undefined {
    const gap = now - this.lastTick;
    if (gap <= 2 * this.heartbeatMs) return undefined;
    this.lastTick = now;
    if (gap > this.heartbeatMs + this.failoverMs / 2) {
      this.log.warn({ stalledMs: gap }, 'event loop stalled; peer silence before now does not count');
      onStall(gap);
    }
    return gap;
  }

  /** The timer ran at `now`. */
  ticked(now: number): void {
    this.lastTick = now;
  }

  /** The timer ran recently: the event loop is turning on time. */
  healthy(now: number): boolean {
    return now - this.lastTick <= Math.max(5 * this.heartbeatMs, 1000);
  }
}
