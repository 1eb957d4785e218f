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
  KvMsgError,
  Native,
  newUuid,
  packBatch,
  Replica,
  unpackBatch,
  DEFAULT_LIMITS,
  type Durability,
  type Entry,
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
import { RateLimitedLog, silentLogger } from '../log/index.js';
import { KeyError, keyBytes, publicKeyOf, readKeyFile, type KeyPair } from '../security/index.js';
import {
  decodeAckSequences,
  DropCounter,
  isMalformed,
  Quarantine,
  reasonOf,
  ReplyError,
  type DropInfo,
  type DropSource,
} from './drops.js';
import { checkKey, checkPrefix, checkTtl, checkValue, jsonText, parseJson, rejectWith } from './arguments.js';
import { AppliedWaiters } from './read-your-writes.js';
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
  /** a message from a server was malformed and dropped (counted in `stats().dropped`) */
  dropped: [info: DropInfo];
  close: [];
}

/** Counters of what the client has seen go wrong. */
export interface ClientStats {
  /** messages from servers dropped as malformed, by reason (e.g. 'batch-truncated', 'ack-size') */
  readonly dropped: Record<string, number>;
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
  private readonly drops = new DropCounter();
  private readonly dropLog: RateLimitedLog;
  /** servers whose replies were malformed: no vote goes to them until their time is up */
  private readonly quarantine = new Quarantine();
  /** acknowledged writes waiting for the replica to apply their sequence (read-your-writes) */
  private readonly applying = new AppliedWaiters<Write>();

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
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLogger();
    this.dropLog = new RateLimitedLog(this.log, 10, 10_000, () => this.clock.now());
    this.votes = new VoteBook(this.options.serverTimeoutMs);
    this.replica = new Replica(this.subtree);
    const transport = options.transport ?? zmqTransport;
    this.links = this.servers.map((server, i) =>
      transport(server, {
        reply: (frames) => this.guard(i, 'reply', frames),
        update: (frames) => this.guard(i, 'published', frames),
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

  /**
   * Writes a value; resolves with its sequence number once acknowledged and applied to this
   * client's replica (0 in plain CHP mode). Bad arguments (a key outside the subtree, an empty or
   * oversized value) reject with InvalidArgumentError.
   */
  set(key: string, value: Buffer | string, options?: SetOptions): Promise<number> {
    try {
      const body = checkValue(value, this.limits);
      const ttl = checkTtl(options);
      return this.write(key, body, ttl > 0 ? formatProperties({ ttl: String(ttl) }) : '');
    } catch (error) {
      return rejectWith(error);
    }
  }

  /** Deletes a key; resolves with the sequence number of the delete once acknowledged and applied. */
  delete(key: string): Promise<number> {
    return this.write(key, Buffer.alloc(0), '');
  }

  /** A value as JSON; a value JSON cannot represent (a cycle, undefined) rejects with InvalidArgumentError. */
  setJson(key: string, value: unknown, options?: SetOptions): Promise<number> {
    try {
      return this.set(key, jsonText(value), options);
    } catch (error) {
      return rejectWith(error);
    }
  }

  /**
   * The current value from the local replica (synchronous). Throws InvalidArgumentError for a key
   * outside this client's subtree (the replica does not hold it).
   */
  get(key: string): Buffer | undefined {
    return this.replica.get(checkKey(key, this.subtree))?.body;
  }

  getString(key: string): string | undefined {
    return this.get(key)?.toString();
  }

  /** The value parsed as JSON; throws ValueFormatError if it is not JSON. */
  getJson<T = unknown>(key: string): T | undefined {
    const value = this.getString(key);
    return value === undefined ? undefined : parseJson<T>(key, value);
  }

  /**
   * Every key and value under a prefix of this client's subtree, from the local replica. Throws
   * InvalidArgumentError for a prefix outside the subtree.
   */
  entries(prefix = this.subtree): Map<string, Buffer> {
    checkPrefix(prefix, this.subtree);
    const out = new Map<string, Buffer>();
    for (const entry of this.replica.values(prefix)) out.set(entry.key, entry.body);
    return out;
  }

  /**
   * Changes under a prefix as an async iterator. With `initial` (the default) the current values
   * come first, as NATS KV watchers do. The iterator ends when the client closes. A prefix outside
   * this client's subtree throws InvalidArgumentError at once (watch() itself returns no promise).
   */
  watch(prefix = this.subtree, options: { initial?: boolean } = {}): AsyncIterableIterator<Update> {
    checkPrefix(prefix, this.subtree);
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

  /** What the client has dropped since it started. */
  stats(): ClientStats {
    return { dropped: this.drops.snapshot() };
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
    this.applying.drain((w) => this.fail(w, error));
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
    for (const i of this.votes.due(this.links.length, now))
      if (!this.quarantine.has(i, now)) this.sendSync(i, true);
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

  /**
   * Every message from a socket comes through here: nothing a server sends may throw out of a
   * socket handler (it would end the receive loop or the application's process). A malformed
   * message is dropped and counted; whatever else goes wrong is logged and counted too.
   */
  private guard(server: number, source: DropSource, frames: Buffer[]): void {
    try {
      if (source === 'reply') this.onReply(server, frames);
      else this.onPublished(server, frames);
    } catch (error) {
      try {
        this.dropped(server, source, error);
      } catch (inner) {
        this.log.error({ err: inner }, 'failed to handle a dropped message');
      }
    }
  }

  /**
   * A message from `server` was dropped. A malformed reply means that server is broken for now:
   * it gets no vote for a server timeout and, if it is the one in use, the client looks for the
   * active again (it tries the other server). A malformed update may hide a change: resume.
   */
  private dropped(server: number, source: DropSource, error: unknown, broken = true): void {
    const reason = reasonOf(error);
    this.drops.count(reason);
    const info: DropInfo = {
      server: this.servers[server]!.snapshot,
      source,
      reason,
      message: error instanceof Error ? error.message : String(error),
    };
    if (isMalformed(error)) this.dropLog.warn({ ...info }, `dropped a malformed ${source} message`);
    else this.log.error({ ...info, err: error }, `failed to handle a ${source} message`);
    if (this.phase !== 'closed' && broken && isMalformed(error)) {
      if (source === 'reply') {
        this.quarantine.add(server, this.clock.now() + this.options.serverTimeoutMs);
        if (server === this.current) this.findActive(`malformed reply (${reason})`);
      } else if (server === this.current) {
        this.resyncCurrent();
      }
    }
    this.emit('dropped', info);
  }

  private onPublished(server: number, frames: Buffer[]): void {
    if (server !== this.current || this.phase === 'closed') return;
    this.lastHeard = this.clock.now();
    const msg = decodeKvMsg(frames, this.limits);
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
    // Not a message of the protocol (or an answer in the other mode): counted, the server kept.
    const what = `unexpected reply ${JSON.stringify(tag?.slice(0, 16))} (${frames.length} frames)`;
    this.dropped(server, 'reply', new ReplyError('unexpected-reply', what), false);
  }

  /** Returns false if the frames are not a native reply after all. */
  private onNativeReply(server: number, tag: string, reqId: number, frames: Buffer[]): boolean {
    switch (tag) {
      case Native.SYNC:
      case Native.SYNC_END: {
        const voteAnswer = this.phase === 'finding' && this.votes.serverOf(reqId) === server;
        const wanted = this.sync?.reqId === reqId && this.sync.server === server;
        if (!voteAnswer && !wanted) return true; // a losing vote's answer
        // Decode before acting on it: a malformed answer throws here and changes nothing.
        if (frames[2] === undefined) throw new KvMsgError('frame-count', `${tag} without its data frame`);
        const batch = tag === Native.SYNC ? unpackBatch(frames[2], this.limits) : undefined;
        const sequence = tag === Native.SYNC_END ? decodeSequence(frames[2]) : -1;
        if (voteAnswer) this.choose(server, reqId);
        const sync = this.sync!;
        sync.lastProgress = this.clock.now();
        this.lastHeard = sync.lastProgress;
        if (batch) {
          for (const entry of batch) sync.entries.push(entry);
        } else {
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
    const msg = decodeKvMsg(frames, this.limits);
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
    try {
      checkKey(key, this.subtree, this.limits);
    } catch (error) {
      return rejectWith(error);
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
      const writes = this.queue.splice(0, WRITE_BATCH).filter((w) => !w.done);
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
    // A malformed acknowledgement throws here: the batch stays in flight and goes to the active.
    const seqs = decodeAckSequences(frames[2], batch.writes.length);
    this.inflight.delete(reqId);
    const durability = (frames[3] ?? Buffer.alloc(0)).toString() as Durability;
    batch.writes.forEach((w, i) => this.settleWhenApplied(w, seqs[i]!));
    const degraded = durability === 'degraded';
    if (degraded !== this.degradedNow) {
      this.degradedNow = degraded;
      this.emit('degraded', degraded);
    }
  }

  /**
   * Read-your-writes: an acknowledged write resolves once the replica has applied its sequence,
   * at once when it has (the usual case), else when the update or a resync brings it there, on
   * this server or after a failover. The write's own deadline still bounds the wait.
   */
  private settleWhenApplied(w: Write, sequence: number): void {
    if (sequence <= this.replica.sequence) this.settle(w, sequence);
    else this.applying.add(sequence, w.deadline, w, this.clock.now());
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
    this.applying.expire(now, (w, sequence) =>
      this.fail(
        w,
        new TimeoutError(
          `write acknowledged as sequence ${sequence}, but this client's replica did not reach it within ${this.options.writeTimeoutMs} ms`,
        ),
      ),
    );
    // An acknowledged change that does not arrive (lost on the way): a resume brings the replica
    // up to the server's sequence.
    if (this.applying.stalled(now, this.options.requestTimeoutMs)) this.resyncCurrent();
  }

  private deliver(changes: ReplicaChange[], resync: boolean): void {
    for (const c of changes) {
      try {
        this.emit('update', { key: c.key, value: c.value, seq: c.sequence, deleted: c.deleted, resync });
      } catch (error) {
        // The application's bug: it must not stop the other listeners, the sync or the socket.
        this.log.error({ err: error, key: c.key }, "an 'update' listener threw");
      }
    }
    // Called each time the replica has moved (changes or not): writes it now reflects resolve,
    // after their updates were delivered (read-your-writes).
    this.applying.release(this.replica.sequence, this.clock.now(), (w, seq) => this.settle(w, seq));
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
