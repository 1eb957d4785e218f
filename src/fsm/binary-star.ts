/**
 * The Binary Star state machine as a pure function, xstate-style: (state, event, context) -> next
 * state, next context and effects. No sockets, timers or clock reads: the time of an event arrives
 * in the event, and the reactor (src/pair/binary-star.ts) keeps the context it is handed back and
 * performs the effects. The context's bookkeeping (the epoch arithmetic, when the peer counts as
 * dead, whether this node holds the history, whether it is fenced) lives here, not in the reactor.
 *
 * The table below is the single source of truth. The exhaustive unit test walks every cell of it
 * and docs/binary-star.md's diagram is generated from it (`npm run docs`).
 */

import { holdsNewer, newer, wins } from './order.js';

export const STATES = ['PRIMARY', 'BACKUP', 'ACTIVE', 'PASSIVE'] as const;
export type State = (typeof STATES)[number];
export type Role = 'primary' | 'backup';

/** What one node knows of the other from its latest heartbeat. */
export interface PeerView {
  readonly state: State;
  readonly epoch: number;
  readonly sequence: number;
  readonly role: Role;
  /** the peer holds a complete copy of the pair's history (it could serve without losing state) */
  readonly history: boolean;
  /** the peer is an active that met another active and stopped sequencing until that is settled */
  readonly fenced: boolean;
  /** changes the peer sequenced since the two nodes' histories forked (0 if they have not) */
  readonly served: number;
  /** the peer started from stored data (it may hold a newer history than ours) */
  readonly restored: boolean;
}

export type Event =
  /** a heartbeat of the peer, heard at `now` */
  | { readonly type: 'peer'; readonly peer: PeerView; readonly now: number }
  | { readonly type: 'client-request'; readonly now: number };

export interface Context {
  readonly role: Role;
  /** how long the peer may be silent before it counts as dead (configuration, never changes) */
  readonly failoverMs: number;
  readonly epoch: number;
  /** this node's sequence (an input: the reactor refreshes it before each event) */
  readonly sequence: number;
  /** when the peer counts as dead if nothing more is heard (last heard + failover timeout) */
  readonly peerExpiresAt: number;
  /** the highest epoch the peer has announced so far (0 if never heard) */
  readonly peerEpoch: number;
  /**
   * This node holds a complete copy of the history it follows: it has been active, or it finished
   * a sync from the active on the current timeline, or it is a primary starting a fresh pair.
   * No data, no vote: without it a node never takes over (promise 3).
   */
  readonly history: boolean;
  /** this active met another active and stopped sequencing until the meeting is settled */
  readonly fenced: boolean;
  /**
   * changes this node sequenced since its history and the peer's forked (0 if they have not; an
   * input like `sequence`)
   */
  readonly served: number;
  /**
   * This node started from stored data (a data directory with a history), not as a fresh node. It
   * cannot know alone whether its peer served after it stopped, so it takes no vote before it has
   * heard the peer and compared histories (an operator can force it).
   */
  readonly restored: boolean;
  /** a heartbeat of the peer has been heard since this node started */
  readonly peerHeard: boolean;
}

export type Effect =
  /** become the active server: serve clients, publish, expire TTLs, continue the sequence */
  | { readonly type: 'activate'; readonly epoch: number; readonly reason: ActivateReason }
  /** become (or stay) the passive server: stop serving, sync from the peer */
  | { readonly type: 'follow'; readonly reason: FollowReason }
  /** two actives met and this one keeps serving; the peer will demote */
  | { readonly type: 'dual-active-won' }
  /** two actives met: stop sequencing, so both sides compare numbers that no longer move */
  | { readonly type: 'fence' }
  /** the other active has demoted: sequence again */
  | { readonly type: 'unfence' }
  | { readonly type: 'accept' }
  | { readonly type: 'reject'; readonly reason: RejectReason };

/** Why a client vote was refused: the peer still serves, or this node has no complete history. */
export type RejectReason = 'peer-alive' | 'no-history' | 'fenced' | 'peer-unknown';

export type ActivateReason =
  'peer-is-backup' | 'peer-restarted' | 'newer-history' | 'client-vote' | 'dual-passive-won' | 'forced';
export type FollowReason = 'peer-active' | 'dual-active-lost';

/** What one cell of the table decides: the next state and the effects. */
export interface Transition {
  readonly state: State;
  readonly effects: readonly Effect[];
}

/** What `transition` returns: the cell's decision and the context the reactor keeps from now on. */
export interface Next extends Transition {
  readonly context: Context;
}

export type EventKind = State | 'CLIENT_REQUEST';
export const EVENT_KINDS: readonly EventKind[] = ['PRIMARY', 'BACKUP', 'ACTIVE', 'PASSIVE', 'CLIENT_REQUEST'];

type Rule = {
  readonly name: string;
  readonly apply: (state: State, event: Event, ctx: Context) => Transition;
};

// Each rule opens with why it exists.

/** Nothing to do: the pair is consistent, or the other node moves next. */
const stay: Rule = { name: 'stay', apply: (state) => ({ state, effects: [] }) };

/**
 * Two starting nodes meet (a fresh pair, or both restarted). The one with the newer history serves,
 * whatever its role: a complete history beats an incomplete one, then the order of `newer`. Both
 * sides compute the same order, so exactly one activates; the other then hears ACTIVE and follows.
 * A fresh pair is the classic case: the primary holds the (empty) history, the backup nothing.
 */
const resolveStart: Rule = {
  name: 'resolve-start',
  apply: (state, event, ctx) =>
    event.type === 'peer' && holdsNewer(ctx, event.peer)
      ? activate(ctx, event, ctx.role === 'primary' && !ctx.restored ? 'peer-is-backup' : 'newer-history')
      : { state, effects: [] },
};

/**
 * A node restarted from stored data meets a passive (its peer was passive when the pair stopped
 * serving, or never completed a sync). The restarted node serves if its stored history is complete
 * and newer; otherwise the passive takes over (promoteOverRestart decides the same on its side).
 * A fresh node never takes over from a passive: it holds nothing, the passive may hold a lot.
 */
const resolveRestart: Rule = {
  name: 'resolve-restart',
  apply: (state, event, ctx) =>
    event.type === 'peer' && ctx.restored && holdsNewer(ctx, event.peer)
      ? activate(ctx, event, 'newer-history')
      : { state, effects: [] },
};

/**
 * A passive whose peer is starting again (it restarted) holds the state: it takes over, unless the
 * peer restarted from stored data holding a complete and newer history (then the peer serves and
 * this node follows it). A passive that never completed its sync holds nothing to take over with.
 */
const promoteOverRestart: Rule = {
  name: 'activate',
  apply: (state, event, ctx) => {
    if (event.type !== 'peer' || !ctx.history) return { state, effects: [] };
    const { peer } = event;
    const peerServes = peer.restored && peer.history && !newer(ctx, peer);
    return peerServes ? { state, effects: [] } : activate(ctx, event, 'peer-restarted');
  },
};

/** The peer serves: become passive and sync from it. */
const follow: Rule = {
  name: 'follow',
  apply: () => ({ state: 'PASSIVE', effects: [{ type: 'follow', reason: 'peer-active' }] }),
};

/** An active server serves every client, except while it settles a meeting with another active. */
const accept: Rule = {
  name: 'accept',
  apply: (state, _e, ctx) => ({
    state,
    effects: [ctx.fenced ? { type: 'reject', reason: 'fenced' } : { type: 'accept' }],
  }),
};

/**
 * A starting backup does not serve on a vote: a fresh one may have no state at all. One restarted
 * from its data with the complete history says so (it waits to compare histories with its peer),
 * so that clients keep trying instead of reporting the pair without a history.
 */
const reject: Rule = {
  name: 'reject',
  apply: (state, _e, ctx) => {
    const reason = !(ctx.restored && ctx.history)
      ? 'no-history'
      : ctx.peerHeard
        ? 'peer-alive'
        : 'peer-unknown';
    return { state, effects: [{ type: 'reject', reason }] };
  },
};

/**
 * The Binary Star vote: a client asks us, so it cannot reach the peer either. Serve only once the
 * peer has been silent past the failover timeout; before that, two actives would mean split brain.
 * And only with the data: a node without a complete history would serve lost state and reuse
 * sequence numbers (promise 1), so it refuses and the pair is unavailable instead.
 */
const voteIfPeerSilent: Rule = {
  name: 'vote',
  apply: (state, event, ctx) => {
    if (!ctx.history) return { state, effects: [{ type: 'reject', reason: 'no-history' }] };
    if (ctx.restored && !ctx.peerHeard)
      return { state, effects: [{ type: 'reject', reason: 'peer-unknown' }] };
    if (event.type !== 'client-request' || event.now < ctx.peerExpiresAt)
      return { state, effects: [{ type: 'reject', reason: 'peer-alive' }] };
    const promoted = activate(ctx, event, 'client-vote');
    return { state: promoted.state, effects: [...promoted.effects, { type: 'accept' }] };
  },
};

/**
 * Two actives met (a partition healed, or a frozen active woke up). Exactly one must keep serving,
 * and the choice must not throw away the writes of the node that served while the other sat idle.
 * So both first stop sequencing (fence) and announce it: from then on the numbers they compare no
 * longer move, and both sides compute the same answer. The node that sequenced more changes since
 * the histories forked wins; a tie goes to the higher epoch, then to the primary. The loser demotes
 * and resyncs; the winner sequences again once it sees the loser passive.
 */
const dualActive: Rule = {
  name: 'resolve-dual-active',
  apply: (state, event, ctx) => {
    if (event.type !== 'peer') return { state, effects: [] };
    if (!ctx.fenced) return { state, effects: [{ type: 'fence' }] };
    if (!event.peer.fenced) return { state, effects: [] };
    return wins(ctx, event.peer)
      ? { state: 'ACTIVE', effects: [{ type: 'dual-active-won' }] }
      : { state: 'PASSIVE', effects: [{ type: 'follow', reason: 'dual-active-lost' }] };
  },
};

/** A fenced active whose peer has demoted sequences again. */
const unfence: Rule = {
  name: 'unfence',
  apply: (state, _e, ctx) => ({ state, effects: ctx.fenced ? [{ type: 'unfence' }] : [] }),
};

/**
 * Two passives and nobody serving would hang the pair. The node with the newer history takes over
 * (`newer`), so exactly one of them moves; a node without a complete history never does, and one
 * with it always beats one without.
 */
const dualPassive: Rule = {
  name: 'resolve-dual-passive',
  apply: (state, event, ctx) => {
    if (event.type !== 'peer' || !holdsNewer(ctx, event.peer)) return { state, effects: [] };
    return activate(ctx, event, 'dual-passive-won');
  },
};

// prettier-ignore
//                      peer PRIMARY        peer BACKUP          peer ACTIVE  peer PASSIVE     client request
export const TABLE: Readonly<Record<State, Readonly<Record<EventKind, Rule>>>> = {
  PRIMARY: { PRIMARY: stay,               BACKUP: resolveStart,       ACTIVE: follow,     PASSIVE: resolveRestart, CLIENT_REQUEST: voteIfPeerSilent },
  BACKUP:  { PRIMARY: resolveStart,       BACKUP: stay,               ACTIVE: follow,     PASSIVE: resolveRestart, CLIENT_REQUEST: reject },
  ACTIVE:  { PRIMARY: stay,               BACKUP: stay,               ACTIVE: dualActive, PASSIVE: unfence,        CLIENT_REQUEST: accept },
  PASSIVE: { PRIMARY: promoteOverRestart, BACKUP: promoteOverRestart, ACTIVE: stay,       PASSIVE: dualPassive,    CLIENT_REQUEST: voteIfPeerSilent },
};

export function eventKind(event: Event): EventKind {
  return event.type === 'peer' ? event.peer.state : 'CLIENT_REQUEST';
}

export function transition(state: State, event: Event, ctx: Context): Next {
  const learned = learn(state, event, ctx);
  const move = TABLE[state][eventKind(event)].apply(state, event, learned);
  return { ...move, context: afterEffects(learned, move.effects) };
}

/**
 * What a heartbeat teaches before its cell is applied: the peer is alive for another failover
 * timeout, the highest epoch it has announced, and (for a passive hearing the active) the epoch
 * the pair is in.
 */
function learn(state: State, event: Event, ctx: Context): Context {
  if (event.type !== 'peer') return ctx;
  const { peer } = event;
  const follows = state === 'PASSIVE' && peer.state === 'ACTIVE';
  return {
    ...ctx,
    peerExpiresAt: event.now + ctx.failoverMs,
    peerEpoch: Math.max(ctx.peerEpoch, peer.epoch),
    epoch: follows ? Math.max(ctx.epoch, peer.epoch) : ctx.epoch,
    peerHeard: true,
  };
}

/** The context once the effects are carried out. */
function afterEffects(ctx: Context, effects: readonly Effect[]): Context {
  let next = ctx;
  for (const effect of effects) {
    switch (effect.type) {
      case 'activate':
        // an active holds the history it serves, and a fresh epoch ends any meeting of actives
        next = { ...next, epoch: effect.epoch, history: true, fenced: false };
        break;
      case 'follow':
        // a passive holds only what it has synced: nothing, until the sync completes
        next = { ...next, history: false, fenced: false };
        break;
      case 'fence':
        next = { ...next, fenced: true };
        break;
      case 'unfence':
        next = { ...next, fenced: false };
        break;
    }
  }
  return next;
}

/**
 * Context updates for what is not an FSM event. Any message of the peer (a replication batch, an
 * ack) proves it alive as a heartbeat does.
 */
export function heard(ctx: Context, now: number): Context {
  return { ...ctx, peerExpiresAt: now + ctx.failoverMs };
}

/** This node was frozen until `now`: the peer's silence before now does not count. */
export function stalled(ctx: Context, now: number): Context {
  return { ...ctx, peerExpiresAt: Math.max(ctx.peerExpiresAt, now + ctx.failoverMs) };
}

/** A passive finished its sync on the active's timeline: it holds the complete history. */
export function synced(ctx: Context): Context {
  return ctx.history ? ctx : { ...ctx, history: true };
}

/** A fenced active whose peer fell silent sequences again (there is no meeting left to settle). */
export function unfenced(ctx: Context): Context {
  return ctx.fenced ? { ...ctx, fenced: false } : ctx;
}

/**
 * An operator's forced promotion (`twinstar promote --force`): an epoch above any the pair has
 * used, and this node now counts as holding the history. Whether it is allowed is the reactor's
 * call (never while the peer is heard active).
 */
export function forced(ctx: Context): Next {
  const epoch = Math.max(ctx.epoch, ctx.peerEpoch) + 1;
  const effects: Effect[] = [{ type: 'activate', epoch, reason: 'forced' }];
  return { state: 'ACTIVE', effects, context: afterEffects(ctx, effects) };
}

/** What a node's storage says of it at start (undefined: a fresh node, nothing stored). */
export interface StoredFacts {
  /** the highest epoch the pair used, as far as this node knows */
  readonly epoch: number;
  /** it held a complete copy of the history when it stopped */
  readonly history: boolean;
}

/** The context a node starts with: its peer has one failover timeout to speak up. */
export function startContext(role: Role, failoverMs: number, now: number, stored?: StoredFacts): Context {
  return {
    role,
    failoverMs,
    epoch: stored?.epoch ?? 0,
    sequence: 0,
    peerExpiresAt: now + failoverMs,
    peerEpoch: 0,
    // A primary starting a fresh pair is the origin of the history; a backup has none until it
    // syncs. A node restarted from its data directory holds what it held when it stopped.
    history: stored ? stored.history : role === 'primary',
    fenced: false,
    served: 0,
    restored: stored !== undefined,
    peerHeard: false,
  };
}

/** The rule's name in a cell, for documentation and tests. */
export function ruleName(state: State, kind: EventKind): string {
  return TABLE[state][kind].name;
}

export function startState(role: Role): State {
  return role === 'primary' ? 'PRIMARY' : 'BACKUP';
}

function activate(ctx: Context, event: Event, reason: ActivateReason): Transition {
  const peerEpoch = event.type === 'peer' ? Math.max(event.peer.epoch, ctx.peerEpoch) : ctx.peerEpoch;
  // Every promotion takes an epoch above any the pair has used, so a later meeting of two
  // actives always has a deterministic winner.
  const epoch = Math.max(ctx.epoch, peerEpoch) + 1;
  return { state: 'ACTIVE', effects: [{ type: 'activate', epoch, reason }] };
}
