/**
 * The Binary Star reactor: one node's half of the pair, in the spirit of the ZeroMQ guide's
 * bstar. It sends heartbeats, hears the peer's, feeds both and the clients' votes to the pure FSM
 * (src/fsm/binary-star.ts), keeps the context the FSM hands back, and tells the application when
 * to serve (`onActive`) and when to follow (`onPassive`). It knows nothing of key-value data:
 * what this node holds is summed up by its sequence, its terms (src/core/timeline.ts) and whether
 * its replica is synced, all supplied by the application.
 *
 * It also watches for stalls: a node frozen (SIGSTOP, a long GC) must not conclude on waking that its
 * peer died, nor acknowledge writes on silence it slept through: every decision checks first.
 */
import { UNAVAILABLE_MESSAGES, unavailability, type UnavailableReason } from './availability.js';
import type { Admission } from '../server/index.js';
import type { Timeline } from '../core/index.js';
import type { Logger, RateLimitedLog } from '../log/index.js';
import type { Heartbeat, PeerMessage } from '../wire/index.js';
import {
  forced,
  heard,
  stalled,
  startContext,
  startState,
  synced,
  transition,
  unfenced,
  type ActivateReason,
  type Context,
  type Effect,
  type Event,
  type FollowReason,
  type Role,
  type State,
} from '../fsm/index.js';
import type { PeerChannel } from './peer-link.js';
import type { PeerStatus, StateChange } from './node-types.js';
import { StallClock } from './stalls.js';
import { pairingMismatch, servedSinceFork } from './peer-facts.js';

/** What the application does when the pair moves; called synchronously, in order. */
export interface BinaryStarHooks {
  /** serve from now: open a term at `epoch`, start replicating to the peer */
  onActive(epoch: number, reason: ActivateReason): void;
  /** stop serving (if `from` was ACTIVE) and follow the peer, which is `peer` */
  onPassive(reason: FollowReason, from: State, peer: Heartbeat | undefined): void;
  /** a meeting of two actives is settled in this node's favour: sequence again */
  onSettled(why: string): void;
  /** a passive finished its sync: it holds the complete history now */
  onHistory(): void;
  /** this node was frozen until `now` (writes waiting for the peer were not slow meanwhile) */
  onWake(now: number): void;
  onStall(ms: number): void;
  onState(change: StateChange): void;
  onRefused(reason: string): void;
  onUnavailable(reason: UnavailableReason | null): void;
}

export interface BinaryStarOptions {
  name: string;
  role: Role;
  heartbeatMs: number;
  failoverMs: number;
  now: () => number;
  log: Logger;
  /** warnings that a misbehaving peer could repeat on every heartbeat */
  refusals: RateLimitedLog;
  channel: PeerChannel;
  /** this node's terms: heartbeats carry them, and a dual active compares them */
  timeline: Timeline;
  /** this node's sequence */
  sequence: () => number;
  /** the heartbeat's `synced`: a passive's replica is complete, an active's passive attached */
  synced: () => boolean;
  hooks: BinaryStarHooks;
}

/** What `receive` made of a peer message. */
export type Received = 'heartbeat' | 'refused' | 'message';

export class BinaryStar {
  private current: State;
  /** the FSM's context, as the last transition handed it back */
  private ctx: Context;
  private peer: Heartbeat | undefined;
  private peerHeardAt = 0;
  private refused: string | undefined;
  /**
   * An active that woke from a stall sequences nothing until a fresh heartbeat of its peer has
   * been heard (the first ones it reads may have queued while it slept): the peer may have been
   * promoted meanwhile, and a write accepted now would be lost when the two meet.
   */
  private relearnUntil: number | undefined;
  private unavailable: UnavailableReason | null = null;
  private readonly startedAt: number;
  readonly stalls: StallClock;

  constructor(private readonly options: BinaryStarOptions) {
    const { role, failoverMs, heartbeatMs, now, log } = options;
    this.startedAt = now();
    this.current = startState(role);
    // A starting node gives its peer one failover timeout to speak up before a vote can promote it;
    // it never takes an epoch below one its storage says was taken.
    // A node restarted from its data directory starts from what it stored: its epoch and whether
    // it held the complete history.
    const { timeline } = options;
    this.ctx = {
      ...startContext(role, failoverMs, this.startedAt, timeline.restored),
      epoch: timeline.epoch,
    };
    this.keep(this.ctx);
    this.stalls = new StallClock(heartbeatMs, failoverMs, this.startedAt, log);
  }

  get state(): State {
    return this.current;
  }
  get epoch(): number {
    return this.ctx.epoch;
  }
  /** no data, no vote: see Context.history in src/fsm/binary-star.ts */
  get history(): boolean {
    return this.ctx.history;
  }
  get fenced(): boolean {
    return this.ctx.fenced;
  }
  get relearning(): boolean {
    return this.relearnUntil !== undefined;
  }
  get peerExpiresAt(): number {
    return this.ctx.peerExpiresAt;
  }
  /** the peer's latest heartbeat, unless it is refused as a peer */
  get pairedPeer(): Heartbeat | undefined {
    return this.refused ? undefined : this.peer;
  }
  get refusedBecause(): string | undefined {
    return this.refused;
  }
  get unavailableBecause(): UnavailableReason | null {
    return this.unavailable;
  }

  /** A client's vote (ICANHAZ?, TVOTE): may this node serve it? It may be promoted by it. */
  vote(): Admission {
    const now = this.now();
    for (const effect of this.run({ type: 'client-request', now }, 'client-request')) {
      if (effect.type === 'accept') return { accepted: true };
      if (effect.type === 'reject') return { accepted: false, reason: effect.reason };
    }
    return { accepted: false, reason: 'not-active' };
  }

  /** This node may sequence now: active, not fenced, not re-learning its peer after a stall. */
  serving(): boolean {
    this.now();
    return this.current === 'ACTIVE' && !this.ctx.fenced && this.relearnUntil === undefined;
  }

  /**
   * A message of the peer. Heartbeats are the reactor's; any other message proves the peer alive
   * and is the application's to handle ('message'), unless the peer is refused.
   */
  receive(msg: PeerMessage): Received {
    this.now();
    if (msg.type === 'heartbeat') return this.onHeartbeat(msg.heartbeat);
    if (this.refused) return 'refused';
    this.heardPeer();
    return 'message';
  }

  /** The periodic part: every heartbeatMs. */
  tick(): void {
    const now = this.now();
    this.stalls.ticked(now);
    this.noteHistory();
    if (this.ctx.fenced && now >= this.ctx.peerExpiresAt) this.unfence('the peer fell silent');
    if (this.relearnUntil !== undefined && now >= this.ctx.peerExpiresAt) this.relearnUntil = undefined;
    this.options.channel.send({ type: 'heartbeat', heartbeat: this.heartbeat() });
  }

  /**
   * Operator override of "no data, no vote": promote this node although it may not hold the whole
   * history. Refused while the peer is heard active (that would be split brain).
   */
  force(): { ok: true; epoch: number } | { ok: false; reason: string } {
    if (this.current === 'ACTIVE') return { ok: true, epoch: this.ctx.epoch };
    if (this.peerUp() && this.peer?.state === 'ACTIVE')
      return { ok: false, reason: `the peer ${this.peer.name} is active: promoting would make two actives` };
    const next = forced(this.ctx);
    const epoch = next.context.epoch;
    this.options.log.error(
      { epoch, history: this.ctx.history, sequence: this.options.sequence() },
      'forced promotion by an operator: this node may not hold every acknowledged write',
    );
    this.keep(next.context);
    this.relearnUntil = undefined;
    this.setState('ACTIVE', 'forced');
    this.options.hooks.onActive(epoch, 'forced');
    this.updateAvailability();
    return { ok: true, epoch };
  }

  peerUp(): boolean {
    const { now, failoverMs } = this.options;
    return this.peer !== undefined && !this.refused && now() - this.peerHeardAt <= failoverMs;
  }

  /** Milliseconds since the peer was last heard (Infinity if never). */
  peerSilenceMs(): number {
    return this.peer === undefined ? Infinity : this.options.now() - this.peerHeardAt;
  }

  peerStatus(): PeerStatus | null {
    const peer = this.peer;
    if (!peer) return null;
    const { name, state, epoch, sequence, synced } = peer;
    return { name, state, epoch, sequence, synced, lastHeardMs: this.peerSilenceMs(), up: this.peerUp() };
  }

  /**
   * The clock, for every decision of the pair: a reading taken elsewhere could hold a stall never
   * noticed. Were we frozen? Then whatever silence we measured, we slept through it. On waking,
   * the event loop runs queued socket callbacks (a client vote, the passive's acks) before any
   * timer, and those must not decide on stale clocks. So: suspend judgment of the peer for one
   * failover timeout (a queued vote is refused, fresh heartbeats decide), and restart the clock of
   * writes waiting for the passive (it is not slow for time we did not observe).
   */
  now(): number {
    const now = this.options.now();
    const gap = this.stalls.notice(now, (ms) => this.options.hooks.onStall(ms));
    if (gap === undefined) return now;
    this.ctx = stalled(this.ctx, now);
    this.options.hooks.onWake(now);
    // The peer can have been promoted only if it heard nothing from us for a failover timeout;
    // a shorter gap (a busy turn, a GC pause) cannot have let that happen, so it changes nothing.
    const { failoverMs, heartbeatMs } = this.options;
    if (this.current === 'ACTIVE' && gap >= failoverMs - heartbeatMs)
      this.relearnUntil = now + 2 * heartbeatMs;
    return now;
  }

  /**
   * The pair cannot serve from here: this node is not active, holds no complete history (so it
   * refuses votes), and no active peer is heard. Said once on each change.
   */
  updateAvailability(): void {
    const reason = unavailability({
      // A node just started gives its peer one failover timeout to speak up first: a backup that
      // starts a moment before its primary is not an outage.
      settled: this.options.now() >= this.startedAt + this.options.failoverMs,
      active: this.current === 'ACTIVE',
      activePeer: this.peerUp() && this.peer?.state === 'ACTIVE',
      history: this.ctx.history,
      awaitingPeer: this.ctx.restored && !this.ctx.peerHeard,
    });
    if (reason === this.unavailable) return;
    this.unavailable = reason;
    const { log } = this.options;
    if (reason)
      log.error(
        { reason, state: this.current, sequence: this.options.sequence() },
        UNAVAILABLE_MESSAGES[reason],
      );
    else log.info({ state: this.current }, 'available again');
    this.options.hooks.onUnavailable(reason);
  }

  // ------------------------------------------------------------------------------------------

  private onHeartbeat(hb: Heartbeat): Received {
    const mismatch = pairingMismatch(hb, this.options);
    if (mismatch) {
      // Refuse to pair: this peer's heartbeats do not count, loudly and on every window.
      if (this.refused !== mismatch) this.options.hooks.onRefused(mismatch);
      this.refused = mismatch;
      this.options.refusals.warn({ peer: hb.name, reason: mismatch }, 'refusing to pair with peer');
      return 'refused';
    }
    this.refused = undefined;
    this.peer = hb;
    this.heardPeer();
    // a synced passive follows the active's terms
    if (this.current === 'PASSIVE' && hb.state === 'ACTIVE' && this.options.synced())
      this.options.timeline.adopt(hb.timeline);
    this.noteHistory();
    const peer = {
      ...hb,
      served: servedSinceFork(this.options.timeline, this.options.sequence(), hb).theirs,
      restored: hb.restored === true,
    };
    this.run({ type: 'peer', peer, now: this.options.now() }, `peer-${hb.state}`);
    // A heartbeat read well after the wake is fresh: the peer's state is known again.
    if (this.relearnUntil !== undefined && this.options.now() >= this.relearnUntil)
      this.relearnUntil = undefined;
    return 'heartbeat';
  }

  private heardPeer(): void {
    const now = this.options.now();
    this.peerHeardAt = now;
    this.ctx = heard(this.ctx, now);
  }

  /** A passive that finished its sync holds the history. */
  private noteHistory(): void {
    if (this.current !== 'PASSIVE' || this.ctx.history || !this.options.synced()) return;
    this.keep(synced(this.ctx));
    this.options.log.info(
      { sequence: this.options.sequence() },
      'synced: this node holds the complete history',
    );
    this.options.hooks.onHistory();
  }

  private run(event: Event, reason: string): readonly Effect[] {
    const from = this.current;
    const served = this.peer
      ? servedSinceFork(this.options.timeline, this.options.sequence(), this.peer).mine
      : 0;
    const next = transition(from, event, { ...this.ctx, sequence: this.options.sequence(), served });
    this.setState(next.state, effectReason(next.effects) ?? reason);
    this.keep(next.context);
    const { log, hooks } = this.options;
    for (const effect of next.effects) {
      switch (effect.type) {
        case 'activate':
          this.relearnUntil = undefined;
          hooks.onActive(effect.epoch, effect.reason);
          break;
        case 'follow':
          this.relearnUntil = undefined;
          hooks.onPassive(effect.reason, from, this.peer);
          break;
        case 'dual-active-won':
          log.warn(
            { peerEpoch: this.peer?.epoch, epoch: this.ctx.epoch, served },
            'dual active: this node served more since the fork and wins; the peer demotes',
          );
          break;
        case 'fence':
          log.warn(
            { peer: this.peer?.name, epoch: this.ctx.epoch, sequence: this.options.sequence() },
            'dual active: fenced, sequencing nothing until the meeting is settled',
          );
          break;
        case 'unfence':
          hooks.onSettled('the peer demoted');
          break;
      }
    }
    return next.effects;
  }

  /** Keeps the FSM's next context; what a restart needs of it (epoch, history) goes to the log. */
  private keep(ctx: Context): void {
    this.ctx = ctx;
    this.options.timeline.raiseEpoch(ctx.epoch);
    this.options.timeline.setHistory(ctx.history);
  }

  private unfence(why: string): void {
    if (!this.ctx.fenced) return;
    this.ctx = unfenced(this.ctx);
    this.options.hooks.onSettled(why);
  }

  /** Every state change goes through here: logged, and announced. */
  private setState(to: State, reason: string): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.options.log.info({ from, to, event: reason }, `${from} -> ${to}`);
    this.options.hooks.onState({ from, to, reason });
  }

  private heartbeat(): Heartbeat {
    const { name, role, heartbeatMs, failoverMs, timeline } = this.options;
    return {
      name,
      role,
      state: this.current,
      epoch: this.ctx.epoch,
      sequence: this.options.sequence(),
      term: timeline.term,
      timeline: timeline.list(),
      heartbeatMs,
      failoverMs,
      synced: this.options.synced(),
      history: this.ctx.history,
      fenced: this.ctx.fenced,
      restored: this.ctx.restored,
      relays: true, // this version sends the TACKs an active relays (replication-sink.ts)
    };
  }
}

function effectReason(effects: readonly Effect[]): string | undefined {
  for (const e of effects) if (e.type === 'activate' || e.type === 'follow') return e.reason;
  return undefined;
}
