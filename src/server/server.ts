/**
 * The clone server of one node, the composition root of src/server/: the three client-facing
 * sockets of RFC 12 (sockets.ts) around a `Store`.
 *
 *   snapshot  ROUTER  ICANHAZ? -> KVSYNC* KTHXBAI, plus twinstar's native requests (router.ts)
 *   publisher PUB     KVPUB for every change, HUGZ every heartbeat (publishing.ts)
 *   collector SUB     KVSET from CHP clients, fire-and-forget
 *
 * Whether this node may serve is not decided here: every client request asks the `ServicePolicy`
 * (a Binary Star vote in a pair, always yes for a single server). The server never blocks its
 * event loop: snapshots are point-in-time arrays streamed in chunks, sends never wait
 * (`sendTimeout: 0`), and a client whose pipe is full is retried later or dropped.
 */
import { EventEmitter } from 'node:events';
import { RateLimitedLog } from '../log/index.js';
import {
  decodeKvMsg,
  encodeHugz,
  formatProperties,
  HUGZ,
  KvMsgError,
  type KvMsg,
  ADVERTISE,
  encodeReply,
  NATIVE_VERSION,
  type RelayedAck,
} from '../wire/index.js';
import type { Entry } from '../kv/index.js';
import { isReserved } from '../events/index.js';
import { newUuid, type Change, type CommitResult, type ReplicateResult, type Store } from '../core/index.js';
import { errorCode } from '../zmq/index.js';
import { SnapshotStreams } from './snapshot-streams.js';
import { RateLimiter } from './rate-limiter.js';
import { ServerSockets, type ClientSocketStats } from './sockets.js';
import { Followers } from './followers.js';
import { CHP_ASK_GRACE_MS, CONNECT_GRACE_MS, Publishing } from './publishing.js';
import { RequestRouter } from './router.js';
import { Dispatcher } from './dispatcher.js';
import type { ServerContext } from './context.js';
import { toChange } from './handlers/write.js';
import {
  DEFAULT_QUOTAS,
  EVENT_DEFAULTS,
  type ChangeSource,
  type CloneServerOptions,
  type DropReason,
  type ServerEndpoints,
  type ServerEvents,
  type ServerQuotas,
  type SocketName,
} from './types.js';

const EARLY_HUGZ_GAP_MS = 20; // the shortest gap between two HUGZ sent early for new subscribers

export class CloneServer extends EventEmitter<ServerEvents> {
  readonly endpoints: ServerEndpoints;
  private readonly sockets: ServerSockets;
  private readonly streams: SnapshotStreams;
  private readonly followers: Followers;
  private readonly publishing: Publishing;
  private readonly router: RequestRouter;
  private readonly dispatcher: Dispatcher;
  private readonly quotas: ServerQuotas;
  private readonly warnings: RateLimitedLog;
  private readonly now: () => number;
  private active = false;
  private generation = 0; // bumps at every setActive change: see ServerContext.generation
  /**
   * CHP-legal properties on KTHXBAI and HUGZ that tell a client, without it sending anything a
   * plain RFC 12 server would refuse, that this server speaks the native extension and how often
   * it sends HUGZ (docs/protocol.md).
   */
  private readonly advertised: string;
  private hugzTimer: NodeJS.Timeout | undefined;
  private earlyHugz: NodeJS.Timeout | undefined;
  private earlyHugzAt = -Infinity;
  private ttlTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;

  /** snapshot and resume streams in progress */
  get snapshotStreams(): number {
    return this.streams.size;
  }

  /** worst-case bytes those streams can hold buffered */
  get snapshotStreamBytes(): number {
    return this.streams.reservedBytes;
  }

  /** what the metrics read of the client sockets (sockets.ts `ClientSocketStats`) */
  get clientSockets(): ClientSocketStats {
    return this.sockets;
  }

  constructor(private readonly options: CloneServerOptions) {
    super();
    this.advertised = formatProperties({
      [ADVERTISE.NATIVE]: NATIVE_VERSION,
      [ADVERTISE.HUGZ_MS]: String(options.heartbeatMs),
      ...(options.httpPort ? { [ADVERTISE.HTTP]: String(options.httpPort) } : {}),
    });
    this.now = options.now ?? Date.now;
    const quotas = (this.quotas = options.quotas ?? DEFAULT_QUOTAS);
    this.warnings = new RateLimitedLog(options.log);
    const sockets = (this.sockets = new ServerSockets({
      host: options.host,
      port: options.port,
      limits: options.limits,
      quotas,
      log: options.log,
      ...(options.context ? { context: options.context } : {}),
      ...(options.guard ? { guard: options.guard } : {}),
      onSnapshotSendFailed: (error, frames) => this.sendFailed('snapshot', error, frames),
    }));
    this.endpoints = sockets.endpoints;
    this.streams = new SnapshotStreams(
      {
        maxStreams: quotas.maxSnapshotStreams,
        maxStreamsPerClient: quotas.maxSnapshotStreamsPerClient,
        idleMs: quotas.snapshotIdleMs,
        maxBytes: quotas.maxSnapshotBytes,
        maxBytesPerClient: quotas.maxSnapshotBytesPerClient,
      },
      {
        send: (frames) => sockets.routerOut.send(frames, undefined, true),
        onCount: (count, bytes) => this.emit('streams', count, bytes),
        onRefused: (reason) => this.emit('stream-refused', reason),
        now: this.now,
      },
    );
    this.followers = new Followers({
      send: (frames, stream) => sockets.routerOut.send(frames, stream),
      failed: (error, identity) => this.sendFailed('snapshot', error, [identity]),
    });
    this.publishing = new Publishing({
      pubOut: sockets.pubOut,
      routerOut: sockets.routerOut,
      followers: this.followers,
      ...(sockets.updateStream ? { updates: sockets.updateStream } : {}),
      publishableUpTo: () => options.policy.publishableUpTo(),
      lastKeySequence: () => options.store.lastKeySequence,
      subscriptions: function* () {
        for (const prefix of sockets.subscribed) if (prefix !== HUGZ) yield prefix;
      },
      released: (entry) => {
        this.emit('event-released', entry);
        this.dispatcher.released();
      },
    });
    const events = options.events ?? EVENT_DEFAULTS;
    const context = this.context();
    this.dispatcher = new Dispatcher(
      context,
      {
        memberTimeoutMs: events.memberTimeoutMs,
        defaults: {
          ackWaitMs: events.ackWaitMs,
          maxDeliver: events.maxDeliver,
          maxAckPending: events.maxAckPending,
        },
      },
      () => this.publishing.publishedSequence,
    );
    this.router = new RequestRouter(context, {
      dispatcher: this.dispatcher,
      eventWindow: events.maxAckPending,
      guard: options.guard,
      bounds: {
        limits: options.limits,
        maxSubtreeBytes: quotas.maxSubtreeBytes,
        maxFollowPrefixes: quotas.maxFollowPrefixes,
      },
      snapshotLimiter: new RateLimiter(quotas.snapshotsPerSecond, this.now),
      warnings: this.warnings,
      drop: (error, frames) => this.drop('snapshot', error, frames),
    });
  }

  /** What the router and handlers may use of this server. */
  private context(): ServerContext {
    return {
      options: this.options,
      quotas: this.quotas,
      store: this.options.store,
      policy: this.options.policy,
      streams: this.streams,
      followers: this.followers,
      advertised: this.advertised,
      events: this,
      now: this.now,
      reply: (identity, reply) => this.sockets.routerOut.post([identity, ...encodeReply(reply)]),
      deliver: (identity, reply) => this.sockets.routerOut.send([identity, ...encodeReply(reply)]),
      isActive: () => this.active,
      sequencing: () => this.sequencing(),
      generation: () => this.generation,
      commit: (change, source, now) => this.commit(change, source, now),
      chpAsked: () => this.publishing.expectSubscriber(CHP_ASK_GRACE_MS),
    };
  }

  get store(): Store {
    return this.options.store;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.sockets.start(
      (frames) => this.router.onRequest(frames),
      (frames) => this.onCollected(frames),
      () => this.hugzSoon(),
      () => this.publishing.expectSubscriber(CONNECT_GRACE_MS),
    );
    // Every node sends HUGZ, as the guide's passive does: the active's carry the published
    // sequence, a passive's its own. A client only follows the active's publisher; what a passive's
    // HUGZ are for is its advertisement (`twinstar=1`), so that an auto-mode client learns the
    // node speaks the native protocol, and can be told "no-history", even while no node is active.
    this.hugzTimer = setInterval(() => this.sendHugz(), this.options.heartbeatMs);
  }

  /**
   * A client just subscribed: send a HUGZ now rather than up to a heartbeat later, so that a client
   * in 'auto' mode learns at once that this node speaks the native protocol (and which state it is
   * in). Subscriptions arriving together share one; there is at most one early HUGZ per
   * EARLY_HUGZ_GAP_MS, whatever clients send (a later subscriber waits for the next).
   */
  private hugzSoon(): void {
    if (this.earlyHugz || this.closed) return; // one is on its way: it serves these too
    const wait = Math.max(0, this.earlyHugzAt + EARLY_HUGZ_GAP_MS - performance.now());
    this.earlyHugz = setTimeout(() => {
      this.earlyHugz = undefined;
      this.earlyHugzAt = performance.now();
      this.sendHugz();
    }, wait);
  }

  private sendHugz(): void {
    if (this.closed) return;
    // The active's say only that it is alive: not to whom a batch said so in the last half beat.
    if (this.sequencing()) {
      const hugz = encodeHugz(this.publishing.keySequence, this.advertised);
      return this.publishing.heartbeat(hugz, this.options.heartbeatMs / 2);
    }
    // Not serving: say so (to all), so that a client still following this node looks for the
    // active at once instead of taking these HUGZ for the active's.
    const state = this.active ? 'FENCED' : this.options.policy.stateName();
    const hugz = encodeHugz(this.store.sequence, `${this.advertised}${ADVERTISE.STATE}=${state}\n`);
    this.publishing.heartbeat(hugz, 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.setActive(false);
    clearInterval(this.hugzTimer);
    clearTimeout(this.earlyHugz);
    this.streams.stopAll();
    this.sockets.close();
  }

  /** Active servers publish HUGZ and expire TTLs; inactive ones do neither (promise 5). */
  setActive(active: boolean): void {
    if (active === this.active) return;
    this.active = active;
    this.generation++;
    // Changes a demoted node never got to publish are not on the winner's timeline: drop them.
    // A node that becomes active has, in effect, published everything it holds.
    const serving = active && !this.closed;
    this.publishing.reset(serving ? this.store.sequence : undefined);
    this.followers.clear();
    this.dispatcher.stop();
    clearInterval(this.ttlTimer);
    this.ttlTimer = undefined;
    if (!serving) return;
    // Leases run on the active's clock: from here, each gets its whole TTL at least (issue 17).
    this.store.leases.grace(this.now());
    this.dispatcher.start();
    this.ttlTimer = setInterval(() => this.expireTtl(), Math.min(100, this.options.heartbeatMs));
    this.sendHugz();
    this.expireTtl();
  }

  get isActive(): boolean {
    return this.active;
  }

  /** Sequence a change, publish it and tell listeners (replication, metrics). Active only. */
  commit(change: Change, source: ChangeSource, now: number): CommitResult {
    const result = this.store.commit(change, now);
    if (!result.duplicate) this.announce(result.entry, source);
    return result;
  }

  /** Apply a change the active sequenced (this node is passive): no publishing. */
  applyReplicated(entry: Entry, now: number): ReplicateResult {
    return this.store.replicate(entry, now);
  }

  /** A committed change goes to replication at once, and to clients once the passive holds it. */
  private announce(entry: Entry, source: ChangeSource): void {
    this.emit('change', entry, source);
    this.publishing.announce(entry);
  }

  /** The policy's watermark grew: publish what clients may see now (publishing.ts). */
  releasePublications(): void {
    this.publishing.release();
  }

  /** The allow-list changed: rights a client held may be gone, so it must earn them again. */
  revoke(): Promise<void> {
    // A follower was admitted under the old list: it resyncs, and follows again under the new one.
    return this.sockets.revoke(() => {
      this.followers.clear();
      // Subscriptions were admitted under the old list too: their clients subscribe again.
      if (this.active) {
        this.dispatcher.stop();
        this.dispatcher.start();
      }
    });
  }

  /** Sequencing is allowed: active, and not fenced by a meeting with another active. */
  private sequencing(): boolean {
    return this.active && this.options.policy.serving();
  }

  private expireTtl(): void {
    if (!this.sequencing()) return;
    for (const entry of this.store.expire(this.now(), newUuid)) this.announce(entry, 'ttl');
  }

  // ------------------------------------------------------------------------------------------
  // Collector: CHP KVSET, fire-and-forget. Model Six clients send to both servers; the inactive
  // one keeps the update on its pending list (the policy's business) instead of applying it.

  private onCollected(frames: Buffer[]): void {
    let msg: KvMsg;
    let change: Change;
    const now = this.now();
    try {
      msg = decodeKvMsg(frames, this.options.limits);
      change = toChange(msg, now, this.options.limits); // also validates the TTL property
    } catch (error) {
      this.drop('collector', error, frames.length);
      return;
    }
    if (isReserved(msg.key)) {
      this.emit('dropped', 'collector', 'reserved-key');
      return;
    }
    if (!this.sequencing()) {
      this.options.policy.collectWhileInactive(msg, now);
      return;
    }
    const result = this.commit(change, 'collector', now);
    if (result.duplicate) this.emit('dropped', 'collector', 'duplicate');
  }

  /**
   * A TACK the active relayed (this node is its passive and holds the write): to the client on the
   * snapshot socket. One that cannot go (the client has no connection here) is only counted: the
   * active answers that write too.
   */
  answerRelayed(ack: RelayedAck): void {
    const { identity, reqId, sequences } = ack;
    const reply = encodeReply({ command: 'TACK', reqId, sequences, durability: 'replicated' });
    this.sockets.routerOut.send([identity, ...reply]).then(
      () => this.emit('relayed', true),
      () => this.emit('relayed', false),
    );
  }

  /** A send failed; with no route to its client, that client is gone: stop its streams now. */
  private sendFailed(socket: SocketName, error: unknown, frames?: Buffer[]): void {
    const gone = errorCode(error) === 'EHOSTUNREACH';
    if (gone && socket === 'snapshot' && frames?.[0]) this.streams.clientGone(frames[0].toString('latin1'));
    this.emit('dropped', socket, gone ? 'client-gone' : 'send-failed');
  }

  private drop(socket: SocketName, error: unknown, frames: number): void {
    const reason: DropReason = error instanceof KvMsgError ? error.reason : 'bad-request';
    this.emit('dropped', socket, reason);
    this.warnings.warn(
      { socket, reason, frames, detail: (error as Error).message },
      'dropped malformed message',
    );
  }
}
