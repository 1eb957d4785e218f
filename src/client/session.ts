/**
 * The client's phase as a pure table, with one funnel (`setPhase`) that every change goes through
 * and that derives the status signals an application sees:
 *
 *   finding --(active found)--> syncing --(sync done)--> ready --(gap, resume)--> syncing
 *      ^                           |                       |
 *      +------(silence, not active)+-----------------------+          any --close()--> closed
 *
 * - `disconnected`: the server in use was lost (silence, or it said it is not active) after the
 *   client had been ready at least once.
 * - `reconnecting`: while still looking, once per report period (so a long outage is visible).
 * - `reconnected`: ready again after a disconnection, with how long it took.
 * - `unavailable`: no active is reachable and the only node that answers lacks history.
 * No I/O and no clock: the caller passes `now` and emits the signals (on the next tick).
 */
import type { ServerSeen } from './discovery.js';

export type Phase = 'finding' | 'syncing' | 'ready' | 'closed';

const ALLOWED: Record<Phase, readonly Phase[]> = {
  finding: ['finding', 'syncing', 'closed'],
  syncing: ['finding', 'syncing', 'ready', 'closed'],
  ready: ['finding', 'syncing', 'closed'],
  closed: [],
};

export type Status =
  | { readonly type: 'disconnected'; readonly server: string | undefined; readonly reason: string }
  | {
      readonly type: 'reconnecting';
      readonly attempt: number;
      readonly downMs: number;
      readonly seen: readonly ServerSeen[];
    }
  | {
      readonly type: 'reconnected';
      readonly server: string;
      readonly sequence: number;
      readonly downMs: number;
    }
  | { readonly type: 'unavailable'; readonly reason: string; readonly seen: readonly ServerSeen[] };

export interface PhaseContext {
  readonly now: number;
  /** the server in use (being left, or reached) */
  readonly server?: string;
  readonly reason?: string;
  readonly sequence?: number;
}

export class Session {
  private current: Phase = 'finding';
  private everReady = false;
  private downSince: number | undefined;
  private lastReport = 0;
  private attempts = 0;
  private unavailableSaid = false;

  get phase(): Phase {
    return this.current;
  }

  /** True once the client has been ready at least once. */
  get connected(): boolean {
    return this.everReady;
  }

  /** Whether the table allows going from the current phase to `next`. */
  allows(next: Phase): boolean {
    return ALLOWED[this.current].includes(next);
  }

  /**
   * Moves to `next` and returns the signals this causes; undefined (and no change) when the table
   * does not allow the move, which is a bug in the caller.
   */
  setPhase(next: Phase, context: PhaseContext): Status[] | undefined {
    if (!this.allows(next)) return undefined;
    const was = this.current;
    this.current = next;
    const out: Status[] = [];
    if (next === 'finding' && was !== 'finding' && this.everReady && this.downSince === undefined) {
      this.downSince = this.lastReport = context.now;
      this.attempts = 0;
      this.unavailableSaid = false;
      out.push({ type: 'disconnected', server: context.server, reason: context.reason ?? 'lost' });
    }
    if (next === 'ready') {
      if (this.downSince !== undefined) {
        out.push({
          type: 'reconnected',
          server: context.server ?? '',
          sequence: context.sequence ?? -1,
          downMs: context.now - this.downSince,
        });
      }
      this.downSince = undefined;
      this.everReady = true;
      this.unavailableSaid = false;
    }
    return out;
  }

  /** While disconnected and still looking: one `reconnecting` per period. */
  reconnecting(now: number, periodMs: number, seen: readonly ServerSeen[]): Status | undefined {
    if (this.downSince === undefined || this.current !== 'finding') return undefined;
    if (now - this.lastReport < periodMs) return undefined;
    this.lastReport = now;
    return { type: 'reconnecting', attempt: ++this.attempts, downMs: now - this.downSince, seen };
  }

  /** The pair is unavailable (no history): said once per outage. */
  unavailable(reason: string, seen: readonly ServerSeen[]): Status | undefined {
    if (this.unavailableSaid) return undefined;
    this.unavailableSaid = true;
    return { type: 'unavailable', reason, seen };
  }
}
