/**
 * A node of a Binary Star pair: the reactor (src/pair/binary-star.ts) decides when this node
 * serves and when it follows; this mode carries that out on the data. Active, it replicates every
 * change to the passive and acknowledges writes once the passive holds them (promise 2), or as
 * degraded when no passive is attached (src/pair/attachment.ts). Passive, it syncs from the active
 * and holds the CHP updates clients send it (Model Six) until the active's copy arrives.
 */
import { toChange, type Admission } from '../server/index.js';
import { chunkBytes, type Durability } from '../wire/index.js';
import { readAll, type Entry } from '../kv/index.js';
import type { Role, State } from '../fsm/index.js';
import type { Heartbeat, PeerMessage, RelayedAck } from '../wire/index.js';
import { PeerLink, type PeerChannel } from './peer-link.js';
import { ReplicationSink } from './replication-sink.js';
import { ReplicationSource } from './replication-source.js';
import { AcknowledgedWrites, Divergence, type DivergenceCause, type DivergenceReport } from './divergence.js';
import { attachment } from './attachment.js';
import { BinaryStar } from './binary-star.js';
import type { ForceResult, Mode, ModeStatus, NodeParts } from './mode.js';
import type { NodeOptions } from './node-types.js';

export class PairMode implements Mode {
  readonly reactor: BinaryStar;
  private readonly link: PeerChannel;
  private readonly source: ReplicationSource;
  private readonly sink: ReplicationSink;
  private readonly divergence = new Divergence();
  private readonly acknowledged = new AcknowledgedWrites();
  private catchUpTo: number | undefined;
  private wasDegraded = false;
  promotions = 0;

  constructor(
    private readonly parts: NodeParts,
    role: Role,
    options: Pick<NodeOptions, 'channel' | 'guard'>,
  ) {
    const { config, log, now, limits, store, server, timeline, pending, refusals, emit } = parts;
    const onMessage = (msg: PeerMessage) => this.onPeerMessage(msg);
    this.link =
      options.channel?.(onMessage) ??
      new PeerLink({
        bind: `tcp://${config.heartbeatHost}:${config.heartbeatPort}`,
        connect: `tcp://${config.peerHeartbeat}`,
        limits,
        maxSubtreeBytes: config.maxSubtreeBytes,
        guard: options.guard,
        onMessage,
        onDropped: (reason, error) => {
          emit('peer-dropped', reason);
          refusals.warn({ reason, detail: (error as Error).message }, 'dropped malformed peer message');
        },
      });
    this.source = new ReplicationSource({
      channel: this.link,
      store,
      timeline,
      snapshotChunk: config.snapshotChunk,
      chunkBytes: chunkBytes(limits),
      now,
      log,
    });
    this.sink = new ReplicationSink({
      channel: this.link,
      server,
      timeline,
      retryMs: Math.max(config.failoverMs, 4 * config.heartbeatMs),
      now,
      onApplied: (entry) => pending.match(entry.uuid),
      answer: (ack) => server.answerRelayed(ack),
      onMalformed: (error) => {
        emit('peer-dropped', error.reason);
        refusals.warn({ reason: error.reason, detail: error.message }, 'dropped malformed replication batch');
      },
      limits,
    });
    this.reactor = new BinaryStar({
      name: config.name,
      role,
      heartbeatMs: config.heartbeatMs,
      failoverMs: config.failoverMs,
      now,
      log,
      refusals,
      channel: this.link,
      timeline,
      sequence: () => store.sequence,
      synced: () => (this.reactor.state === 'PASSIVE' ? this.sink.synced : this.source.attached),
      hooks: {
        onActive: (epoch, reason) => this.activate(epoch, reason),
        onPassive: (reason, from, peer) => this.follow(reason, from, peer),
        onSettled: (why) => this.settle(why),
        onHistory: () => {
          if (this.divergence.waiting) this.reportDivergence();
        },
        onWake: (at) => this.source.forgiveWaits(at),
        onStall: (ms) => emit('stall', ms),
        onState: (change) => process.nextTick(() => emit('state', change)),
        onRefused: (reason) => emit('peer-refused', reason),
        onUnavailable: (reason) => process.nextTick(() => emit('unavailable', reason)),
      },
    });
    server.on('change', (entry) => this.source.onChange(entry));
    // Only a write acknowledged by this node alone can be lost in a dual active (one acknowledged
    // 'replicated' is on the other node), so only those are remembered: healthy operation pays
    // nothing for the divergence report.
    server.on('acknowledged', (changes, durability) => {
      if (durability === 'degraded') for (const change of changes) this.acknowledged.add(change.uuid);
    });
  }

  get state(): State {
    return this.reactor.state;
  }

  async start(): Promise<void> {
    if (this.link instanceof PeerLink) await this.link.start();
  }

  async close(): Promise<void> {
    this.source.stop('CLOSED');
    this.sink.stop();
    await this.link.close();
  }

  tick(): void {
    const now = this.parts.now();
    this.reactor.tick();
    this.updateAttachment();
    this.reactor.updateAvailability();
    if (this.reactor.state === 'PASSIVE') this.sink.tick(now);
    if (this.reactor.state !== 'ACTIVE') this.parts.pending.expire(now);
  }

  admit(): Admission {
    return this.reactor.vote();
  }

  serving(): boolean {
    return this.reactor.serving();
  }

  hasHistory(): boolean {
    return this.reactor.history;
  }

  durable(sequence: number): Promise<Durability> {
    return this.source.durable(sequence);
  }

  relay(ack: RelayedAck): boolean {
    return this.reactor.state === 'ACTIVE' && this.source.relay(ack);
  }

  publishableUpTo(): number {
    return this.source.attached ? this.source.acked : Infinity;
  }

  forcePromote(): ForceResult {
    return this.reactor.force();
  }

  /**
   * Running without a passive to vouch for what was acknowledged: none is attached, or the one
   * that just attached does not yet hold everything acknowledged before it did.
   */
  isDegraded(): boolean {
    return this.reactor.state === 'ACTIVE' && !this.source.caughtUp;
  }

  peerUp(): boolean {
    return this.reactor.peerUp();
  }

  peerSilenceMs(): number {
    return this.reactor.peerSilenceMs();
  }

  reactorHealthy(): boolean {
    return this.reactor.stalls.healthy(this.parts.now());
  }

  status(): ModeStatus {
    const r = this.reactor;
    return {
      state: r.state,
      epoch: r.epoch,
      degraded: this.isDegraded(),
      replicationLag: this.source.lag,
      peer: r.peerStatus(),
      peerRefused: r.refusedBecause ?? null,
      history: r.history ? 'complete' : 'incomplete',
      fenced: r.fenced,
      unavailable: r.unavailableBecause,
    };
  }

  // ------------------------------------------------------------------------------------------

  private onPeerMessage(msg: PeerMessage): void {
    const received = this.reactor.receive(msg);
    if (received === 'heartbeat') return this.updateAttachment();
    if (received !== 'message') return;
    const active = this.reactor.state === 'ACTIVE';
    const passive = this.reactor.state === 'PASSIVE';
    switch (msg.type) {
      case 'data':
        if (passive) this.sink.onData(msg.batch, msg.term, msg.acks);
        return;
      case 'snapshot-chunk':
        if (passive) this.sink.onSnapshotChunk(msg.streamId, msg.batch);
        return;
      case 'snapshot-end':
        if (passive) this.sink.onSnapshotEnd(msg.streamId, msg.sequence, msg.timeline);
        return;
      case 'resume-end':
        if (passive) this.sink.onResumeEnd(msg.streamId, msg.timeline);
        return;
      case 'request':
        if (active) this.source.onRequest(msg.streamId, msg.fromSequence, msg.term);
        return;
      case 'relay':
        if (passive) this.sink.onRelay(msg.term, msg.acks);
        return;
      case 'ack':
        if (active) this.source.onAck(msg.sequence, msg.term);
        this.updateAttachment();
        if (active) this.parts.server.releasePublications();
        return;
    }
  }

  private activate(epoch: number, reason: string): void {
    const { openTerm, server, store, log, emit } = this.parts;
    openTerm(epoch, reason);
    this.sink.stop();
    this.source.start();
    this.catchUpTo = undefined;
    server.setActive(true);
    const applied = this.applyPending();
    this.promotions++;
    log.warn({ epoch, reason, sequence: store.sequence, pendingApplied: applied }, 'promoted to active');
    process.nextTick(() => emit('promoted', epoch, reason));
  }

  /** Model Six: CHP updates the old active never replicated are applied now, freshly sequenced. */
  private applyPending(): number {
    const { now: clock, pending, limits, store, server } = this.parts;
    const now = clock();
    let applied = 0;
    for (const { msg, receivedAt } of pending.drain()) {
      const change = toChange(msg, receivedAt, limits);
      if (change.expiresAt > 0 && change.expiresAt <= now) continue; // its TTL ran out meanwhile
      if (store.appliedSequence(msg.uuid, msg.key) !== undefined) continue;
      server.commit(change, 'pending', now);
      applied++;
    }
    return applied;
  }

  /** A meeting of two actives is settled and this node serves: sequence again. */
  private settle(why: string): void {
    const applied = this.applyPending(); // CHP writes collected while fenced
    this.parts.log.warn(
      { why, sequence: this.parts.store.sequence, pendingApplied: applied },
      'dual active settled: sequencing again',
    );
  }

  private follow(reason: string, from: State, peer: Heartbeat | undefined): void {
    const { server, log, timeline, pending } = this.parts;
    if (from === 'ACTIVE') {
      server.setActive(false);
      this.source.stop('PASSIVE');
      if (reason === 'dual-active-lost' && peer) {
        log.warn(
          { epoch: this.reactor.epoch, peerEpoch: peer.epoch, peer: peer.name },
          'dual active: the peer served more since the fork; this node demotes and resyncs',
        );
        this.noteDivergence(timeline.commonUpTo(peer.timeline), 'dual-active');
      }
    } else if (peer && timeline.restored && (from === 'PRIMARY' || from === 'BACKUP')) {
      // (nothing to report unless we stored changes past the point the two histories share)
      // Restarted from our data, the peer held the newer history: if the two forked, what we
      // stored after the fork is reported once we have synced (which acknowledgements we gave
      // before the restart is not remembered: those are reported as not acknowledged).
      const common = timeline.commonUpTo(peer.timeline);
      if (this.parts.store.sequence > common) this.noteDivergence(common, 'restart');
    }
    pending.clear();
    this.sink.start();
  }

  /** What we sequenced after the histories parted: checked against the winner once synced. */
  private noteDivergence(common: number, cause: DivergenceCause): void {
    if (!Number.isFinite(common)) return;
    const { store } = this.parts;
    const note = (changes: readonly Entry[]) =>
      this.divergence.lost(common, changes, (uuid) => this.acknowledged.has(uuid), cause);
    const changes = store.changesSince(common);
    if (changes) return note(changes);
    // Beyond the replay window: the map's entries changed since then (the view is fixed now, so
    // before the resync replaces anything; deletes are not among them), read a run at a time.
    void readAll(store.view('').view, (e) => e.sequence > common)
      .then(note)
      .catch(() => undefined); // nothing to report from a storage that cannot be read
  }

  /** We lost a dual-active meeting and have synced from the winner: say what the winner lacks. */
  private reportDivergence(): void {
    const { store, log, emit } = this.parts;
    const report: DivergenceReport | undefined = this.divergence.settle(
      (entry) => store.appliedSequence(entry.uuid, entry.key) !== undefined,
    );
    if (report === undefined) return;
    const { lost, acknowledgedLost, candidates, commonUpTo, cause } = report;
    const what = cause === 'restart' ? 'restart: the peer held the newer history' : 'dual active lost';
    if (lost.length === 0) {
      log.info(
        { candidates, commonUpTo },
        `${what}: the winner holds every update this node had sequenced after the fork`,
      );
      return;
    }
    log.error(
      {
        count: lost.length,
        acknowledged: acknowledgedLost,
        candidates,
        commonUpTo,
        updates: lost.slice(0, 100),
      },
      `${what}: these updates were accepted here and the winner does not have them`,
    );
    process.nextTick(() => emit('divergent', lost.length));
  }

  /** Does the active count its passive for acknowledgements? The rule: src/pair/attachment.ts. */
  private updateAttachment(): void {
    const { reactor, source } = this;
    if (reactor.state !== 'ACTIVE') return;
    source.peerRelays = reactor.pairedPeer?.relays === true;
    const { config, store, server, log, emit } = this.parts;
    // The reactor's reading: SIGSTOP can land between its stall check and here, and a reading of
    // our own would take the time slept for the passive's delay.
    const now = reactor.now();
    const decision = attachment({
      now,
      failoverMs: config.failoverMs,
      sequence: store.sequence,
      acked: source.acked,
      attached: source.attached,
      oldestWaitMs: source.oldestWaitMs(now),
      catchUpTo: this.catchUpTo,
      fenced: reactor.fenced,
      relearning: reactor.relearning,
      peer: reactor.pairedPeer,
      peerExpiresAt: reactor.peerExpiresAt,
    });
    if (decision.hold) return;
    if (decision.detachedSlow)
      log.warn({ acked: source.acked, sequence: store.sequence }, 'passive is not keeping up; detaching it');
    this.catchUpTo = decision.catchUpTo;
    source.setAttached(decision.attach);
    server.releasePublications(); // detaching releases what waited for the passive
    const degraded = !source.caughtUp;
    if (degraded === this.wasDegraded) return;
    this.wasDegraded = degraded;
    if (degraded) log.warn('no passive attached: writes are acknowledged by the active alone (degraded)');
    else log.info({ acked: source.acked }, 'passive attached: writes are acknowledged once replicated');
    process.nextTick(() => emit('degraded', degraded));
  }
}
