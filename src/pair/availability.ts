/**
 * Why the pair cannot serve from this node, if it cannot: said once on each change, in /status, in
 * the `twinstar_unavailable` gauge and in the log.
 */
export type UnavailableReason = 'no-history' | 'peer-unknown';

export interface AvailabilityFacts {
  /** the node has been up for one failover timeout (a peer starting a moment later is no outage) */
  readonly settled: boolean;
  readonly active: boolean;
  /** an active peer is heard */
  readonly activePeer: boolean;
  /** the FSM's `history`: this node holds the complete history */
  readonly history: boolean;
  /** restarted from stored data and not yet heard the peer, so it takes no vote */
  readonly awaitingPeer: boolean;
}

export function unavailability(f: AvailabilityFacts): UnavailableReason | null {
  if (!f.settled || f.active || f.activePeer) return null;
  if (!f.history) return 'no-history';
  return f.awaitingPeer ? 'peer-unknown' : null;
}

export const UNAVAILABLE_MESSAGES: Readonly<Record<UnavailableReason, string>> = {
  'no-history':
    'unavailable: no active peer, and this node does not hold the complete history, so it refuses votes (twinstar promote --force overrides)',
  'peer-unknown':
    'unavailable: restarted from the data directory and the peer is not heard; it may have served after this node stopped, so this node waits to compare histories (twinstar promote --force overrides)',
};
