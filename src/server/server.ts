/**
 * The clone server of one node: the three client-facing sockets of RFC 12 around a `Store`.
 *
 *   snapshot  ROUTER  ICANHAZ? -> KVSYNC* KTHXBAI, plus twinstar's native requests (protocol.ts)
 *   publisher PUB     KVPUB for every change, HUGZ every heartbeat while active
 *   collector SUB     KVSET from CHP clients, fire-and-forget
 *
 * Whether this node may serve is not decided here: every client request asks the `ServicePolicy`
 * (a Binary Star vote in a pair, always yes for a single server). The server never blocks its
 * event loop: snapshots are point-in-time arrays streamed in chunks, sends never wait
 * (`sendTimeout: 0`), and a client whose pipe is full is retried later or dropped.
 */
import { EventEmitter } from 'node:events';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import * as zmq from 'zeromq';
import type { Logger } from '../log/index.js';
import {
  curveServerOptions,
  notifyConnections,
  watchHandshakes,
  type Domain,
  type Guard,
  type Principal,
} from '../security/index.js';
import { RateLimitedLog } from '../log/index.js';
import {
  decodeKvMsg,
  encodeHugz,
  encodeKthxbai,
  encodeKvMsg,
  formatProperties,
  KvMsgError,
  checkedTtlSeconds,
  type DecodeReason,
  type KvMsg,
  type Limits,
  type PackedEntry,
  ICANHAZ,
} from '../wire/chp.js';
import type { Entry } from '../kv/kvmap.js';
import {
  ADVERTISE,
  Native,
  NATIVE_VERSION,
  NativeMsgError,
  decodeRequest,
  decodeRequestId,
  encodePublication,
  encodeReply,
  type Durability,
  type NativeReply,
  type NativeRequest,
  type NotActiveReason,
  type RequestBounds,
  type SnapshotSocketRequest,
} from '../wire/native.js';
import { DRAIN_BUDGET_MS, errorCode, Outbox } from '../zmq/outbox.js';
import {
  chunksThenLast,
  eachThenLast,
  measureInTurns,
  QUEUED_FRAME_BYTES,
  SnapshotStreams,
  type Measured,
  type PreparedStream,
  type StreamEnd,
  type StreamRefusal,
} from './snapshot-streams.js';
import { receiveLoop } from '../zmq/receive-loop.js';
import { RateLimiter } from './rate-limiter.js';
import { newUuid } from '../core/uuid.js';
import { chunkBytes, packedSize, sizedChunks, socketFrameLimits } from '../wire/sizes.js';
import type { Change, CommitResult, ReplicateResult, Store } from '../core/store.js';

/** What the node around the server decides: who is served and when a write is durable. */
export interface ServicePolicy {
  /**
   * A client voted for this node (ICANHAZ? or TVOTE): the Binary Star vote. Accepted when this
   * node serves now (it may have just been promoted by this very vote); otherwise why not.
   */
  admit(): Admission;
  /** This node may sequence changes now: active, and not settling a meeting with another active. */
  serving(): boolean;
  /** This node holds a complete copy of the pair's history (advertised in TPONG). */
  hasHistory(): boolean;
  /** The state reported to a native client that is turned away. */
  stateName(): string;
  /** The id of the current timeline (changes at every promotion), for resume requests. */
  term(): string;
  /** Whether a client that applied up to `sequence` under `term` shares this node's history. */
  onTimeline(sequence: number, term: string): boolean;
  /** Resolves once `sequence` is durable (promise 2); rejects if this node stops being active. */
  durable(sequence: number): Promise<Durability>;
  /**
   * The highest sequence clients may see: what the passive has confirmed, or everything when
   * there is no passive to wait for. The node calls `releasePublications()` when it grows.
   */
  publishableUpTo(): number;
  /** A CHP KVSET reached this node while it is not active (Model Six pending list). */
  collectWhileInactive(msg: KvMsg, receivedAt: number): void;
}

export type Admission =
  { readonly accepted: true } | { readonly accepted: false; readonly reason: NotActiveReason };

export type ChangeSource = 'collector' | 'native' | 'ttl' | 'pending';
export type SocketName = 'snapshot' | 'collector';
export type SnapshotKind = 'chp' | 'native' | 'resume';

export interface ServerEvents {
  change: [entry: Entry, source: ChangeSource];
  dropped: [socket: SocketName, reason: DropReason];
  /** a request an authenticated client has no right to make; what it asked is not done */
  denied: [operation: 'read' | 'write', client: string];
  snapshot: [kind: SnapshotKind, keys: number, ms: number];
  rejected: [command: string];
  /** snapshot streams in progress changed; or a request or stream was refused by a cap */
  /** streams in progress, and the bytes they can hold buffered at most */
  streams: [count: number, bytes: number];
  'stream-refused': [reason: StreamRefusal];
  /** these writes were acknowledged to the client that sent them */
  acknowledged: [changes: readonly Change[], durability: Durability];
}

export type DropReason =
  | DecodeReason
  | 'duplicate'
  | 'send-failed'
  | 'client-gone'
  | 'bad-request'
  | 'rate-limited'
  | 'busy'
  | 'stalled'
  | 'unauthenticated'
  | 'access-denied';

/** How much one client may ask for and how much the server queues for it. */
export interface ServerQuotas {
  /** snapshot and resume requests per client per second (a burst of as many is allowed) */
  snapshotsPerSecond: number;
  /** messages queued towards one client on the snapshot socket */
  clientQueue: number;
  /** messages queued towards one subscriber on the publisher */
  publisherQueue: number;
  /** messages queued from all CHP writers on the collector */
  collectorQueue: number;
  /** longest subtree (snapshot, resume) or follow prefix a client may ask for */
  maxSubtreeBytes: number;
  /** most prefixes in one TFOLLOW */
  maxFollowPrefixes: number;
  /** snapshot and resume streams in progress on the server; more are refused ('busy') */
  maxSnapshotStreams: number;
  /** snapshot and resume streams in progress towards one client; one more stops its oldest */
  maxSnapshotStreamsPerClient: number;
  /** a snapshot stream whose client takes nothing for this long is stopped, in ms */
  snapshotIdleMs: number;
  /** bytes all snapshot streams can hold buffered at once, worst case (snapshot-streams.ts) */
  maxSnapshotBytes: number;
  /** bytes one snapshot stream can hold buffered, worst case; native chunks are cut to fit it */
  maxSnapshotBytesPerClient: number;
}

export const DEFAULT_QUOTAS: ServerQuotas = {
  snapshotsPerSecond: 20,
  clientQueue: 10_000,
  publisherQueue: 100_000,
  collectorQueue: 100_000,
  maxSubtreeBytes: 1024,
  maxFollowPrefixes: 16,
  maxSnapshotStreams: 16,
  maxSnapshotStreamsPerClient: 1,
  snapshotIdleMs: 30_000,
  maxSnapshotBytes: 256 * 1024 * 1024,
  maxSnapshotBytesPerClient: 64 * 1024 * 1024,
};

export interface ServerEndpoints {
  snapshot: string;
  publisher: string;
  collector: string;
}

export interface CloneServerOptions {
  host: string;
  /** snapshot port; publisher is port + 1 and collector port + 2 */
  port: number;
  heartbeatMs: number;
  limits: Limits;
  /** entries per native snapshot chunk (TSYNC) and per replication snapshot chunk */
  snapshotChunk: number;
  quotas?: ServerQuotas;
  store: Store;
  policy: ServicePolicy;
  log: Logger;
  now?: () => number;
  /** the ZeroMQ context of the sockets (the ZAP handler of a secure server lives there) */
  context?: zmq.Context;
  /** with a guard, every socket is a CURVE server and every request is checked (docs/security.md) */
  guard?: Guard;
}

/** A client following updates over the snapshot socket (TFOLLOW), filtered by its read rights. */
interface Follower {
  identity: Buffer;
  prefixes: string[];
  principal: Principal | undefined;
}

/** messages on a send queue above which publishing waits for a later turn */
const RELEASE_BACKLOG = 2_000;
/** what one queued update costs each subscriber's pipe: 5 frames of 64-byte zmq_msg_t */
const SUBSCRIBER_BYTES_PER_UPDATE = 5 * 64;

export class CloneServer extends EventEmitter<ServerEvents> {
  readonly endpoints: ServerEndpoints;
  private readonly router: zmq.Router;
  private readonly publisher: zmq.Publisher;
  private readonly collector: zmq.Subscriber;
  private readonly routerOut: Outbox;
  private readonly streams: SnapshotStreams;
  private readonly guard: Guard | undefined;
  private readonly quotas: ServerQuotas;
  /** what the native codec refuses before a request is dispatched */
  private readonly bounds: RequestBounds;
  private readonly snapshotLimiter: RateLimiter;
  private readonly followers = new Map<string, Follower>();
  private revoking: Promise<void> = Promise.resolve();
  private readonly pubOut: Outbox;
  private readonly warnings: RateLimitedLog;
  private readonly now: () => number;
  private active = false;
  /**
   * CHP-legal properties on KTHXBAI and HUGZ that tell a client, without it sending anything a
   * plain RFC 12 server would refuse, that this server speaks the native extension and how often
   * it sends HUGZ (docs/protocol.md).
   */
  private readonly advertised: string;
  /** committed changes not yet published: clients only ever see what the passive holds */
  private unpublished: Entry[] = [];
  private unpublishedHead = 0;
  private releaseScheduled: NodeJS.Immediate | undefined;
  private publishedSequence = 0;
  private hugzTimer: NodeJS.Timeout | undefined;
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

  /** subscribers connected to the publisher right now */
  connectedClients = 0;

  /**
   * The most the publisher's queues can take for the subscribers connected now: each queues up
   * to publisherQueue updates, and libzmq keeps a 64-byte message per frame (5 per update) for
   * every subscriber; the values themselves are shared (docs/configuration.md, Memory bounds).
   */
  get subscriberQueueBoundBytes(): number {
    return this.connectedClients * this.quotas.publisherQueue * SUBSCRIBER_BYTES_PER_UPDATE;
  }

  constructor(private readonly options: CloneServerOptions) {
    super();
    this.advertised = formatProperties({
      [ADVERTISE.NATIVE]: NATIVE_VERSION,
      [ADVERTISE.HUGZ_MS]: String(options.heartbeatMs),
    });
    const { host, port } = options;
    this.endpoints = {
      snapshot: `tcp://${host}:${port}`,
      publisher: `tcp://${host}:${port + 1}`,
      collector: `tcp://${host}:${port + 2}`,
    };
    this.now = options.now ?? Date.now;
    this.guard = options.guard;
    const quotas = (this.quotas = options.quotas ?? DEFAULT_QUOTAS);
    this.bounds = {
      limits: options.limits,
      maxSubtreeBytes: quotas.maxSubtreeBytes,
      maxFollowPrefixes: quotas.maxFollowPrefixes,
    };
    // A frame above what the limits allow disconnects its sender before it is ever buffered.
    const frames = socketFrameLimits(options.limits, quotas.maxSubtreeBytes);
    const common = (domain: Domain) => ({
      linger: 0,
      ...(options.context ? { context: options.context } : {}),
      ...(this.guard ? curveServerOptions(this.guard.keys, domain) : {}),
    });
    this.router = new zmq.Router({
      ...common('snapshot'),
      mandatory: true,
      sendTimeout: 0,
      sendHighWaterMark: quotas.clientQueue,
      maxMessageSize: frames.router,
    });
    this.publisher = new zmq.Publisher({
      ...common('publisher'),
      sendTimeout: 0,
      sendHighWaterMark: quotas.publisherQueue,
      maxMessageSize: frames.publisher,
    });
    this.collector = new zmq.Subscriber({
      ...common('collector'),
      receiveHighWaterMark: quotas.collectorQueue,
      maxMessageSize: frames.collector,
    });
    if (this.guard) {
      notifyConnections(this.router);
      watchHandshakes(this.router, this.guard, 'snapshot');
      watchHandshakes(this.publisher, this.guard, 'publisher');
      watchHandshakes(this.collector, this.guard, 'collector');
    }
    this.snapshotLimiter = new RateLimiter(quotas.snapshotsPerSecond, this.now);
    this.warnings = new RateLimitedLog(options.log);
    this.routerOut = new Outbox(this.router, (error, frames) => this.sendFailed('snapshot', error, frames));
    this.streams = new SnapshotStreams(
      {
        maxStreams: quotas.maxSnapshotStreams,
        maxStreamsPerClient: quotas.maxSnapshotStreamsPerClient,
        idleMs: quotas.snapshotIdleMs,
        maxBytes: quotas.maxSnapshotBytes,
        maxBytesPerClient: quotas.maxSnapshotBytesPerClient,
      },
      {
        send: (frames) => this.routerOut.send(frames),
        onCount: (count, bytes) => this.emit('streams', count, bytes),
        onRefused: (reason) => this.emit('stream-refused', reason),
        now: this.now,
      },
    );
    this.pubOut = new Outbox(this.publisher, (error) => options.log.warn({ err: error }, 'publish failed'));
  }

  get store(): Store {
    return this.options.store;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.router.bind(this.endpoints.snapshot);
    await this.publisher.bind(this.endpoints.publisher);
    await this.collector.bind(this.endpoints.collector);
    this.collector.subscribe();
    this.publisher.events.on('accept', () => this.connectedClients++);
    this.publisher.events.on(
      'disconnect',
      () => (this.connectedClients = Math.max(0, this.connectedClients - 1)),
    );
    void receiveLoop(this.router, (frames) => this.onRequest(frames));
    void receiveLoop(this.collector, (frames) => this.onCollected(frames));
    // Every node sends HUGZ, as the guide's passive does: the active's carry the published
    // sequence, a passive's its own. A client only follows the active's publisher; what a passive's
    // HUGZ are for is its advertisement (`twinstar=1`), so that an auto-mode client learns the
    // node speaks the native protocol, and can be told "no-history", even while no node is active.
    this.hugzTimer = setInterval(() => this.sendHugz(), this.options.heartbeatMs);
  }

  private sendHugz(): void {
    if (this.closed) return;
    if (this.sequencing()) return this.publish(encodeHugz(this.publishedSequence, this.advertised));
    // Not serving: say so, so that a client still following this node looks for the active at
    // once instead of taking these HUGZ for the active's.
    const state = this.active ? 'FENCED' : this.options.policy.stateName();
    this.publish(encodeHugz(this.store.sequence, `${this.advertised}${ADVERTISE.STATE}=${state}\n`));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.setActive(false);
    clearInterval(this.hugzTimer);
    this.streams.stopAll();
    this.routerOut.close();
    this.pubOut.close();
    this.router.close();
    this.publisher.close();
    this.collector.close();
  }

  /** Active servers publish HUGZ and expire TTLs; inactive ones do neither (promise 5). */
  setActive(active: boolean): void {
    if (active === this.active) return;
    this.active = active;
    // Changes a demoted node never got to publish are not on the winner's timeline: drop them.
    this.unpublished = [];
    this.unpublishedHead = 0;
    clearImmediate(this.releaseScheduled);
    this.releaseScheduled = undefined;
    this.followers.clear();
    clearInterval(this.ttlTimer);
    this.ttlTimer = undefined;
    if (!active || this.closed) return;
    this.publishedSequence = this.store.sequence;
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

  /**
   * A committed change goes to replication at once and to clients once the passive holds it. A
   * client that saw a change the passive lacks would, after a failover, see its sequence number
   * reused for another change (promise 1); publishing in step with replication rules that out.
   */
  private announce(entry: Entry, source: ChangeSource): void {
    this.emit('change', entry, source);
    this.unpublished.push(entry);
    this.releasePublications();
  }

  /**
   * Publish, in order, every committed change the policy allows clients to see now. Each change
   * goes to the publisher and to every follower. The rest waits for a later event-loop turn after
   * DRAIN_BUDGET_MS of that (promise 7), or while more than RELEASE_BACKLOG messages already wait
   * on a send queue: replies to clients (TPONG, TACK) queue behind follower updates, and a client
   * that waits longer than its server timeout for an answer fails over (issue 13: a 200-write
   * batch to 1,000 followers delayed every reply by 47 s).
   */
  releasePublications(): void {
    if (this.releaseScheduled) return; // the scheduled turn picks up from where the last one stopped
    const limit = this.options.policy.publishableUpTo();
    const queue = this.unpublished;
    const started = performance.now();
    let i = this.unpublishedHead;
    for (; i < queue.length && queue[i]!.sequence <= limit; i++) {
      const backlog = this.routerOut.length > RELEASE_BACKLOG || this.pubOut.length > RELEASE_BACKLOG;
      if (backlog || (i > this.unpublishedHead && performance.now() - started > DRAIN_BUDGET_MS)) {
        this.releaseScheduled = setImmediate(() => {
          this.releaseScheduled = undefined;
          this.releasePublications();
        });
        break;
      }
      this.publish(encodeKvMsg(queue[i]!), queue[i]!.key);
      this.publishedSequence = queue[i]!.sequence;
    }
    if (i === queue.length) {
      this.unpublished = [];
      this.unpublishedHead = 0;
    } else if (i > 1024 && i * 2 > queue.length) {
      this.unpublished = queue.slice(i);
      this.unpublishedHead = 0;
    } else {
      this.unpublishedHead = i;
    }
  }

  /**
   * To the publisher, and to every follower whose prefixes match and who may read the key. A
   * follower whose queue is full is dropped rather than skipped: a gap it never learnt of would
   * leave its replica silently wrong, while a dropped follower hears no HUGZ and resyncs.
   */
  private publish(frames: Buffer[], key?: string): void {
    this.pubOut.post(frames);
    for (const [id, follower] of this.followers) {
      if (key !== undefined) {
        if (follower.principal && !follower.principal.canRead(key)) continue;
        if (!follower.prefixes.some((prefix) => key.startsWith(prefix))) continue;
      }
      // The follower is the stream: once one message to it fails, none queued after it goes out.
      this.routerOut
        .send([follower.identity, ...encodePublication(frames)], follower)
        .catch((error: unknown) => {
          if (this.followers.get(id) !== follower) return;
          this.followers.delete(id);
          this.sendFailed('snapshot', error, [follower.identity]);
        });
    }
  }

  /** The allow-list changed: rights a client held may be gone, so it must earn them again. */
  revoke(): Promise<void> {
    // Reloads can come close together (SIGHUP and the file watch): one rebind at a time.
    this.revoking = this.revoking.catch(() => undefined).then(() => this.cutConnections());
    return this.revoking;
  }

  private async cutConnections(): Promise<void> {
    // A follower was admitted under the old list: it resyncs, and follows again under the new one.
    this.followers.clear();
    // A PUB or SUB cannot drop one peer, and ZAP only runs when a connection is made: rebinding
    // ends every connection accepted on the endpoint, and each client's reconnect asks ZAP again.
    for (const [socket, endpoint] of [
      [this.publisher, this.endpoints.publisher],
      [this.collector, this.endpoints.collector],
    ] as const) {
      await rebind(socket, endpoint, this.options.log);
    }
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
    if (!this.sequencing()) {
      this.options.policy.collectWhileInactive(msg, now);
      return;
    }
    const result = this.commit(change, 'collector', now);
    if (result.duplicate) this.emit('dropped', 'collector', 'duplicate');
  }

  // ------------------------------------------------------------------------------------------
  // Snapshot socket: every request decoded by the native codec (wire/native.ts), then dispatched.

  private onRequest([identity, command, ...args]: Buffer[]): void {
    if (identity === undefined || command === undefined) return;
    try {
      // With security on, the routing id is the client's session token (security/session.ts),
      // and an empty message is libzmq's notice that its connection began or ended.
      if (this.guard && command.length === 0 && args.length === 0) {
        const refused = this.guard.connectionNotice(identity);
        if (refused) this.warnings.warn({ reason: refused }, 'session token refused');
        return;
      }
      const principal = this.guard?.principalOf(identity);
      if (this.guard && principal === undefined) return this.unauthenticated(identity, args);
      let request;
      try {
        request = decodeRequest([command, ...args], this.bounds);
      } catch (error) {
        if (error instanceof NativeMsgError) this.answerMalformed(identity, error);
        throw error;
      }
      this.dispatch(identity, request, principal);
    } catch (error) {
      this.drop('snapshot', error, args.length + 1);
    }
  }

  private dispatch(identity: Buffer, request: SnapshotSocketRequest, principal?: Principal): void {
    switch (request.command) {
      case ICANHAZ:
        return this.onIcanhaz(identity, request.subtree, principal);
      case 'TSNAP':
      case 'TRESUME':
        return this.onNativeSync(identity, request, principal);
      case 'TSET':
        return this.onSet(identity, request.reqId, request.writes, principal);
      case 'TPING':
        return this.pong(identity, request.reqId);
      case 'TVOTE':
        return this.onVote(identity, request.reqId);
      case 'TFOLLOW':
        return this.onFollow(identity, request.reqId, request.prefixes, principal);
      case 'TUNFOLLOW':
        this.followers.delete(identity.toString('latin1'));
        return;
    }
  }

  /**
   * A malformed request whose id is readable is told why when the client could only retry it in
   * vain: a TSET (nothing of it is applied), a subtree or prefix too long, too many prefixes.
   */
  private answerMalformed(identity: Buffer, error: NativeMsgError): void {
    if (error.reqId === undefined) return;
    if (error.command === Native.SET) return this.refuseWrites(identity, error.reqId, error);
    if (error.reason === 'subtree-too-long' || error.reason === 'too-many-prefixes')
      this.reply(identity, {
        command: 'TERROR',
        reqId: error.reqId,
        reason: error.reason,
        message: error.detail,
      });
  }

  /** A TSET that cannot be applied: TERROR with the reason, and the limits if it was too large. */
  private refuseWrites(identity: Buffer, reqId: number, error: KvMsgError): void {
    const { maxBatchEntries, maxBatchBytes } = this.options.limits;
    this.reply(identity, {
      command: 'TERROR',
      reqId,
      reason: error.reason,
      message: error.message,
      ...(error.reason === 'batch-too-large' ? { fit: { maxBatchEntries, maxBatchBytes } } : {}),
    });
  }

  private reply(identity: Buffer, reply: NativeReply): void {
    this.routerOut.post([identity, ...encodeReply(reply)]);
  }

  /**
   * A request whose routing id is no valid session token of a listed key. A native request is
   * told why (its id is readable); nothing else is answered.
   */
  private unauthenticated(identity: Buffer, args: Buffer[]): void {
    this.emit('dropped', 'snapshot', 'unauthenticated');
    const reqId = decodeRequestId(args[0]);
    if (reqId === undefined) return;
    this.reply(identity, {
      command: 'TERROR',
      reqId,
      reason: 'unauthenticated',
      message: 'this server requires a session token of a listed client key (docs/security.md)',
    });
  }

  /** Reading a subtree the client may read only part of is allowed, filtered, and counted. */
  private checkRead(subtree: string, principal: Principal | undefined): void {
    if (principal && !principal.canReadAll(subtree)) this.emit('denied', 'read', principal.name);
  }

  /** A client may ask for a snapshot (or resume) this often; beyond that, requests are dropped. */
  private allowSnapshot(identity: Buffer, principal: Principal | undefined): boolean {
    if (this.snapshotLimiter.take(principal?.publicKey ?? identity.toString('latin1'))) return true;
    this.emit('dropped', 'snapshot', 'rate-limited');
    return false;
  }

  /** TFOLLOW: updates under the prefixes, sent over this socket, only those the client may read. */
  private onFollow(
    identity: Buffer,
    reqId: number,
    prefixes: readonly string[],
    principal: Principal | undefined,
  ): void {
    if (!this.admitNative(identity, reqId, Native.FOLLOW)) return;
    for (const prefix of prefixes) this.checkRead(prefix, principal);
    this.followers.set(identity.toString('latin1'), { identity, prefixes: [...prefixes], principal });
  }

  /** Plain RFC 12 snapshot. A turned-away CHP client gets silence and tries the other server. */
  private onIcanhaz(identity: Buffer, subtree: string, principal: Principal | undefined): void {
    if (!this.allowSnapshot(identity, principal)) return;
    this.checkRead(subtree, principal);
    if (!this.options.policy.admit().accepted) {
      this.emit('rejected', ICANHAZ);
      return;
    }
    const started = this.now();
    const sequence = this.store.sequence;
    let count = 0;
    const ending = this.streams.serve(identity.toString('latin1'), async () => {
      // The point-in-time view is taken now, in one O(n) step; the stream walks it with an index.
      const all = this.store.map.snapshot('');
      if (!(await this.whenPublishable(sequence))) return undefined;
      const entries = await filterInTurns(all, subtree, principal);
      count = entries.length;
      // One KVSYNC per entry: identity and five frames, the entry's bytes in them.
      const measured = await measureInTurns(
        mapIterable(entries, (entry) => ({
          message: entry,
          bytes: packedSize(entry) + 6 * QUEUED_FRAME_BYTES,
        })),
        this.quotas.clientQueue,
      );
      return {
        bytes: measured.bytes,
        source: eachThenLast(
          measured.messages,
          (entry) => [identity, ...encodeKvMsg(entry)],
          () => [identity, ...encodeKthxbai(sequence, subtree, this.advertised)],
        ),
      };
    });
    // At the cap: a CHP client is not told (RFC 12 has no such answer); dropped and counted.
    if (ending === undefined) {
      this.emit('dropped', 'snapshot', 'busy');
      return;
    }
    void ending.then((end) => {
      if (end === 'busy') this.emit('dropped', 'snapshot', 'busy');
      this.streamEnded(end);
      if (end === 'done') this.emit('snapshot', 'chp', count, this.now() - started);
    });
  }

  /**
   * A snapshot or resume may show clients only what the passive holds, like the publisher: wait
   * until its sequence is durable. False if this node stopped being active meanwhile.
   */
  private whenPublishable(sequence: number): Promise<boolean> {
    if (sequence <= this.options.policy.publishableUpTo()) return Promise.resolve(true);
    return this.options.policy.durable(sequence).then(
      () => this.active,
      () => false,
    );
  }

  /** Native snapshot or resume: packed chunks, then TSYNCEND saying which it was. */
  private onNativeSync(
    identity: Buffer,
    request: Extract<NativeRequest, { command: 'TSNAP' | 'TRESUME' }>,
    principal: Principal | undefined,
  ): void {
    const { reqId, subtree } = request;
    if (!this.allowSnapshot(identity, principal)) return;
    this.checkRead(subtree, principal);
    if (!this.admitNative(identity, reqId, request.command)) return;
    const started = this.now();
    const sequence = this.store.sequence;
    const term = this.options.policy.term();
    let changes: Entry[] | undefined;
    if (request.command === Native.RESUME) {
      const { fromSequence, term: fromTerm } = request;
      if (this.options.policy.onTimeline(fromSequence, fromTerm))
        changes = this.store.changesSince(fromSequence, subtree);
    }
    const kind = changes === undefined ? 'snapshot' : 'resume';
    let count = 0;
    const ending = this.streams.serve(
      identity.toString('latin1'),
      async (): Promise<PreparedStream | undefined> => {
        // One O(n) step takes the point-in-time view; filtering it by subtree runs across turns.
        const all = changes ?? this.store.map.snapshot('');
        if (!(await this.whenPublishable(sequence))) return undefined;
        const entries = await filterInTurns(all, changes ? '' : subtree, principal);
        count = entries.length;
        // Chunks as large as allowed; if a full pipe of those would not fit the per-client byte
        // budget, cut again, small enough that it does.
        let measured = await this.measureChunks(entries, chunkBytes(this.options.limits));
        if (measured.bytes > this.quotas.maxSnapshotBytesPerClient)
          measured = await this.measureChunks(entries, this.streamChunkBytes);
        return {
          bytes: measured.bytes,
          source: chunksThenLast(
            measured.messages[Symbol.iterator](),
            (slice) => [identity, ...encodeReply({ command: 'TSYNC', reqId, entries: slice })],
            () => [identity, ...encodeReply({ command: 'TSYNCEND', reqId, sequence, term, kind })],
          ),
        };
      },
    );
    if (ending === undefined) {
      this.refuseBusy(
        identity,
        reqId,
        `${this.streams.size} snapshot streams in progress, limit ${this.quotas.maxSnapshotStreams}`,
      );
      return;
    }
    void ending.then((end) => {
      if (end === 'busy')
        this.refuseBusy(
          identity,
          reqId,
          `snapshot streams hold ${this.streams.reservedBytes} bytes, limit ${this.quotas.maxSnapshotBytes}`,
        );
      this.streamEnded(end);
      if (end === 'done')
        this.emit('snapshot', kind === 'resume' ? 'resume' : 'native', count, this.now() - started);
    });
  }

  /** At a cap: the client is told so, backs off and asks again (docs/protocol.md). */
  private refuseBusy(identity: Buffer, reqId: number, detail: string): void {
    this.reply(identity, { command: 'TERROR', reqId, reason: 'busy', message: detail });
    this.emit('dropped', 'snapshot', 'busy');
  }

  private measureChunks(entries: Entry[], maxBytes: number): Promise<Measured<Entry[]>> {
    const chunks = sizedChunks(entries, this.options.snapshotChunk, maxBytes);
    return measureInTurns(
      mapIterable(chunks, (chunk) => ({
        message: chunk.entries,
        bytes: chunk.bytes + 4 * QUEUED_FRAME_BYTES,
      })),
      this.quotas.clientQueue,
    );
  }

  /**
   * Target bytes of one native snapshot chunk: a pipe full of them (clientQueue) stays within the
   * per-client budget, but never below 4 KiB (tiny chunks cost more than they save) nor above what
   * a client's socket accepts.
   */
  private get streamChunkBytes(): number {
    const fit =
      Math.floor(this.quotas.maxSnapshotBytesPerClient / this.quotas.clientQueue) - 4 * QUEUED_FRAME_BYTES;
    return Math.min(chunkBytes(this.options.limits), Math.max(4096, fit));
  }

  /** A stream that did not finish is counted under why (the caps' refusals are counted apart). */
  private streamEnded(end: StreamEnd): void {
    if (end === 'client-gone' || end === 'send-failed' || end === 'stalled')
      this.emit('dropped', 'snapshot', end);
  }

  /** Acknowledged writes: sequence each, then answer once all are durable (promise 2). */
  private onSet(
    identity: Buffer,
    reqId: number,
    writes: readonly PackedEntry[],
    principal: Principal | undefined,
  ): void {
    let changes: Change[];
    const now = this.now();
    try {
      changes = writes.map((write) => toChange(write, now, this.options.limits));
    } catch (error) {
      // The request id is readable, so say why instead of leaving the client to time out and
      // retry a batch that can never succeed. Nothing in the batch is applied.
      if (error instanceof KvMsgError) this.refuseWrites(identity, reqId, error);
      throw error;
    }
    if (principal && !changes.every((change) => principal.canWrite(change.key)))
      return this.denyWrites(identity, reqId, changes, principal);
    if (!this.admitNative(identity, reqId, Native.SET)) return;
    const sequences = changes.map((change) => {
      const result = this.commit(change, 'native', now);
      return result.duplicate ? result.sequence : result.entry.sequence;
    });
    let highest = 0; // a loop, not Math.max(...sequences): a spread of 120k+ overflows the stack
    for (const sequence of sequences) if (sequence > highest) highest = sequence;
    this.options.policy.durable(highest).then(
      (durability) => {
        this.reply(identity, { command: 'TACK', reqId, sequences, durability });
        this.emit('acknowledged', changes, durability);
      },
      () =>
        this.reply(identity, {
          command: 'TNOTACTIVE',
          reqId,
          state: this.options.policy.stateName(),
          reason: 'not-active',
        }),
    );
  }

  /**
   * Nothing of a batch with a key the client may not write is applied. TERROR lists the refused
   * writes (4-byte indexes) so the client fails those and sends the others again.
   */
  private denyWrites(identity: Buffer, reqId: number, changes: Change[], principal: Principal): void {
    const refused = changes.flatMap((change, i) => (principal.canWrite(change.key) ? [] : [i]));
    for (let i = 0; i < refused.length; i++) this.emit('denied', 'write', principal.name);
    this.emit('dropped', 'snapshot', 'access-denied');
    const first = changes[refused[0]!]!.key;
    this.reply(identity, {
      command: 'TERROR',
      reqId,
      reason: 'access-denied',
      message: `client ${principal.name} may not write ${JSON.stringify(first.slice(0, 200))}`,
      refused,
    });
  }

  /** Never a vote (TPING), or an accepted vote: who this node is, so a client can find the active. */
  private pong(identity: Buffer, reqId: number): void {
    const { policy } = this.options;
    this.reply(identity, {
      command: 'TPONG',
      reqId,
      state: this.sequencing() ? 'ACTIVE' : this.active ? 'FENCED' : policy.stateName(),
      sequence: this.store.sequence,
      term: policy.term(),
      heartbeatMs: this.options.heartbeatMs,
      history: policy.hasHistory() ? 'complete' : 'incomplete',
    });
  }

  /**
   * The Binary Star vote of a native client, which sends it only after it found the active silent
   * itself. Accepted: TPONG (ACTIVE). Refused: TNOTACTIVE with the reason, at once.
   */
  private onVote(identity: Buffer, reqId: number): void {
    const admission = this.options.policy.admit();
    if (admission.accepted) return this.pong(identity, reqId);
    this.emit('rejected', Native.VOTE);
    this.notActive(identity, reqId, admission.reason);
  }

  /** Every other native request is served only by the active, and is never a vote. */
  private admitNative(identity: Buffer, reqId: number, command: string): boolean {
    if (this.sequencing()) return true;
    this.emit('rejected', command);
    this.notActive(identity, reqId, this.active ? 'fenced' : 'not-active');
    return false;
  }

  private notActive(identity: Buffer, reqId: number, reason: NotActiveReason): void {
    this.reply(identity, { command: 'TNOTACTIVE', reqId, state: this.options.policy.stateName(), reason });
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

/**
 * Unbinds and binds again. libzmq closes the old listener in its I/O thread, after `unbind`
 * resolves, so the new bind is retried until the port is free (a few milliseconds).
 */
async function rebind(socket: zmq.Socket, endpoint: string, log: Logger): Promise<void> {
  await socket.unbind(endpoint).catch(() => undefined);
  for (let attempt = 0; ; attempt++) {
    try {
      await socket.bind(endpoint);
      return;
    } catch (error) {
      if (socket.closed) return;
      if (attempt === 500) {
        log.error({ err: error, endpoint }, 'cannot bind again after revoking access');
        throw error;
      }
      await sleep(10);
    }
  }
}

/**
 * The entries under a prefix that the principal may read (all of them when security is off),
 * scanning 50k per event-loop turn so a big map never stalls the reactor.
 */
function* mapIterable<T, U>(items: Iterable<T>, f: (item: T) => U): Generator<U> {
  for (const item of items) yield f(item);
}

async function filterInTurns(entries: Entry[], prefix: string, principal?: Principal): Promise<Entry[]> {
  if (prefix === '' && (principal === undefined || principal.readsEverything)) return entries;
  const out: Entry[] = [];
  for (let i = 0; i < entries.length; i++) {
    const key = entries[i]!.key;
    if (key.startsWith(prefix) && (principal === undefined || principal.canRead(key))) out.push(entries[i]!);
    if (i % 50_000 === 49_999) await yieldToLoop();
  }
  return out;
}

/**
 * A client's KVSET (or native write) as a change to sequence: relative TTL becomes a deadline.
 * A TTL outside the limits' range is refused.
 */
export function toChange(msg: KvMsg, now: number, limits: Limits): Change {
  const ttl = checkedTtlSeconds(msg.properties, limits);
  return {
    key: msg.key,
    uuid: msg.uuid,
    properties: msg.properties,
    body: msg.body,
    expiresAt: ttl > 0 && msg.body.length > 0 ? now + ttl * 1000 : 0,
  };
}
