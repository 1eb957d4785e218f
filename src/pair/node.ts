/**
 * A twinstar server process: the composition root. It builds what every node has (the store, with
 * its timeline of terms, the clone server, the pending list) and one mode: a single server
 * (src/pair/single.ts), or a node of a Binary Star pair (src/pair/pair-mode.ts: the reactor of
 * src/pair/binary-star.ts plus replication). The clone server asks this node whether it may serve
 * (ServicePolicy); the node asks its mode.
 *
 * One timer drives everything periodic (heartbeats, stall detection, replication health, the
 * pending list), and it runs its stall check first: a node whose event loop was frozen (SIGSTOP,
 * a long GC) must not conclude on waking that its peer died, or acknowledge writes as degraded,
 * on the strength of silence it slept through.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { CloneServer, type Admission, type ServicePolicy } from '../server/index.js';
import { MemoryStorage, Store, digestOf, type Digest, type MemoryStorageOptions } from '../core/index.js';
import type { Durability, KvMsg, RelayedAck } from '../wire/index.js';
import type { State } from '../fsm/index.js';
import * as zmq from 'zeromq';
import { limitsOf, retentionRules, type ServerConfig } from '../config/index.js';
import { packageVersion } from '../version.js';

const VERSION = packageVersion();
import { ZapHandler } from '../security/index.js';
import { RateLimitedLog, type Logger } from '../log/index.js';
import { PendingList } from './pending.js';
import type { Timeline } from '../core/index.js';
import type { ForceResult, Mode, NodeParts } from './mode.js';
import { SingleMode } from './single.js';
import { PairMode } from './pair-mode.js';
import type { ClosableStorage, NodeEvents, NodeOptions, NodeStatus } from './node-types.js';

export type {
  ClosableStorage,
  NodeEvents,
  NodeOptions,
  NodeStatus,
  PeerStatus,
  StateChange,
} from './node-types.js';

export class Node extends EventEmitter<NodeEvents> implements ServicePolicy {
  readonly store: Store;
  readonly server: CloneServer;
  readonly config: ServerConfig;
  private readonly log: Logger;
  private readonly now: () => number;
  private get timeline(): Timeline {
    return this.store.timeline; // kept with the log, where storage persists it
  }
  private readonly pending: PendingList;
  /** a secure node's client sockets have a context of their own, for their ZAP handler */
  private readonly zap: ZapHandler | undefined;
  private readonly mode: Mode;
  private readonly storage: ClosableStorage;
  private digesting: Promise<Digest> | undefined;
  private lastDigest: { sequence: number; result: Promise<Digest> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt: number;
  private started = false;
  private reportedFailure = false;
  private closed = false;

  constructor(options: NodeOptions) {
    super();
    const { config, log } = options;
    this.config = config;
    this.log = log;
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.pending = new PendingList(config.pendingMax, config.pendingMaxAgeMs, config.pendingMaxBytes);
    const limits = limitsOf(config);
    const guard = options.guard;
    const context = guard ? new zmq.Context() : undefined;
    if (guard && context) this.zap = new ZapHandler(context, (domain, key) => guard.admit(domain, key));
    const dedupeWarnings = new RateLimitedLog(log, 1, 10_000, this.now);
    const storeOptions: MemoryStorageOptions = {
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
    };
    // What the storage holds is loaded here (entries, sequence, terms and epoch, dedupe window).
    this.storage = options.openStorage?.(storeOptions) ?? new MemoryStorage(storeOptions);
    this.store = new Store(
      { ...storeOptions, retention: retentionRules(config.eventRetention) },
      this.storage,
      this.now(),
    );
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
      httpPort: config.httpPort,
      events: {
        memberTimeoutMs: config.eventMemberTimeoutMs,
        ackWaitMs: config.eventAckWaitMs,
        maxDeliver: config.eventMaxDeliver,
        maxAckPending: config.eventMaxAckPending,
      },
    });
    const parts: NodeParts = {
      config,
      log,
      now: this.now,
      limits,
      store: this.store,
      server: this.server,
      timeline: this.timeline,
      pending: this.pending,
      refusals: new RateLimitedLog(log, 5, 10_000, this.now),
      emit: this.emit.bind(this),
      openTerm: (epoch, reason) => this.openTerm(epoch, reason),
    };
    this.mode = config.role === 'single' ? new SingleMode(parts) : new PairMode(parts, config.role, options);
  }

  get state(): State {
    return this.mode.state;
  }

  /** Promotions of this node since it started (metrics). */
  get promotions(): number {
    return this.mode.promotions;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.zap?.start(); // before any CURVE socket binds: without a handler libzmq admits all
    await this.server.start();
    await this.mode.start();
    this.timer = setInterval(() => {
      this.mode.tick();
      this.store.prune(this.now());
    }, this.config.heartbeatMs);
    this.mode.tick();
    this.log.info({ endpoints: this.server.endpoints, heartbeat: this.config.heartbeatPort }, 'node started');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.mode.close();
    await this.server.close();
    this.zap?.close();
    await this.storage.close?.();
  }

  // ------------------------------------------------------------------------------------------
  // ServicePolicy: what the clone server asks of us.

  admit(): Admission {
    return this.mode.admit();
  }

  serving(): boolean {
    return this.mode.serving();
  }

  hasHistory(): boolean {
    return this.mode.hasHistory();
  }

  stateName(): string {
    return this.mode.state;
  }

  term(): string {
    return this.timeline.term;
  }

  onTimeline(sequence: number, term: string): boolean {
    return this.timeline.includes(sequence, term);
  }

  /**
   * A write is acknowledged once its change is durable in this node's storage (`flush`) and the
   * mode says so (in a pair: the passive holds it, after its own flush). A failed storage write
   * rejects with the StorageError: the client is told ERR_STORAGE, never acknowledged.
   */
  durable(sequence: number): Promise<Durability> {
    const replicated = this.mode.durable(sequence);
    // In memory there is nothing to wait for, and the promise chain costs ~15 % of pipelined
    // acknowledged writes (measured): skip it.
    if (this.store.durableOnAppend) return replicated;
    return this.store.flush().then(
      () => replicated,
      (error: unknown) => {
        replicated.catch(() => undefined);
        this.storageFailed(error as Error);
        throw error;
      },
    );
  }

  /**
   * A write's TACK the passive may send instead of this node (issue 18). It is handed over once
   * this node's own storage has flushed the write, so that the passive's answer keeps the
   * acknowledgement rule (docs/binary-star.md): flushed on both.
   */
  relay(ack: RelayedAck): void {
    const mode = this.mode;
    if (!mode.relay) return;
    if (this.store.durableOnAppend) return void mode.relay(ack);
    this.store.flush().then(
      () => void mode.relay?.(ack),
      () => undefined, // a failed flush answers nothing: durable() tells the client
    );
  }

  /** Set once a storage write failed: writes are refused up front, reads still served. */
  storageFailure(): Error | undefined {
    return this.store.failed;
  }

  private storageFailed(error: Error): void {
    if (this.reportedFailure) return;
    this.reportedFailure = true;
    this.log.error({ err: error.message }, 'storage write failed: writes are refused, reads still served');
    this.emit('storage-failed', error);
  }

  publishableUpTo(): number {
    return this.mode.publishableUpTo();
  }

  collectWhileInactive(msg: KvMsg, receivedAt: number): void {
    this.pending.add(msg, receivedAt, this.store.appliedSequence(msg.uuid, msg.key) !== undefined);
  }

  // ------------------------------------------------------------------------------------------

  /**
   * Operator override of "no data, no vote": promote this node although it may not hold the whole
   * history. Refused while the peer is heard active (that would be split brain).
   */
  forcePromote(): ForceResult {
    return this.mode.forcePromote();
  }

  private openTerm(epoch: number, reason: string): void {
    this.timeline.open({
      term: randomBytes(6).toString('hex'),
      epoch,
      startSequence: this.store.sequence + 1,
    });
    this.log.debug({ epoch, reason, term: this.timeline.term }, 'new term');
  }

  status(): NodeStatus {
    const mode = this.mode.status();
    // in the order /status has always shown
    return {
      name: this.config.name,
      version: VERSION,
      role: this.config.role,
      state: mode.state,
      epoch: mode.epoch,
      term: this.timeline.term,
      sequence: this.store.sequence,
      keys: this.store.keyCount,
      degraded: mode.degraded,
      replicationLag: mode.replicationLag,
      pending: this.pending.size,
      peer: mode.peer,
      peerRefused: mode.peerRefused,
      history: mode.history,
      fenced: mode.fenced,
      unavailable: mode.unavailable,
      endpoints: this.server.endpoints,
      pid: process.pid,
      uptimeMs: this.now() - this.startedAt,
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
    const { view, sequence: at } = this.store.view('');
    const run = digestOf(view, at).finally(() => {
      this.digesting = undefined;
    });
    this.digesting = run;
    this.lastDigest = { sequence, result: run };
    return run;
  }

  /** The periodic timer ran recently: the event loop is turning on time. */
  reactorHealthy(): boolean {
    return this.mode.reactorHealthy();
  }

  /**
   * Running without a passive to vouch for what was acknowledged: none is attached, or the one
   * that just attached does not yet hold everything acknowledged before it did.
   */
  isDegraded(): boolean {
    return this.mode.isDegraded();
  }

  peerUp(): boolean {
    return this.mode.peerUp();
  }

  /** Milliseconds since the peer was last heard (Infinity if never). */
  peerSilenceMs(): number {
    return this.mode.peerSilenceMs();
  }

  /** The pending list's bytes and drops by reason (metrics). */
  get pendingList(): Pick<PendingList, 'bytes' | 'droppedBy'> {
    return this.pending;
  }

  get pendingSize(): number {
    return this.pending.size;
  }
}
