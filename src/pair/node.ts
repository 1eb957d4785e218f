/**
 * A twinstar server process: the clone server plus, in a pair, the Binary Star machinery around
 * it. The node is the interpreter of the pure FSM: heartbeats and client votes become FSM events,
 * and the effects that come back (activate, follow) are carried out here, in one place.
 *
 * One timer drives everything periodic (heartbeats, stall detection, replication health, the
 * pending list), and it runs its stall check first: a node whose event loop was frozen (SIGSTOP,
 * a long GC) must not conclude on waking that its peer died, or acknowledge writes as degraded,
 * on the strength of silence it slept through.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { CloneServer, toChange, type Admission, type ServicePolicy } from '../server/index.js';
import { Store, digestOf, type Digest } from '../core/index.js';
import { chunkBytes, type Durability, type KvMsg, type Limits } from '../wire/index.js';
import { type Entry } from '../kv/index.js';
import {
  heard,
  stalled,
  startContext,
  startState,
  synced,
  transition,
  type Context,
  type Effect,
  type Event,
  type State,
  type Role as PairRole,
} from '../fsm/index.js';
import * as zmq from 'zeromq';
import { limitsOf, type ServerConfig } from '../config/index.js';
import { ZapHandler, type Guard } from '../security/index.js';
import { RateLimitedLog, type Logger } from '../log/index.js';
import { PeerLink, type PeerChannel } from './peer-link.js';
import type { Heartbeat, PeerMessage } from '../wire/peer.js';
import { PendingList } from './pending.js';
import { attachment } from './attachment.js';
import { ReplicationSink } from './replication-sink.js';
import { ReplicationSource } from './replication-source.js';
import { Timeline } from '../core/timeline.js';
import { AcknowledgedWrites, Divergence, type DivergenceReport } from './divergence.js';

export interface StateChange {
  readonly from: State;
  readonly to: State;
  readonly reason: string;
}

export interface NodeEvents {
  state: [change: StateChange];
  promoted: [epoch: number, reason: string];
  divergent: [count: number];
  /** why this node cannot serve and the pair has no active it could follow (null: it can) */
  unavailable: [reason: string | null];
  degraded: [degraded: boolean];
  'peer-refused': [reason: string];
  'peer-dropped': [reason: string];
  stall: [ms: number];
  /** `dedupeSize` forced out a write uuid only `ageMs` old, younger than `dedupeMs` */
  'dedupe-evicted-early': [ageMs: number];
}

export interface PeerStatus {
  name: string;
  state: State;
  epoch: number;
  sequence: number;
  synced: boolean;
  lastHeardMs: number;
  up: boolean;
}

export interface NodeStatus {
  name: string;
  role: ServerConfig['role'];
  state: State;
  epoch: number;
  term: string;
  sequence: number;
  keys: number;
  degraded: boolean;
  replicationLag: number;
  pending: number;
  peer: PeerStatus | null;
  peerRefused: string | null;
  /** does this node hold a complete copy of the pair's history (could it take over)? */
  history: 'complete' | 'incomplete';
  /** this active met another active and sequences nothing until one has demoted */
  fenced: boolean;
  /** why the pair cannot serve from this node: 'no-history', or null */
  unavailable: string | null;
  endpoints: CloneServer['endpoints'];
  pid: number;
  uptimeMs: number;
}

export interface NodeOptions {
  config: ServerConfig;
  log: Logger;
  now?: () => number;
  /** replaces the peer link's sockets (tests) */
  channel?: (onMessage: (msg: PeerMessage) => void) => PeerChannel;
  /** CURVE on every socket, the allow-list and per-subtree rights (docs/security.md) */
  guard?: Guard;
}

export class Node extends EventEmitter<NodeEvents> implements ServicePolicy {
  readonly store: Store;
  readonly server: CloneServer;
  readonly config: ServerConfig;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly pairRole: PairRole | undefined;
  private readonly timeline = new Timeline();
  private readonly pending: PendingList;
  private readonly refusals: RateLimitedLog;
  private readonly limits: Limits;
  /** a secure node's client sockets have a context of their own, for their ZAP handler */
  private readonly zap: ZapHandler | undefined;
  private link: PeerChannel | undefined;
  private source: ReplicationSource | undefined;
  private sink: ReplicationSink | undefined;
  private current: State;
  /**
   * The FSM's context (epoch, peer expiry, history, fenced): handed back by every transition and
   * kept as it is; see src/fsm/binary-star.ts.
   */
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
  private unavailable: string | null = null;
  private readonly divergence = new Divergence();
  private readonly acknowledged: AcknowledgedWrites;
  private digesting: Promise<Digest> | undefined;
  private lastDigest: { sequence: number; result: Promise<Digest> } | undefined;
  private catchUpTo: number | undefined;
  private wasDegraded = false;
  private lastTick: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt: number;
  private started = false;
  private closed = false;
  promotions = 0;

  constructor(private readonly options: NodeOptions) {
    super();
    const { config, log } = options;
    this.config = config;
    this.log = log;
    this.now = options.now ?? Date.now;
    this.startedAt = this.lastTick = this.now();
    this.pairRole = config.role === 'single' ? undefined : config.role;
    this.current = this.pairRole ? startState(this.pairRole) : 'ACTIVE';
    // A starting node gives its peer one failover timeout to speak up before a vote can promote it.
    this.ctx = startContext(this.pairRole ?? 'primary', config.failoverMs, this.startedAt);
    this.acknowledged = new AcknowledgedWrites();
    this.pending = new PendingList(config.pendingMax, config.pendingMaxAgeMs, config.pendingMaxBytes);
    this.refusals = new RateLimitedLog(log, 5, 10_000, this.now);
    const limits = (this.limits = limitsOf(config));
    const guard = options.guard;
    const context = guard ? new zmq.Context() : undefined;
    if (guard && context) this.zap = new ZapHandler(context, (domain, key) => guard.admit(domain, key));
    const dedupeWarnings = new RateLimitedLog(log, 1, 10_000, this.now);
    this.store = new Store({
      replayLogSize: config.replayLogSize,
      replayLogBytes: config.replayLogBytes,
      dedupeSize: config.dedupeSize,
      dedupeMs: config.dedupeMs,
      onEvictedEarly: (ageMs) => {
        this.emit('dedupe-evicted-early', ageMs);
        const { dedupeSize, dedupeMs } = config;
        dedupeWarnings.warn(
          { ageMs, dedupeSize, dedupeMs },
          'dedupeSize forced out a write uuid younger than dedupeMs: a retry of that write would apply twice',
        );
      },
    });
    this.server = new CloneServer({
      host: config.host,
      port: config.port,
      heartbeatMs: config.heartbeatMs,
      limits,
      snapshotChunk: config.snapshotChunk,
      quotas: config,
      store: this.store,
      policy: this,
      log,
      now: this.now,
      context,
      guard,
    });
    if (this.pairRole) {
      const onMessage = (msg: PeerMessage) => this.onPeerMessage(msg);
      this.link =
        options.channel?.(onMessage) ??
        new PeerLink({
          bind: `tcp://${config.heartbeatHost}:${config.heartbeatPort}`,
          connect: `tcp://${config.peerHeartbeat}`,
          limits,
          maxSubtreeBytes: config.maxSubtreeBytes,
          guard,
          onMessage,
          onDropped: (reason, error) => {
            this.emit('peer-dropped', reason);
            this.refusals.warn(
              { reason, detail: (error as Error).message },
              'dropped malformed peer message',
            );
          },
        });
      this.source = new ReplicationSource({
        channel: this.link,
        store: this.store,
        timeline: this.timeline,
        snapshotChunk: config.snapshotChunk,
        chunkBytes: chunkBytes(limits),
        now: this.now,
      });
      this.sink = new ReplicationSink({
        channel: this.link,
        server: this.server,
        timeline: this.timeline,
        retryMs: Math.max(config.failoverMs, 4 * config.heartbeatMs),
        now: this.now,
        onApplied: (entry) => this.pending.match(entry.uuid),
        onMalformed: (error) => {
          this.emit('peer-dropped', error.reason);
          this.refusals.warn(
            { reason: error.reason, detail: error.message },
            'dropped malformed replication batch',
          );
        },
        limits,
      });
      this.server.on('change', (entry) => this.source!.onChange(entry));
      // Only a write acknowledged by this node alone can be lost in a dual active (one
      // acknowledged 'replicated' is on the other node), so only those are remembered: healthy
      // operation pays nothing for the divergence report.
      this.server.on('acknowledged', (changes, durability) => {
        if (durability === 'degraded') for (const change of changes) this.acknowledged.add(change.uuid);
      });
    }
  }

  get state(): State {
    return this.current;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.zap?.start(); // before any CURVE socket binds: without a handler libzmq admits all
    await this.server.start();
    if (this.link instanceof PeerLink) await this.link.start();
    if (!this.pairRole) this.openTerm(1, 'single');
    this.timer = setInterval(() => this.tick(), this.config.heartbeatMs);
    this.tick();
    this.log.info({ endpoints: this.server.endpoints, heartbeat: this.config.heartbeatPort }, 'node started');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.source?.stop('CLOSED');
    this.sink?.stop();
    await this.link?.close();
    await this.server.close();
    this.zap?.close();
  }

  // ------------------------------------------------------------------------------------------
  // ServicePolicy: what the clone server asks of us.

  admit(): Admission {
    if (!this.pairRole) return { accepted: true };
    const now = this.now();
    this.noticeStall(now);
    const effects = this.run({ type: 'client-request', now }, 'client-request');
    for (const effect of effects) {
      if (effect.type === 'accept') return { accepted: true };
      if (effect.type === 'reject') return { accepted: false, reason: effect.reason };
    }
    return { accepted: false, reason: 'not-active' };
  }

  serving(): boolean {
    if (!this.pairRole) return true;
    this.noticeStall(this.now());
    return this.current === 'ACTIVE' && !this.fenced && this.relearnUntil === undefined;
  }

  hasHistory(): boolean {
    return this.history;
  }

  stateName(): string {
    return this.current;
  }

  term(): string {
    return this.timeline.term;
  }

  onTimeline(sequence: number, term: string): boolean {
    return this.timeline.includes(sequence, term);
  }

  durable(sequence: number): Promise<Durability> {
    if (!this.source) return Promise.resolve('single');
    return this.source.durable(sequence);
  }

  publishableUpTo(): number {
    const source = this.source;
    return source === undefined || !source.attached ? Infinity : source.acked;
  }

  collectWhileInactive(msg: KvMsg, receivedAt: number): void {
    this.pending.add(msg, receivedAt, this.store.appliedSequence(msg.uuid) !== undefined);
  }

  // ------------------------------------------------------------------------------------------
  // The peer.

  private onPeerMessage(msg: PeerMessage): void {
    this.noticeStall(this.now());
    if (msg.type === 'heartbeat') return this.onHeartbeat(msg.heartbeat);
    if (this.refused) return;
    this.heardPeer();
    const active = this.current === 'ACTIVE';
    const passive = this.current === 'PASSIVE';
    switch (msg.type) {
      case 'data':
        if (passive) this.sink!.onData(msg.batch);
        return;
      case 'snapshot-chunk':
        if (passive) this.sink!.onSnapshotChunk(msg.streamId, msg.batch);
        return;
      case 'snapshot-end':
        if (passive) this.sink!.onSnapshotEnd(msg.streamId, msg.sequence, msg.timeline);
        return;
      case 'resume-end':
        if (passive) this.sink!.onResumeEnd(msg.streamId, msg.timeline);
        return;
      case 'request':
        if (active) this.source!.onRequest(msg.streamId, msg.fromSequence, msg.term);
        return;
      case 'ack':
        if (active) this.source!.onAck(msg.sequence, msg.term);
        this.updateAttachment();
        if (active) this.server.releasePublications();
        return;
    }
  }

  private onHeartbeat(hb: Heartbeat): void {
    const mismatch = this.mismatch(hb);
    if (mismatch) {
      // Refuse to pair: this peer's heartbeats do not count, loudly and on every window.
      if (this.refused !== mismatch) this.emit('peer-refused', mismatch);
      this.refused = mismatch;
      this.refusals.warn({ peer: hb.name, reason: mismatch }, 'refusing to pair with peer');
      return;
    }
    this.refused = undefined;
    this.peer = hb;
    this.heardPeer();
    if (this.current === 'PASSIVE' && hb.state === 'ACTIVE' && this.sink!.synced)
      this.timeline.adopt(hb.timeline);
    this.noteHistory();
    const peer = { ...hb, served: this.servedSinceFork(hb).theirs };
    this.run({ type: 'peer', peer, now: this.now() }, `peer-${hb.state}`);
    // A heartbeat read well after the wake is fresh: the peer's state is known again.
    if (this.relearnUntil !== undefined && this.now() >= this.relearnUntil) this.relearnUntil = undefined;
    this.updateAttachment();
  }

  private mismatch(hb: Heartbeat): string | undefined {
    const { heartbeatMs, failoverMs } = this.config;
    if (hb.heartbeatMs !== heartbeatMs || hb.failoverMs !== failoverMs) {
      return `timing differs: peer heartbeatMs=${hb.heartbeatMs} failoverMs=${hb.failoverMs}, ours heartbeatMs=${heartbeatMs} failoverMs=${failoverMs}`;
    }
    if (hb.role === this.pairRole) return `both nodes are configured as ${hb.role}`;
    return undefined;
  }

  private heardPeer(): void {
    const now = this.now();
    this.peerHeardAt = now;
    this.ctx = heard(this.ctx, now);
  }

  // ------------------------------------------------------------------------------------------
  // The FSM and its effects.

  private context(): Context {
    return {
      ...this.ctx,
      sequence: this.store.sequence,
      served: this.peer ? this.servedSinceFork(this.peer).mine : 0,
    };
  }

  // Transitional accessors while the node still carries out the effects itself.
  private get epoch(): number {
    return this.ctx.epoch;
  }
  private set epoch(epoch: number) {
    this.ctx = { ...this.ctx, epoch };
  }
  private get peerEpoch(): number {
    return this.ctx.peerEpoch;
  }
  private get peerExpiresAt(): number {
    return this.ctx.peerExpiresAt;
  }
  private get history(): boolean {
    return this.ctx.history;
  }
  private set history(history: boolean) {
    this.ctx = { ...this.ctx, history };
  }
  private get fenced(): boolean {
    return this.ctx.fenced;
  }
  private set fenced(fenced: boolean) {
    this.ctx = { ...this.ctx, fenced };
  }

  /**
   * Changes each node sequenced since the two histories parted. Both nodes compute the same
   * numbers once both are fenced (the sequences no longer move), so they agree on the winner.
   */
  private servedSinceFork(peer: Heartbeat): { mine: number; theirs: number } {
    const common = this.timeline.commonUpTo(peer.timeline);
    if (!Number.isFinite(common)) return { mine: 0, theirs: 0 };
    return {
      mine: Math.max(0, this.store.sequence - common),
      theirs: Math.max(0, peer.sequence - common),
    };
  }

  /** A passive that finished its sync holds the history; after a lost dual active, report. */
  private noteHistory(): void {
    if (this.current !== 'PASSIVE' || this.history || !this.sink!.synced) return;
    this.ctx = synced(this.ctx);
    this.log.info({ sequence: this.store.sequence }, 'synced: this node holds the complete history');
    if (this.divergence.waiting) this.reportDivergence();
  }

  private run(event: Event, reason: string): readonly Effect[] {
    const from = this.current;
    const next = transition(from, event, this.context());
    this.setState(next.state, effectReason(next.effects) ?? reason);
    for (const effect of next.effects) {
      switch (effect.type) {
        case 'activate':
          this.activate(effect.epoch, effect.reason);
          break;
        case 'follow':
          this.follow(effect.reason, from);
          break;
        case 'dual-active-won':
          this.log.warn(
            { peerEpoch: this.peer?.epoch, epoch: this.epoch, served: this.context().served },
            'dual active: this node served more since the fork and wins; the peer demotes',
          );
          break;
        case 'fence':
          this.fenced = true;
          this.log.warn(
            { peer: this.peer?.name, epoch: this.epoch, sequence: this.store.sequence },
            'dual active: fenced, sequencing nothing until the meeting is settled',
          );
          break;
        case 'unfence':
          this.unfence('the peer demoted');
          break;
      }
    }
    // The effects above moved the node's fields the same way; from here the FSM's word is kept.
    this.ctx = next.context;
    return next.effects;
  }

  /** Every state change goes through here: logged, counted, announced on the next tick. */
  private setState(to: State, reason: string): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.log.info({ from, to, event: reason }, `${from} -> ${to}`);
    process.nextTick(() => this.emit('state', { from, to, reason }));
  }

  private activate(epoch: number, reason: string): void {
    this.openTerm(epoch, reason);
    this.history = true;
    this.fenced = false;
    this.relearnUntil = undefined;
    this.sink!.stop();
    this.source!.start();
    this.catchUpTo = undefined;
    this.server.setActive(true);
    const applied = this.applyPending();
    this.promotions++;
    this.log.warn(
      { epoch, reason, sequence: this.store.sequence, pendingApplied: applied },
      'promoted to active',
    );
    process.nextTick(() => this.emit('promoted', epoch, reason));
  }

  /** Model Six: CHP updates the old active never replicated are applied now, freshly sequenced. */
  private applyPending(): number {
    const now = this.now();
    let applied = 0;
    for (const { msg, receivedAt } of this.pending.drain()) {
      const change = toChange(msg, receivedAt, this.limits);
      if (change.expiresAt > 0 && change.expiresAt <= now) continue; // its TTL ran out meanwhile
      if (this.store.appliedSequence(msg.uuid) !== undefined) continue;
      this.server.commit(change, 'pending', now);
      applied++;
    }
    return applied;
  }

  private unfence(why: string): void {
    if (!this.fenced) return;
    this.fenced = false;
    const applied = this.applyPending(); // CHP writes collected while fenced
    this.log.warn(
      { why, sequence: this.store.sequence, pendingApplied: applied },
      'dual active settled: sequencing again',
    );
  }

  /**
   * Operator override of "no data, no vote": promote this node although it may not hold the whole
   * history. Refused while the peer is heard active (that would be split brain).
   */
  forcePromote(): { ok: true; epoch: number } | { ok: false; reason: string } {
    if (!this.pairRole) return { ok: false, reason: 'a single server is always active' };
    if (this.current === 'ACTIVE') return { ok: true, epoch: this.epoch };
    if (this.peerUp() && this.peer?.state === 'ACTIVE')
      return { ok: false, reason: `the peer ${this.peer.name} is active: promoting would make two actives` };
    const epoch = Math.max(this.epoch, this.peerEpoch) + 1;
    this.log.error(
      { epoch, history: this.history, sequence: this.store.sequence },
      'forced promotion by an operator: this node may not hold every acknowledged write',
    );
    this.setState('ACTIVE', 'forced');
    this.activate(epoch, 'forced');
    this.updateAvailability();
    return { ok: true, epoch };
  }

  private openTerm(epoch: number, reason: string): void {
    this.epoch = epoch;
    this.timeline.open({
      term: randomBytes(6).toString('hex'),
      epoch,
      startSequence: this.store.sequence + 1,
    });
    if (!this.pairRole) this.server.setActive(true);
    this.log.debug({ epoch, reason, term: this.timeline.term }, 'new term');
  }

  private follow(reason: string, from: State): void {
    this.history = false;
    this.relearnUntil = undefined;
    if (from === 'ACTIVE') {
      this.fenced = false;
      this.server.setActive(false);
      this.source!.stop('PASSIVE');
      if (reason === 'dual-active-lost' && this.peer) {
        this.log.warn(
          { epoch: this.epoch, peerEpoch: this.peer.epoch, peer: this.peer.name },
          'dual active: the peer served more since the fork; this node demotes and resyncs',
        );
        this.noteDivergence(this.timeline.commonUpTo(this.peer.timeline));
      }
    }
    this.pending.clear();
    this.sink!.start();
  }

  /** What we sequenced after the histories parted: checked against the winner once synced. */
  private noteDivergence(common: number): void {
    if (!Number.isFinite(common)) return;
    const changes: Entry[] =
      this.store.changesSince(common) ?? this.store.map.snapshot('').filter((e) => e.sequence > common);
    this.divergence.lost(common, changes, (uuid) => this.acknowledged.has(uuid));
  }

  /** We lost a dual-active meeting and have synced from the winner: say what the winner lacks. */
  private reportDivergence(): void {
    const report: DivergenceReport | undefined = this.divergence.settle(
      (uuid) => this.store.appliedSequence(uuid) !== undefined,
    );
    if (report === undefined) return;
    const { lost, acknowledgedLost, candidates, commonUpTo } = report;
    if (lost.length === 0) {
      this.log.info(
        { candidates, commonUpTo },
        'dual active lost: the winner holds every update this node had sequenced after the fork',
      );
      return;
    }
    this.log.error(
      {
        count: lost.length,
        acknowledged: acknowledgedLost,
        candidates,
        commonUpTo,
        updates: lost.slice(0, 100),
      },
      'dual active lost: these updates were accepted here and the winner does not have them',
    );
    process.nextTick(() => this.emit('divergent', lost.length));
  }

  // ------------------------------------------------------------------------------------------
  // The one periodic timer, and stalls.

  /**
   * Were we frozen (SIGSTOP, a long GC, a costly request)? Then whatever silence we measured, we
   * slept through it. Checked first thing wherever a decision is taken, not only by the timer: on
   * waking, the event loop runs queued socket callbacks (a client vote, the passive's acks) before
   * any timer, and those must not decide on stale clocks. So: suspend judgment of the peer for one
   * failover timeout (a queued vote is refused, fresh heartbeats decide), and restart the clock of
   * writes waiting for the passive (it is not slow for time we did not observe). A gap of two
   * heartbeats triggers this; it is logged and counted as a stall past the old threshold only.
   */
  private noticeStall(now: number): void {
    const gap = now - this.lastTick;
    if (gap <= 2 * this.config.heartbeatMs) return;
    this.lastTick = now;
    this.ctx = stalled(this.ctx, now);
    this.source?.forgiveWaits(now);
    // The peer can have been promoted only if it heard nothing from us for a failover timeout;
    // a shorter gap (a busy turn, a GC pause) cannot have let that happen, so it changes nothing.
    if (this.pairRole && this.current === 'ACTIVE' && gap >= this.config.failoverMs - this.config.heartbeatMs)
      this.relearnUntil = now + 2 * this.config.heartbeatMs;
    if (gap > this.config.heartbeatMs + this.config.failoverMs / 2) {
      this.log.warn({ stalledMs: gap }, 'event loop stalled; peer silence before now does not count');
      this.emit('stall', gap);
    }
  }

  private tick(): void {
    const now = this.now();
    this.noticeStall(now);
    this.lastTick = now;
    if (!this.link) return;
    this.noteHistory();
    if (this.fenced && now >= this.peerExpiresAt) this.unfence('the peer fell silent');
    if (this.relearnUntil !== undefined && now >= this.peerExpiresAt) this.relearnUntil = undefined;
    this.link.send({ type: 'heartbeat', heartbeat: this.heartbeat() });
    this.updateAttachment();
    this.updateAvailability();
    if (this.current === 'PASSIVE') this.sink!.tick(now);
    if (this.current !== 'ACTIVE') this.pending.expire(now);
  }

  private heartbeat(): Heartbeat {
    return {
      name: this.config.name,
      role: this.pairRole!,
      state: this.current,
      epoch: this.epoch,
      sequence: this.store.sequence,
      term: this.timeline.term,
      timeline: this.timeline.list(),
      heartbeatMs: this.config.heartbeatMs,
      failoverMs: this.config.failoverMs,
      synced: this.current === 'PASSIVE' ? this.sink!.synced : (this.source?.attached ?? false),
      history: this.history,
      fenced: this.fenced,
    };
  }

  /**
   * The pair cannot serve from here: this node is not active, holds no complete history (so it
   * refuses votes), and no active peer is heard. Said once on each change, as a log line, an event
   * (the metric) and in /status; /readyz is 503 anyway since the node is not active.
   */
  private updateAvailability(): void {
    if (!this.pairRole) return;
    const activePeer = this.peerUp() && this.peer?.state === 'ACTIVE';
    // A node just started gives its peer one failover timeout to speak up first: a backup that
    // starts a moment before its primary is not an outage.
    const settled = this.now() >= this.startedAt + this.config.failoverMs;
    const reason = settled && this.current !== 'ACTIVE' && !this.history && !activePeer ? 'no-history' : null;
    if (reason === this.unavailable) return;
    this.unavailable = reason;
    if (reason)
      this.log.error(
        { reason, state: this.current, sequence: this.store.sequence },
        'unavailable: no active peer, and this node does not hold the complete history, so it refuses votes (twinstar promote --force overrides)',
      );
    else this.log.info({ state: this.current }, 'available again');
    process.nextTick(() => this.emit('unavailable', reason));
  }

  /** Does the active count its passive for acknowledgements? The rule: src/pair/attachment.ts. */
  private updateAttachment(): void {
    const source = this.source;
    if (!source || this.current !== 'ACTIVE') return;
    const now = this.now();
    const peer = this.refused ? undefined : this.peer;
    const decision = attachment({
      now,
      failoverMs: this.config.failoverMs,
      sequence: this.store.sequence,
      acked: source.acked,
      attached: source.attached,
      oldestWaitMs: source.oldestWaitMs(now),
      catchUpTo: this.catchUpTo,
      fenced: this.fenced,
      relearning: this.relearnUntil !== undefined,
      peer,
      peerExpiresAt: this.peerExpiresAt,
    });
    if (decision.hold) return;
    if (decision.detachedSlow)
      this.log.warn(
        { acked: source.acked, sequence: this.store.sequence },
        'passive is not keeping up; detaching it',
      );
    this.catchUpTo = decision.catchUpTo;
    const attach = decision.attach;
    source.setAttached(attach);
    this.server.releasePublications(); // detaching releases what waited for the passive
    const degraded = !source.caughtUp;
    if (degraded !== this.wasDegraded) {
      this.wasDegraded = degraded;
      if (degraded)
        this.log.warn('no passive attached: writes are acknowledged by the active alone (degraded)');
      else
        this.log.info({ acked: source.acked }, 'passive attached: writes are acknowledged once replicated');
      process.nextTick(() => this.emit('degraded', degraded));
    }
  }

  status(): NodeStatus {
    const now = this.now();
    const peer = this.peer;
    return {
      name: this.config.name,
      role: this.config.role,
      state: this.current,
      epoch: this.epoch,
      term: this.timeline.term,
      sequence: this.store.sequence,
      keys: this.store.map.size,
      degraded: this.isDegraded(),
      replicationLag: this.source?.lag ?? 0,
      pending: this.pending.size,
      peer: peer
        ? {
            name: peer.name,
            state: peer.state,
            epoch: peer.epoch,
            sequence: peer.sequence,
            synced: peer.synced,
            lastHeardMs: now - this.peerHeardAt,
            up: this.peerUp(),
          }
        : null,
      peerRefused: this.refused ?? null,
      history: this.history ? 'complete' : 'incomplete',
      fenced: this.fenced,
      unavailable: this.unavailable,
      endpoints: this.server.endpoints,
      pid: process.pid,
      uptimeMs: now - this.startedAt,
    };
  }

  /**
   * A fingerprint of the whole map (src/core/digest.ts): two nodes with the same digest hold the
   * same state. Computed a chunk per event-loop turn over a point-in-time copy; concurrent callers
   * share one computation, and a result is reused while the sequence has not moved, so a flood of
   * requests costs one computation at a time.
   */
  digest(): Promise<Digest> {
    const sequence = this.store.sequence;
    const last = this.lastDigest;
    if (last && last.sequence === sequence) return last.result;
    if (this.digesting) return this.digesting;
    const run = digestOf(this.store.map.snapshot(''), sequence).finally(() => {
      this.digesting = undefined;
    });
    this.digesting = run;
    this.lastDigest = { sequence, result: run };
    return run;
  }

  /** The periodic timer ran recently: the event loop is turning on time. */
  reactorHealthy(): boolean {
    return this.now() - this.lastTick <= Math.max(5 * this.config.heartbeatMs, 1000);
  }

  /**
   * Running without a passive to vouch for what was acknowledged: none is attached, or the one
   * that just attached does not yet hold everything acknowledged before it did.
   */
  isDegraded(): boolean {
    return this.pairRole !== undefined && this.current === 'ACTIVE' && !(this.source?.caughtUp ?? false);
  }

  peerUp(): boolean {
    return (
      this.peer !== undefined && !this.refused && this.now() - this.peerHeardAt <= this.config.failoverMs
    );
  }

  /** Milliseconds since the peer was last heard (Infinity if never). */
  peerSilenceMs(): number {
    return this.peer === undefined ? Infinity : this.now() - this.peerHeardAt;
  }

  /** The pending list's bytes and drops by reason (metrics). */
  get pendingList(): Pick<PendingList, 'bytes' | 'droppedBy'> {
    return this.pending;
  }

  get pendingSize(): number {
    return this.pending.size;
  }
}

function effectReason(effects: readonly Effect[]): string | undefined {
  for (const e of effects) if (e.type === 'activate' || e.type === 'follow') return e.reason;
  return undefined;
}
