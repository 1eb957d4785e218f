/**
 * Does the active count its passive for acknowledgements (promise 2)? A pure rule, decided on
 * every heartbeat, ack and tick of an active; the reactor and replication only supply the facts.
 *
 * A passive is attached once it is heard and says it is synced. It stays attached while it is
 * heard and passive, even while it resumes after a gap: writes then wait for it rather than being
 * acknowledged by the active alone, because a passive that is catching up is still the one that
 * would take over. Only a passive that leaves a write waiting longer than the failover timeout is
 * detached, until it has caught up with everything sequenced meanwhile (`catchUpTo`).
 *
 * While two actives settle which one serves (fenced), or while an active woken from a stall
 * re-learns its peer, nothing changes: detaching would acknowledge the waiting writes as degraded,
 * and the node may be about to lose them. It wins (and then decides) or demotes (and rejects).
 */
import type { State } from '../fsm/index.js';

export interface AttachmentFacts {
  readonly now: number;
  readonly failoverMs: number;
  /** the active's sequence */
  readonly sequence: number;
  /** the highest sequence the passive has acknowledged on this term */
  readonly acked: number;
  /** the passive counts now */
  readonly attached: boolean;
  /** age of the oldest write waiting for the passive, in ms (0 if none) */
  readonly oldestWaitMs: number;
  /** a slow passive was detached and counts again once it has acknowledged this sequence */
  readonly catchUpTo: number | undefined;
  readonly fenced: boolean;
  /** woken from a stall, the active has not yet heard a fresh heartbeat of its peer */
  readonly relearning: boolean;
  /** the peer's latest heartbeat (undefined if never heard, or refused as a peer) */
  readonly peer: { readonly state: State; readonly synced: boolean } | undefined;
  /** when the peer counts as dead if nothing more is heard */
  readonly peerExpiresAt: number;
}

export type Attachment =
  /** fenced or re-learning: keep everything as it is */
  | { readonly hold: true }
  | {
      readonly hold: false;
      readonly attach: boolean;
      readonly catchUpTo: number | undefined;
      /** the passive was just found too slow (the active logs it) */
      readonly detachedSlow: boolean;
    };

export function attachment(f: AttachmentFacts): Attachment {
  if (f.fenced || f.relearning) return { hold: true };
  const detachedSlow = f.oldestWaitMs > f.failoverMs;
  let catchUpTo = detachedSlow ? f.sequence : f.catchUpTo;
  if (catchUpTo !== undefined && f.acked >= catchUpTo) catchUpTo = undefined;
  const { peer } = f;
  const attach =
    peer !== undefined &&
    f.now < f.peerExpiresAt &&
    peer.state === 'PASSIVE' &&
    (peer.synced || f.attached) &&
    catchUpTo === undefined;
  return { hold: false, attach, catchUpTo, detachedSlow };
}
