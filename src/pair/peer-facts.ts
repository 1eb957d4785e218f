/** What the reactor reads off a peer's heartbeat, as pure functions of the heartbeat and our own facts. */
import type { Timeline } from '../core/index.js';
import type { Role } from '../fsm/index.js';
import type { Heartbeat } from '../wire/index.js';

/** Why this peer must not be paired with (its heartbeats do not count), or undefined. */
export function pairingMismatch(
  hb: Heartbeat,
  ours: { heartbeatMs: number; failoverMs: number; role: Role },
): string | undefined {
  const { heartbeatMs, failoverMs, role } = ours;
  if (hb.heartbeatMs !== heartbeatMs || hb.failoverMs !== failoverMs) {
    return `timing differs: peer heartbeatMs=${hb.heartbeatMs} failoverMs=${hb.failoverMs}, ours heartbeatMs=${heartbeatMs} failoverMs=${failoverMs}`;
  }
  if (hb.role === role) return `both nodes are configured as ${hb.role}`;
  return undefined;
}

/**
 * Changes each node sequenced since the two histories parted. Both nodes compute the same numbers
 * once neither sequence moves (both fenced, or both starting), so they agree on the winner.
 */
export function servedSinceFork(
  timeline: Timeline,
  sequence: number,
  peer: Heartbeat,
): { mine: number; theirs: number } {
  const common = timeline.commonUpTo(peer.timeline);
  if (!Number.isFinite(common)) return { mine: 0, theirs: 0 };
  return { mine: Math.max(0, sequence - common), theirs: Math.max(0, peer.sequence - common) };
}
