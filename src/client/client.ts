/**
 * The failover-aware twinstar client.
 *
 * It keeps a local replica of one subtree (the Clone pattern) and follows whichever server of the
 * pair is active. Finding the active is the Binary Star client vote: a sync request (resume or
 * snapshot) goes to every server whose last vote is not still pending; the first server to start
 * answering with data is the active one, and the others' answers are ignored. The same procedure
 * runs at start, after the active falls silent (no HUGZ or update for `serverTimeoutMs`), and
 * after a server says it is no longer active.
 *
 * Writes get a uuid when issued and keep it: on the native path they are acknowledged once the
 * pair has made them durable, and any write not yet acknowledged at a failover is sent again to
 * the new active, which applies it once (de-duplication by uuid). Every wait has a bound.
 */
import { EventEmitter } from 'node:events';
import {
  decodeKvMsg,
  decodeRequestId,
  decodeSequence,
  encodeIcanhaz,
  encodeKvMsg,
  encodeRequestId,
  encodeSequence,
  formatProperties,
  HUGZ,
  KTHXBAI,
  Native,
  newUuid,
  packBatch,
  Replica,
  unpackBatch,
  DEFAULT_LIMITS,
  type Durability,
  type Entry,
  type KvMsg,
  type Limits,
  type ReplicaChange,
} from '../clone/index.js';
import {
  ClosedError,
  InvalidArgumentError,
  QueueFullError,
  ServerRejectedError,
  AccessDeniedError,
  TimeoutError,
} from '../errors.js';
import type { Logger } from '../log/index.js';
import { silentLogger } from '../log/index.js';
import { KeyError, keyBytes, publicKeyOf, readKeyFile, type KeyPair } from '../security/index.js';
import { BatchSizer } from './batches.js';
import { parseServer, VoteBook, type ServerAddress } from './servers.js';
import { zmqTransport, type Link, type Transport } from './transport.js';
import { WatchStream } from './watch.js';

export type Mode = 'auto' | 'native' | 'chp';

export interface ClientOptions {
  /** snapshot endpoints of the pair, e.g. ['tcp://127.0.0.1:5556', 'tcp://127.0.0.1:5566'] */
  servers: string[];
  /** the key prefix this client mirrors and watches ('' for everything) */
  subtree?: string;
  /** 'native' uses twinstar's acknowledged writes and resume; 'chp' plain RFC 12; 'auto' finds out */
  mode?: Mode;
  /** silence from the active (no HUGZ, no update) that counts as its death */
  serverTimeoutMs?: number;
  /** an answer to a request (a sync chunk, a write batch) must come within this time */
  requestTimeoutMs?: number;
  /** a write not acknowledged within this time (failovers included) fails with TimeoutError */
  writeTimeoutMs?: number;
  /** at most this many writes may wait for acknowledgement; more fail with QueueFullError */
  maxPendingWrites?: number;
  /** how long connect() waits for the first sync */
  connectTimeoutMs?: number;
  /** the server's size limits (default: the server defaults); bigger writes throw at once */
  limits?: Partial<Limits>;
  /**
   * CurveZMQ: encrypt every socket and prove this client's key to servers that run with
   * `--curve`. Give keys, or key files as `twinstar keygen` writes them (docs/security.md).
   */
  curve?: CurveOptions;
  log?: Logger;
  /** for tests: the sockets and the clock */
  transport?: Transport;
  clock?: Clock;
}

export type CurveOptions =
  | {
      /** this client's key pair, Z85 */
      publicKey: string;
      secretKey: string;
      /** the servers' public keys: one for all, or one per entry of `servers` */
      serverPublicKey: string | string[];
    }
  | {
      /** this client's NAME.key_secret file */
      keyFile: string;
      /** the servers' NAME.key files: one for all, or one per entry of `servers` */
      serverKeyFile: string | string[];
    };

export interface Clock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/** One change as the application sees it. */
export interface Update {
  readonly key: string;
  /** undefined when deleted */
  readonly value: Buffer | undefined;
  readonly seq: number;
  readonly deleted: boolean;
  /** true when this change comes from a full resync rather than the live stream */
  readonly resync: boolean;
}

export interface FailoverInfo {
  readonly from: string | undefined;
  readonly to: string;
  readonly sequence: number;
}

export interface ClientEvents {
  update: [update: Update];
  failover: [info: FailoverInfo];
  degraded: [degraded: boolean];
  resync: [info: { sequence: number; server: string }];
  mode: [mode: 'native' | 'chp'];
  ready: [info: { server: string; sequence: number }];
  error: [error: Error];
  close: [];
}

export interface SetOptions {
  /** seconds until the key expires; the active server deletes it then (0 or absent: never) */
  ttl?: number;
}

interface Write {
  readonly key: string;
  readonly uuid: string;
  readonly properties: string;
  readonly body: Buffer;
  readonly deadline: number;
  readonly order: number;
  resolve(sequence: number): void;
  reject(error: Error): void;
  done: boolean;
}

interface SyncStream {
  readonly reqId: number;
  readonly server: number;
  readonly entries: Entry[];
  lastProgress: number;
  /** a vote (finding the active) rather than a sync with the server already in use */
  readonly vote: boolean;
}

type Phase = 'finding' | 'syncing' | 'ready' | 'closed';

const WRITE_BATCH = 1000;
const VOTE_INTERVAL_MS = 50;

export class Client extends EventEmitter<ClientEvents> {
  readonly subtree: string;
  private readonly servers: ServerAddress[];
  private readonly links: Link[];
  private readonly replica: Replica;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly options: Required<
    Pick<ClientOptions, 'serverTimeoutMs' | 'requestTimeoutMs' | 'writeTimeoutMs' | 'maxPendingWrites'>
  >;
  private readonly votes: VoteBook;
  private readonly limits: Limits;
  private readonly batches: BatchSizer;
  private modeNow: Mode;
  private phase: Phase = 'finding';
  private current = -1;
  private term = '';
  private lastHeard = 0;
  private lastTick: number;
  private lastVoteRound = -Infinity;
  private following = false;
  private subscriptionConfirmed = false;
  private sync: SyncStream | undefined;
  private chpSnapshot: { server: number; entries: Entry[] } | undefined;
  private nextReqId = 1;
  private queue: Write[] = [];
  private inflight = new Map<number, { writes: Write[]; sentAt: number }>();
  private writeOrder = 0;
  private flushScheduled = false;
  private degradedNow = false;
  /** a running count: walking the in-flight batches on every set() made writes O(in flight) */
  private unsettled = 0;
  private sawNativeReply = false;
  private readonly startedAt: number;
  private pendingFailoverFrom: string | undefined;
  private readonly timer: unknown;
  private readonly readyWaiters: { resolve(): void; reject(error: Error): void }[] = [];

  constructor(options: ClientOptions) {
    super();
    if (!Array.isArray(options.servers) || options.servers.length === 0) {
      throw new InvalidArgumentError('servers must list at least one tcp://HOST:PORT endpoint');
    }
    const curve =
      options.curve === undefined ? undefined : resolveCurve(options.curve, options.servers.length);
    this.servers = options.servers.map((endpoint, i) => {
      const address = parseServer(endpoint);
      return curve ? { ...address, curve: { own: curve.own, serverPublicKey: curve.servers[i]! } } : address;
    });
    this.subtree = options.subtree ?? '';
    if (typeof this.subtree !== 'string') throw new InvalidArgumentError('subtree must be a string');
    this.modeNow = options.mode ?? 'auto';
    if (!['auto', 'native', 'chp'].includes(this.modeNow))
      throw new InvalidArgumentError(`mode ${String(this.modeNow)} is not auto, native or chp`);
    this.options = {
      serverTimeoutMs: positiveOption('serverTimeoutMs', options.serverTimeoutMs, 500, 20),
      requestTimeoutMs: positiveOption('requestTimeoutMs', options.requestTimeoutMs, 2000, 1),
      writeTimeoutMs: positiveOption('writeTimeoutMs', options.writeTimeoutMs, 10_000, 1),
      maxPendingWrites: positiveOption('maxPendingWrites', options.maxPendingWrites, 100_000, 1, true),
    };
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.batches = new BatchSizer(this.limits, WRITE_BATCH);
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger();
    this.votes = new VoteBook(this.options.serverTimeoutMs);
    this.replica = new Replica(this.subtree);
    const transport = options.transport ?? zmqTransport;
    this.links = this.servers.map((server, i) =>
      transport(server, {
        reply: (frames) => this.onReply(i, frames),
        update: (frames) => this.onPublished(i, frames),
      }),
    );
    this.lastTick = this.startedAt = this.clock.now();
    this.timer = this.clock.setInterval(
      () => this.tick(),
      Math.min(VOTE_INTERVAL_MS, this.options.serverTimeoutMs / 5),
    );
    this.findActive(undefined);
  }

  // ------------------------------------------------------------------------------------------
  // Public API.

  /** Resolves once the replica has been loaded from the active server. */
  ready(timeoutMs = 10_000): Promise<void> {
    if (this.phase === 'closed') return Promise.reject(new ClosedError());
    if (this.replica.sequence >= 0 && this.phase === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.readyWaiters.push(waiter);
      const timer = setTimeout(() => {
        const i = this.readyWaiters.indexOf(waiter);
        if (i === -1) return;
        this.readyWaiters.splice(i, 1);
        reject(
          new TimeoutError(
            `no active server answered within ${timeoutMs} ms (${this.servers.map((s) => s.snapshot).join(', ')})`,
          ),
        );
      }, timeoutMs);
      timer.unref?.();
      const settle = waiter.resolve;
      waiter.resolve = () => {
        clearTimeout(timer);
        settle();
      };
      const fail = waiter.reject;
      waiter.reject = (error) => {
        clearTimeout(timer);
        fail(error);
      };
    });
  }

  /** Writes a value; resolves with its sequence number once acknowledged (0 in plain CHP mode). */
  set(key: string, value: Buffer | string, options: SetOptions = {}): Promise<number> {
    const body = typeof value === 'string' ? Buffer.from(value) : value;
    if (!Buffer.isBuffer(body)) throw new InvalidArgumentError('value must be a Buffer or a string');
    if (body.length === 0)
      throw new InvalidArgumentError('value must not be empty (an empty body means delete: use delete())');
    const ttl = options.ttl ?? 0;
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0)
      throw new InvalidArgumentError('ttl must be a number of seconds >= 0');
    return this.write(key, body, ttl > 0 ? formatProperties({ ttl: String(ttl) }) : '');
  }

  /** Deletes a key; resolves with the sequence number of the delete once acknowledged. */
  delete(key: string): Promise<number> {
    return this.write(key, Buffer.alloc(0), '');
  }

  /** A value as JSON. */
  setJson(key: string, value: unknown, options?: SetOptions): Promise<number> {
    return this.set(key, JSON.stringify(value), options);
  }

  /** The current value from the local replica (synchronous). */
  get(key: string): Buffer | undefined {
    return this.replica.get(key)?.body;
  }

  getString(key: string): string | undefined {
    return this.get(key)?.toString();
  }

  getJson<T = unknown>(key: string): T | undefined {
    const value = this.getString(key);
    return value === undefined ? undefined : (JSON.parse(value) as T);
  }

  /** Every key and value under a prefix of this client's subtree, from the local replica. */
  entries(prefix = this.subtree): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const entry of this.replica.values(prefix)) out.set(entry.key, entry.body);
    return out;
  }

  /**
   * Changes under a prefix as an async iterator. With `initial` (the default) the current values
   * come first, as NATS KV watchers do. The iterator ends when the client closes.
   */
  watch(prefix = this.subtree, options: { initial?: boolean } = {}): AsyncIterableIterator<Update> {
    const stream = new WatchStream<Update>(() => {
      this.off('update', listener);
      this.off('close', end);
    });
    const listener = (update: Update) => {
      if (update.key.startsWith(prefix)) stream.push(update);
    };
    const end = () => stream.end();
    if (options.initial ?? true) {
      const initial = [...this.replica.values(prefix)].sort((a, b) => a.sequence - b.sequence);
      for (const e of initial)
        stream.push({ key: e.key, value: e.body, seq: e.sequence, deleted: false, resync: false });
    }
    this.on('update', listener);
    this.on('close', end);
    if (this.phase === 'closed') stream.end();
    return stream;
  }

  /** The sequence the replica reflects (-1 before the first sync). */
  get sequence(): number {
    return this.replica.sequence;
  }

  /** The snapshot endpoint of the server in use, if any. */
  get server(): string | undefined {
    return this.current >= 0 ? this.servers[this.current]!.snapshot : undefined;
  }

  get mode(): Mode {
    return this.modeNow;
  }

  /** True while the active acknowledges writes without a passive (the pair is degraded). */
  get degraded(): boolean {
    return this.degradedNow;
  }

  /** Writes issued and not yet settled (acknowledged, failed or timed out). */
  get pendingWrites(): number {
    return this.unsettled;
  }

  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.clock.clearInterval(this.timer);
    const error = new ClosedError();
    for (const w of this.queue) this.fail(w, error);
    for (const batch of this.inflight.values()) for (const w of batch.writes) this.fail(w, error);
    this.queue = [];
    this.inflight.clear();
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(error);
    for (const link of this.links) link.close();
    this.emit('close');
  }

  // ------------------------------------------------------------------------------------------
  // Finding the active (the vote) and syncing from it.

  private findActive(reason: string | undefined): void {
    if (this.phase === 'closed') return;
    const from = this.server;
    if (reason !== undefined) this.log.warn({ from, reason }, 'looking for the active server');
    if (this.following && this.current >= 0) this.links[this.current]!.unfollow();
    this.following = false;
    this.replica.dropHeld();
    this.phase = 'finding';
    this.sync = undefined;
    this.chpSnapshot = undefined;
    this.votes.clear();
    this.requeueInflight();
    this.pendingFailoverFrom = reason === undefined ? undefined : (from ?? '');
    this.current = -1;
    this.voteRound();
  }

  private voteRound(): void {
    const now = this.clock.now();
    this.lastVoteRound = now;
    for (const i of this.votes.due(this.links.length, now)) this.sendSync(i, true);
  }

  private sendSync(server: number, vote: boolean): void {
    const link = this.links[server]!;
    const now = this.clock.now();
    const reqId = this.nextReqId++;
    if (vote) this.votes.sent(server, reqId, now);
    const onFail = () => {
      if (vote && this.votes.serverOf(reqId) === server) this.votes.settle(server);
    };
    // In auto mode, servers that have not answered one native request for a while may be plain
    // CHP servers: ask them the RFC 12 way too.
    const tryChp =
      this.modeNow === 'auto' &&
      !this.sawNativeReply &&
      now - this.startedAt > 2 * this.options.serverTimeoutMs;
    if (this.modeNow === 'chp' || tryChp) link.request(encodeIcanhaz(this.subtree), onFail);
    if (this.modeNow === 'chp') return;
    const rid = encodeRequestId(reqId);
    const sub = Buffer.from(this.subtree);
    if (this.replica.sequence >= 0 && this.term !== '') {
      link.request(
        [Buffer.from(Native.RESUME), rid, sub, encodeSequence(this.replica.sequence), Buffer.from(this.term)],
        onFail,
      );
    } else {
      link.request([Buffer.from(Native.SNAPSHOT), rid, sub], onFail);
    }
    if (!vote) this.sync = { reqId, server, entries: [], lastProgress: now, vote: false };
  }

  /** A server began answering a vote with data: it is the active. Follow its publisher. */
  private choose(server: number, reqId: number): void {
    this.votes.clear();
    this.current = server;
    this.phase = 'syncing';
    this.replica.beginSync();
    this.sync = { reqId, server, entries: [], lastProgress: this.clock.now(), vote: true };
    this.startFollowing();
  }

  private startFollowing(): void {
    this.following = true;
    this.subscriptionConfirmed = false;
    this.links[this.current]!.follow([this.subtree, HUGZ]);
  }

  private finishSync(sequence: number, term: string, kind: string, entries: Entry[]): void {
    const server = this.servers[this.current]!.snapshot;
    const hadReplica = this.replica.sequence >= 0;
    const wasVote = this.sync?.vote ?? true;
    this.sync = undefined;
    this.term = term;
    const resync = kind !== 'resume';
    // The vote was answered before we subscribed to this server, so updates held meanwhile may
    // start after a hole. Drop them: the resume that confirms the subscription brings them again.
    if (wasVote) this.replica.dropHeld();
    const changes = resync
      ? this.replica.loadSnapshot(entries, sequence)
      : this.replica.loadResume(entries, sequence);
    this.phase = 'ready';
    this.lastHeard = this.clock.now();
    this.deliver(changes, resync && hadReplica);
    if (resync && hadReplica) this.emit('resync', { sequence, server });
    if (wasVote && this.pendingFailoverFrom !== undefined) {
      this.emit('failover', {
        from: this.pendingFailoverFrom || undefined,
        to: server,
        sequence: this.replica.sequence,
      });
      this.pendingFailoverFrom = undefined;
    }
    if (wasVote) this.emit('ready', { server, sequence: this.replica.sequence });
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
    // Updates may have been published between the server's answer and our subscription taking
    // effect; once the subscription is confirmed (first message on it), one more resume closes
    // that window. Also resume again if updates overflowed while we synced.
    if (this.replica.consumeOverflow() || (wasVote && this.subscriptionConfirmed && this.modeNow !== 'chp'))
      this.resyncCurrent();
    this.scheduleFlush();
  }

  /** A sync (resume) with the server already in use: after a gap, or to confirm a subscription. */
  private resyncCurrent(): void {
    if (this.phase !== 'ready') return;
    this.replica.beginSync();
    this.phase = 'syncing';
    if (this.modeNow !== 'chp') return this.sendSync(this.current, false);
    // Plain CHP has no resume: take a fresh snapshot from the same server.
    this.chpSnapshot = { server: this.current, entries: [] };
    this.links[this.current]!.request(encodeIcanhaz(this.subtree));
  }

  // ------------------------------------------------------------------------------------------
  // Incoming messages.

  private onPublished(server: number, frames: Buffer[]): void {
    if (server !== this.current || this.phase === 'closed') return;
    this.lastHeard = this.clock.now();
    const msg = this.decode(frames, 'published');
    if (msg === undefined) return;
    if (!this.subscriptionConfirmed) {
      this.subscriptionConfirmed = true;
      // The subscription is in force from now on, but updates published between the sync's answer
      // and this moment were missed (a subtree client cannot see the hole). Resume first, so that
      // this message and the ones after it are held, not applied past the hole.
      if (this.phase === 'ready' && this.modeNow !== 'chp') this.resyncCurrent();
    }
    if (msg.key === HUGZ) {
      if (this.replica.heartbeat(msg.sequence)) this.resyncCurrent();
    } else {
      const { changes, gap } = this.replica.offer({ ...msg, expiresAt: 0 });
      this.deliver(changes, false);
      if (gap) this.resyncCurrent();
    }
  }

  private onReply(server: number, frames: Buffer[]): void {
    if (this.phase === 'closed') return;
    const tag = frames[0]?.toString('latin1');
    const reqId = decodeRequestId(frames[1]);
    if (
      reqId !== undefined &&
      tag !== undefined &&
      tag.startsWith('T') &&
      this.onNativeReply(server, tag, reqId, frames)
    ) {
      this.sawNativeReply = true;
      if (this.modeNow === 'auto') this.setMode('native');
      return;
    }
    if (frames.length === 5 && this.modeNow !== 'native') return this.onChpSnapshot(server, frames);
    this.log.warn(
      { server: this.servers[server]!.snapshot, tag: tag?.slice(0, 16) },
      'dropped an unexpected reply',
    );
  }

  /** Returns false if the frames are not a native reply after all. */
  private onNativeReply(server: number, tag: string, reqId: number, frames: Buffer[]): boolean {
    switch (tag) {
      case Native.SYNC:
      case Native.SYNC_END: {
        if (this.phase === 'finding' && this.votes.serverOf(reqId) === server) this.choose(server, reqId);
        const sync = this.sync;
        if (!sync || sync.reqId !== reqId || sync.server !== server) return true; // a losing vote's answer
        sync.lastProgress = this.clock.now();
        this.lastHeard = sync.lastProgress;
        if (tag === Native.SYNC) {
          for (const entry of unpackBatch(frames[2] ?? Buffer.alloc(0))) sync.entries.push(entry);
        } else {
          const sequence = decodeSequence(frames[2] ?? Buffer.alloc(0));
          this.finishSync(
            sequence,
            (frames[3] ?? Buffer.alloc(0)).toString(),
            (frames[4] ?? Buffer.alloc(0)).toString(),
            sync.entries,
          );
        }
        return true;
      }
      case Native.NOT_ACTIVE: {
        if (this.votes.serverOf(reqId) === server) {
          this.votes.settle(server);
          return true;
        }
        if (server !== this.current) return true;
        const batch = this.inflight.get(reqId);
        if (batch || this.sync?.reqId === reqId)
          this.findActive(`server says ${(frames[2] ?? Buffer.alloc(0)).toString()}`);
        return true;
      }
      case Native.ACK:
        this.onAck(reqId, frames);
        return true;
      case Native.ERROR: {
        const batch = this.inflight.get(reqId);
        const reason = (frames[2] ?? Buffer.alloc(0)).toString();
        const message = (frames[3] ?? Buffer.alloc(0)).toString();
        if (!batch) {
          this.log.warn(
            { server: this.servers[server]!.snapshot, reason, message },
            'server refused a request',
          );
          return true;
        }
        if (reason === 'access-denied' && frames[4] !== undefined) {
          // Only the listed writes are refused; nothing of the batch was applied, so the rest go again.
          const refused = frames[4];
          for (let at = 0; at + 4 <= refused.length; at += 4) {
            const w = batch.writes[refused.readUInt32BE(at)];
            if (w) this.fail(w, new AccessDeniedError(w.key, `${message}: ${JSON.stringify(w.key)}`));
          }
          this.requeue(reqId);
          this.flush();
          return true;
        }
        if (reason === 'batch-too-large' && this.batches.refused(batch.writes, frames[4], frames[5])) {
          // Nothing of it was applied: the same writes go again in batches cut to the server's limits.
          this.requeue(reqId);
          this.flush();
          return true;
        }
        this.inflight.delete(reqId);
        for (const w of batch.writes) this.fail(w, new ServerRejectedError(reason, message));
        return true;
      }
      case Native.PONG:
        return true;
      default:
        return false;
    }
  }

  private onChpSnapshot(server: number, frames: Buffer[]): void {
    const msg = this.decode(frames, 'snapshot');
    if (msg === undefined) return;
    if (this.phase === 'finding') {
      if (this.modeNow === 'auto') this.setMode('chp');
      this.votes.clear();
      this.current = server;
      this.phase = 'syncing';
      this.replica.beginSync();
      this.chpSnapshot = { server, entries: [] };
      this.startFollowing();
    }
    const snap = this.chpSnapshot;
    if (!snap || snap.server !== server) return;
    this.lastHeard = this.clock.now();
    if (msg.key === KTHXBAI) {
      this.chpSnapshot = undefined;
      this.finishSync(msg.sequence, '', 'snapshot', snap.entries);
    } else {
      snap.entries.push({ ...msg, expiresAt: 0 });
    }
  }

  /** A server's kvmsg, or undefined (logged) if it is malformed: a bad message never stops the client. */
  private decode(frames: Buffer[], what: 'published' | 'snapshot'): KvMsg | undefined {
    try {
      return decodeKvMsg(frames);
    } catch (error) {
      this.log.warn({ err: error }, `dropped a malformed ${what} message`);
      return undefined;
    }
  }

  private setMode(mode: 'native' | 'chp'): void {
    if (this.modeNow === mode) return;
    this.modeNow = mode;
    if (mode === 'chp') {
      this.log.warn(
        'server speaks plain CHP (RFC 12) only: writes are fire-and-forget and never acknowledged',
      );
    }
    this.emit('mode', mode);
  }

  // ------------------------------------------------------------------------------------------
  // Writes.

  private write(key: string, body: Buffer, properties: string): Promise<number> {
    if (typeof key !== 'string' || key.length === 0)
      throw new InvalidArgumentError('key must be a non-empty string');
    const keyBytes = Buffer.byteLength(key);
    if (keyBytes > this.limits.maxKeyBytes) {
      throw new InvalidArgumentError(`key is ${keyBytes} bytes; the limit is ${this.limits.maxKeyBytes}`);
    }
    if (body.length > this.limits.maxValueBytes) {
      throw new InvalidArgumentError(
        `value is ${body.length} bytes; the limit is ${this.limits.maxValueBytes}`,
      );
    }
    if (this.phase === 'closed') return Promise.reject(new ClosedError());
    if (this.pendingWrites >= this.options.maxPendingWrites)
      return Promise.reject(new QueueFullError(this.options.maxPendingWrites));
    const uuid = newUuid();
    if (this.modeNow === 'chp') {
      // Model Six: publish to every server's collector; the passive keeps it on its pending list.
      const frames = encodeKvMsg({ key, sequence: 0, uuid, properties, body });
      for (const link of this.links) link.publish(frames);
      return Promise.resolve(0);
    }
    this.unsettled++;
    return new Promise<number>((resolve, reject) => {
      this.queue.push({
        key,
        uuid,
        properties,
        body,
        deadline: this.clock.now() + this.options.writeTimeoutMs,
        order: this.writeOrder++,
        resolve,
        reject,
        done: false,
      });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.queue.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Sends queued writes to the active in batches (one socket call for many writes). */
  private flush(): void {
    // Writes go out once the active is known, even while a sync with it is still streaming.
    if (this.phase === 'finding' || this.phase === 'closed' || this.current < 0) return;
    if (this.modeNow === 'chp') {
      const queued = this.queue.splice(0);
      for (const w of queued) {
        const frames = encodeKvMsg({
          key: w.key,
          sequence: 0,
          uuid: w.uuid,
          properties: w.properties,
          body: w.body,
        });
        for (const link of this.links) link.publish(frames);
        this.settle(w, 0);
      }
      return;
    }
    while (this.queue.length > 0) {
      const writes = this.queue.splice(0, this.batches.next(this.queue)).filter((w) => !w.done);
      if (writes.length === 0) continue;
      const reqId = this.nextReqId++;
      this.inflight.set(reqId, { writes, sentAt: this.clock.now() });
      const batch = packBatch(
        writes.map((w) => ({
          key: w.key,
          sequence: 0,
          uuid: w.uuid,
          properties: w.properties,
          body: w.body,
          expiresAt: 0,
        })),
      );
      this.links[this.current]!.request([Buffer.from(Native.SET), encodeRequestId(reqId), batch]);
    }
  }

  private onAck(reqId: number, frames: Buffer[]): void {
    const batch = this.inflight.get(reqId);
    if (!batch) return; // already answered, or re-sent after a timeout: the later answer settles it
    this.inflight.delete(reqId);
    const seqs = frames[2] ?? Buffer.alloc(0);
    const durability = (frames[3] ?? Buffer.alloc(0)).toString() as Durability;
    batch.writes.forEach((w, i) =>
      this.settle(w, 8 * i + 8 <= seqs.length ? Number(seqs.readBigInt64BE(8 * i)) : 0),
    );
    const degraded = durability === 'degraded';
    if (degraded !== this.degradedNow) {
      this.degradedNow = degraded;
      this.emit('degraded', degraded);
    }
  }

  /** At a failover every unacknowledged write goes back to the queue, in issue order, same uuid. */
  private requeueInflight(): void {
    for (const reqId of [...this.inflight.keys()]) this.requeue(reqId);
  }

  /** A batch's unsettled writes go back to the queue in issue order, keeping their uuids. */
  private requeue(reqId: number): void {
    const batch = this.inflight.get(reqId);
    if (!batch) return;
    this.inflight.delete(reqId);
    const back = batch.writes.filter((w) => !w.done);
    if (back.length > 0) this.queue = back.concat(this.queue).sort((a, b) => a.order - b.order);
  }

  private settle(w: Write, sequence: number): void {
    if (w.done) return;
    w.done = true;
    this.unsettled--;
    w.resolve(sequence);
  }

  private fail(w: Write, error: Error): void {
    if (w.done) return;
    w.done = true;
    this.unsettled--;
    w.reject(error);
  }

  // ------------------------------------------------------------------------------------------
  // The one timer: silence, stalls, timeouts, vote rounds.

  private tick(): void {
    if (this.phase === 'closed') return;
    const now = this.clock.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (gap > this.options.serverTimeoutMs / 2) {
      // We were frozen (GC, SIGSTOP, a busy loop): silence we slept through proves nothing.
      this.lastHeard = Math.max(this.lastHeard, now);
      if (this.sync) this.sync.lastProgress = now;
      for (const batch of this.inflight.values()) batch.sentAt = Math.max(batch.sentAt, now);
    }
    this.expireWrites(now);
    switch (this.phase) {
      case 'finding':
        if (now - this.lastVoteRound >= VOTE_INTERVAL_MS) this.voteRound();
        return;
      case 'syncing':
        if (now - this.lastHeard > this.options.serverTimeoutMs) this.findActive('server silent');
        else if (this.sync && now - this.sync.lastProgress > this.options.requestTimeoutMs)
          this.findActive('sync stalled');
        else if (this.chpSnapshot && now - this.lastHeard > this.options.requestTimeoutMs)
          this.findActive('snapshot stalled');
        return;
      case 'ready':
        if (now - this.lastHeard > this.options.serverTimeoutMs) return this.findActive('server silent');
        for (const [reqId, batch] of [...this.inflight]) {
          // No answer: send the same writes (same uuids) again; the server applies each once.
          if (now - batch.sentAt > this.options.requestTimeoutMs) this.requeue(reqId);
        }
        this.scheduleFlush();
        return;
    }
  }

  private expireWrites(now: number): void {
    const expired = (w: Write) => !w.done && w.deadline <= now;
    const timeout = () => new TimeoutError(`write not acknowledged within ${this.options.writeTimeoutMs} ms`);
    if (this.queue.some(expired)) {
      for (const w of this.queue) if (expired(w)) this.fail(w, timeout());
      this.queue = this.queue.filter((w) => !w.done);
    }
    for (const batch of this.inflight.values())
      for (const w of batch.writes) if (expired(w)) this.fail(w, timeout());
  }

  private deliver(changes: ReplicaChange[], resync: boolean): void {
    for (const c of changes) {
      this.emit('update', { key: c.key, value: c.value, seq: c.sequence, deleted: c.deleted, resync });
    }
  }
}

function positiveOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  integer = false,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    (integer && !Number.isInteger(value))
  ) {
    throw new InvalidArgumentError(
      `${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, not ${String(value)}`,
    );
  }
  return value;
}

/** Connects and resolves once the replica is loaded from the active server. */
export async function connect(options: ClientOptions): Promise<Client> {
  const client = new Client(options);
  try {
    await client.ready(options.connectTimeoutMs ?? 10_000);
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}

/** Keys from options or files; a bad key or file is the caller's mistake, so InvalidArgumentError. */
function resolveCurve(curve: CurveOptions, servers: number): { own: KeyPair; servers: string[] } {
  try {
    let own: KeyPair;
    let serverKeys: string[];
    if ('keyFile' in curve) {
      own = readKeyFile(curve.keyFile, true);
      const files = Array.isArray(curve.serverKeyFile) ? curve.serverKeyFile : [curve.serverKeyFile];
      serverKeys = files.map((file) => readKeyFile(file).publicKey);
    } else {
      keyBytes(curve.publicKey, 'curve.publicKey');
      if (publicKeyOf(curve.secretKey) !== curve.publicKey)
        throw new KeyError('curve.secretKey does not belong to curve.publicKey');
      own = { publicKey: curve.publicKey, secretKey: curve.secretKey };
      serverKeys = Array.isArray(curve.serverPublicKey) ? curve.serverPublicKey : [curve.serverPublicKey];
      serverKeys.forEach((key, i) => keyBytes(key, `curve.serverPublicKey[${i}]`));
    }
    if (serverKeys.length === 1) serverKeys = Array(servers).fill(serverKeys[0]);
    if (serverKeys.length !== servers)
      throw new KeyError(
        `curve needs one server key, or one per server (${servers}), not ${serverKeys.length}`,
      );
    return { own, servers: serverKeys };
  } catch (error) {
    if (error instanceof KeyError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}
