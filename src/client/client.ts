/**
 * The failover-aware twinstar client.
 *
 * It keeps a local replica of one subtree (the Clone pattern) and follows whichever server of the
 * pair is active. Finding the active (discovery.ts) probes every server with TPING, which is never
 * a vote, and syncs only with one that says ACTIVE. It votes (TVOTE) for a passive only once it has
 * itself found every other server silent for its effective timeout (max(serverTimeoutMs, 3 HUGZ
 * intervals)). In plain CHP, where ICANHAZ? is the vote, it asks servers in Binary Star order.
 * 'auto' sends nothing native before a server advertised `twinstar=1` on a HUGZ or KTHXBAI. The
 * phase and the status signals go through one funnel (session.ts). docs/protocol.md has the
 * procedure.
 *
 * Writes (writes.ts) get a uuid when issued and keep it: on the native path they are acknowledged
 * once the pair has made them durable, resolve once this client's replica has applied them when
 * their key is in its subtree (read-your-writes), and any write not yet acknowledged at a failover
 * is sent again to the new active, which applies it once (de-duplication by uuid). Every wait has
 * a bound. Nothing a server sends is thrown out of a socket handler: a malformed message is
 * dropped and counted (drops.ts), and a server whose reply was malformed is quarantined for
 * serverTimeoutMs (the finder leaves it alone, it is not chosen).
 */
import { EventEmitter } from 'node:events';
import {
  ADVERTISE,
  decodeKvMsg,
  decodeRequestId,
  decodeSequence,
  encodeIcanhaz,
  encodeRequestId,
  encodeSequence,
  formatProperties,
  HUGZ,
  KTHXBAI,
  KvMsgError,
  Native,
  unpackBatch,
  DEFAULT_LIMITS,
  socketFrameLimits,
  type Limits,
} from '../wire/index.js';
import { Replica, type Entry, type ReplicaChange } from '../kv/index.js';
import { DEFAULT_QUOTAS } from '../server/index.js';
import { ClosedError, InvalidArgumentError, NoActiveError, UnavailableError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { RateLimitedLog, silentLogger } from '../log/index.js';
import {
  checkPrefix,
  checkReadKey,
  checkTtl,
  checkValue,
  jsonText,
  parseJson,
  rejectWith,
} from './arguments.js';
import { describeSeen } from './discovery.js';
import {
  DropCounter,
  isMalformed,
  Quarantine,
  reasonOf,
  ReplyError,
  type DropInfo,
  type DropSource,
} from './drops.js';
import { Finder, PROBE_MS, properties } from './finder.js';
import { positiveOption, resolveCurve, systemClock, type Clock, type CurveOptions } from './options.js';
import { parseServer, type ServerAddress } from './servers.js';
import { eventStream, type ClientEvents, type ClientStats } from './events.js';
import { Session, type Phase, type PhaseContext, type Status } from './session.js';
import { zmqTransport, type Link, type Transport } from './transport.js';
import { WatchStream } from './watch.js';
import { busyBackoffMs, type Random } from './votes.js';
import { Writes } from './writes.js';
import { ReadyWaiters } from './ready.js';
import { SyncAssembly } from './sync.js';

export type Mode = 'auto' | 'native' | 'chp';
export { systemClock, type Clock, type CurveOptions, type ClientEvents, type ClientStats };

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
  /** how long close() waits for plain CHP writes to reach the collectors (default 2000) */
  lingerMs?: number;
  /** the server's size limits (default: the server defaults); bigger writes throw at once */
  limits?: Partial<Limits>;
  /**
   * CurveZMQ: encrypt every socket and prove this client's key to servers that run with
   * `--curve`. Give keys, or key files as `twinstar keygen` writes them (docs/security.md).
   */
  curve?: CurveOptions;
  log?: Logger;
  /**
   * The source of the jitter that spreads a fleet's votes and retries (votes.ts): numbers in
   * [0, 1), Math.random by default. Give a fixed one to make a test deterministic.
   */
  random?: () => number;
  /** for tests: the sockets and the clock */
  transport?: Transport;
  clock?: Clock;
}

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

export interface SetOptions {
  /** seconds until the key expires; the active server deletes it then (0 or absent: never) */
  ttl?: number;
}

export class Client extends EventEmitter<ClientEvents> {
  readonly subtree: string;
  private readonly servers: ServerAddress[];
  private readonly links: Link[];
  private readonly replica: Replica;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly options: Required<
    Pick<ClientOptions, 'serverTimeoutMs' | 'requestTimeoutMs' | 'writeTimeoutMs' | 'maxPendingWrites'>
  >;
  private readonly limits: Limits;
  private modeNow: Mode;
  private readonly session = new Session();
  private readonly finder: Finder;
  private readonly lingerMs: number;
  private closing: Promise<void> | undefined;
  private current = -1;
  private term = '';
  private lastHeard = 0;
  private lastTick: number;
  private following = false;
  private subscriptionConfirmed = false;
  private readonly syncs = new SyncAssembly();
  private nextReqId = 1;
  private pendingFailoverFrom: string | undefined;
  private readonly timer: unknown;
  private readonly readyWaiters = new ReadyWaiters();
  private readonly drops = new DropCounter();
  private readonly dropLog: RateLimitedLog;
  /** servers whose replies were malformed: not probed, asked or chosen until their time is up */
  private readonly quarantine = new Quarantine();
  private readonly writes: Writes;

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
    if (options.random !== undefined && typeof options.random !== 'function')
      throw new InvalidArgumentError('random must be a function returning numbers in [0, 1)');
    this.random = options.random ?? Math.random;
    this.log = options.log ?? silentLogger();
    this.lingerMs = positiveOption('lingerMs', options.lingerMs, 2000, 0);
    // CURVE is twinstar's own (docs/security.md): a plain RFC 12 server never speaks it
    if (options.curve !== undefined && this.modeNow === 'auto') this.modeNow = 'native';
    this.dropLog = new RateLimitedLog(this.log, 10, 10_000, () => this.clock.now());
    this.replica = new Replica(this.subtree);
    const transport = options.transport ?? zmqTransport;
    const sizes = socketFrameLimits(this.limits, DEFAULT_QUOTAS.maxSubtreeBytes);
    const frames = { dealer: sizes.clientDealer, sub: sizes.clientSub, pub: sizes.subscriptionsOnly };
    this.links = this.servers.map((server, i) =>
      transport(
        { ...server, frames },
        {
          reply: (frames) => this.guard(i, 'reply', frames),
          update: (frames) => this.guard(i, 'published', frames),
        },
      ),
    );
    this.finder = new Finder(
      {
        links: this.links,
        subtree: this.subtree,
        log: this.log,
        now: () => this.clock.now(),
        mode: () => this.modeNow,
        reqId: () => this.nextReqId++,
        unavailable: (error) => this.unavailable(error),
        usable: (server, now) => !this.quarantine.has(server, now),
        random: this.random,
      },
      this.servers.map((s) => s.snapshot),
      this.options.serverTimeoutMs,
    );
    this.writes = new Writes({
      links: this.links,
      subtree: this.subtree,
      limits: this.limits,
      writeTimeoutMs: this.options.writeTimeoutMs,
      requestTimeoutMs: this.options.requestTimeoutMs,
      maxPendingWrites: this.options.maxPendingWrites,
      now: () => this.clock.now(),
      mode: () => this.modeNow,
      closed: () => this.phase === 'closed',
      target: () =>
        this.phase === 'finding' || this.phase === 'closed' || this.current < 0
          ? undefined
          : this.links[this.current],
      reqId: () => this.nextReqId++,
      applied: () => this.replica.sequence,
      degraded: (degraded) => this.emit('degraded', degraded),
      stalled: () => this.resyncCurrent(),
    });
    this.lastTick = this.clock.now();
    this.timer = this.clock.setInterval(
      () => this.tick(),
      Math.min(PROBE_MS, this.options.serverTimeoutMs / 5),
    );
    this.findActive(undefined);
  }

  // ------------------------------------------------------------------------------------------
  // Public API.

  /** Resolves once the replica has been loaded from the active server. */
  ready(timeoutMs = 10_000): Promise<void> {
    if (this.phase === 'closed') return Promise.reject(new ClosedError());
    if (this.replica.sequence >= 0 && this.phase === 'ready') return Promise.resolve();
    return this.readyWaiters.wait(this.clock.now(), timeoutMs);
  }

  /**
   * Writes a value; resolves with its sequence number once acknowledged and, for a key inside this
   * client's subtree, applied to its replica (0 in plain CHP mode). A key outside the subtree may
   * be written: it resolves on the acknowledgement. Bad arguments (an empty key, an empty or
   * oversized value, a bad ttl) reject with InvalidArgumentError.
   */
  set(key: string, value: Buffer | string, options?: SetOptions): Promise<number> {
    try {
      const body = checkValue(value, this.limits);
      const ttl = checkTtl(options);
      return this.writes.write(key, body, ttl > 0 ? formatProperties({ ttl: String(ttl) }) : '');
    } catch (error) {
      return rejectWith(error);
    }
  }

  /** Deletes a key; resolves with the delete's sequence number as set() does (acknowledged, applied). */
  delete(key: string): Promise<number> {
    return this.writes.write(key, Buffer.alloc(0), '');
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
    return this.replica.get(checkReadKey(key, this.subtree))?.body;
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
    return this.writes.degraded;
  }

  /** What the client has dropped since it started. */
  stats(): ClientStats {
    return { dropped: this.drops.snapshot() };
  }

  /** Writes issued and not yet settled (acknowledged, failed or timed out). */
  get pendingWrites(): number {
    return this.writes.pending;
  }

  /** Status signals (disconnected, reconnecting, reconnected, unavailable) until close. */
  status(): AsyncIterableIterator<Status> {
    const stream = eventStream<Status>(this, 'status');
    if (this.phase === 'closed') stream.end();
    return stream;
  }

  /**
   * Stops the client: pending writes and ready() reject with ClosedError. Plain CHP writes already
   * published get up to `lingerMs` to reach the collectors before the sockets close.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.setPhase('closed', {});
    this.clock.clearInterval(this.timer);
    const error = new ClosedError();
    this.writes.failAll(error);
    this.readyWaiters.rejectAll(error);
    await Promise.all(this.links.map((link) => link.drain(this.lingerMs).catch(() => undefined)));
    for (const link of this.links) link.close();
    this.emit('close');
  }

  // ------------------------------------------------------------------------------------------
  // Finding the active (the vote) and syncing from it.

  private get phase(): Phase {
    return this.session.phase;
  }

  /** The one way the phase changes; status signals reach listeners on the next tick. */
  private setPhase(next: Phase, context: Omit<PhaseContext, 'now'>): void {
    const signals = this.session.setPhase(next, { now: this.clock.now(), ...context });
    if (signals === undefined) {
      this.log.error({ from: this.phase, to: next }, 'refused an impossible phase change');
      return;
    }
    for (const status of signals) this.signal(status);
  }

  private signal(status: Status): void {
    process.nextTick(() => {
      if (this.phase === 'closed') return;
      this.emit(status.type, status as never);
      this.emit('status', status);
    });
  }

  private findActive(reason: string | undefined): void {
    if (this.phase === 'closed') return;
    const from = this.server;
    if (reason !== undefined) this.log.warn({ from, reason }, 'looking for the active server');
    if (this.following && this.current >= 0) this.links[this.current]!.unfollow();
    this.following = false;
    this.replica.dropHeld();
    this.setPhase('finding', { server: from, reason: reason ?? 'starting' });
    this.syncs.stop();
    this.writes.requeueAll();
    this.pendingFailoverFrom = reason === undefined ? undefined : (from ?? '');
    this.finder.begin(this.current >= 0 ? this.current : undefined);
    this.current = -1;
    this.probe();
  }

  private probe(): void {
    this.finder.probe();
    const d = this.finder.discovery;
    const report = this.session.reconnecting(this.clock.now(), d.timeout(0), d.seen());
    if (report) this.signal(report);
  }

  /** The only node that answers lacks history and no active is reachable: say so, keep trying. */
  private unavailable(error: UnavailableError): void {
    this.readyWaiters.rejectAll(error);
    const status = this.session.unavailable(error.reason, this.finder.discovery.seen());
    if (status) this.signal(status);
  }

  /** A native sync (resume if the replica has a place on a timeline, else snapshot); never a vote. */
  private sendSync(server: number, fresh: boolean): void {
    const reqId = this.nextReqId++;
    const rid = encodeRequestId(reqId);
    const sub = Buffer.from(this.subtree);
    const link = this.links[server]!;
    if (this.replica.sequence >= 0 && this.term !== '') {
      link.request([
        Buffer.from(Native.RESUME),
        rid,
        sub,
        encodeSequence(this.replica.sequence),
        Buffer.from(this.term),
      ]);
    } else {
      link.request([Buffer.from(Native.SNAPSHOT), rid, sub]);
    }
    this.syncs.startNative(reqId, server, fresh, this.clock.now());
  }

  /** A server said ACTIVE: follow its publisher and sync from it. */
  private choose(server: number): void {
    this.current = server;
    this.setPhase('syncing', { server: this.servers[server]!.snapshot });
    this.replica.beginSync();
    this.startFollowing();
    this.sendSync(server, true);
  }

  private startFollowing(): void {
    this.finder.chose(this.current);
    this.following = true;
    this.subscriptionConfirmed = false;
    this.links[this.current]!.follow([this.subtree, HUGZ]);
  }

  /** `wasVote`: the first sync with a newly found active (a plain CHP snapshot always counts). */
  private finishSync(sequence: number, term: string, kind: string, entries: Entry[], wasVote = true): void {
    const server = this.servers[this.current]!.snapshot;
    const hadReplica = this.replica.sequence >= 0;
    this.term = term;
    const resync = kind !== 'resume';
    // The vote was answered before we subscribed to this server, so updates held meanwhile may
    // start after a hole. Drop them: the resume that confirms the subscription brings them again.
    if (wasVote) this.replica.dropHeld();
    const changes = resync
      ? this.replica.loadSnapshot(entries, sequence)
      : this.replica.loadResume(entries, sequence);
    this.finder.done();
    this.setPhase('ready', { server, sequence: this.replica.sequence });
    this.lastHeard = this.clock.now();
    this.deliver(changes, resync && hadReplica);
    if (resync && hadReplica) this.emit('resync', { sequence, server });
    // A search that ends on the same server (it was fenced for a moment, or re-learning its
    // peer) is a reconnection, reported by the status signals, not a failover.
    if (wasVote && this.pendingFailoverFrom !== undefined && this.pendingFailoverFrom !== server) {
      this.emit('failover', {
        from: this.pendingFailoverFrom || undefined,
        to: server,
        sequence: this.replica.sequence,
      });
    }
    if (wasVote) this.pendingFailoverFrom = undefined;
    if (wasVote) this.emit('ready', { server, sequence: this.replica.sequence });
    this.readyWaiters.resolveAll();
    // Updates may have been published between the server's answer and our subscription taking
    // effect; once the subscription is confirmed (first message on it), one more resume closes
    // that window. Also resume again if updates overflowed while we synced.
    if (
      this.replica.consumeOverflow() ||
      (wasVote && this.subscriptionConfirmed && this.modeNow === 'native')
    )
      this.resyncCurrent();
    this.writes.scheduleFlush();
  }

  /** A plain CHP snapshot from the server in use got lost on the way: start it over. */
  private reaskChpSnapshot(server: number, now: number): void {
    this.log.warn({ server: this.servers[server]!.snapshot }, 'snapshot stalled: asking again');
    this.syncs.startChp(server, now);
    this.links[server]!.request(encodeIcanhaz(this.subtree));
  }

  /** A sync (resume) with the server already in use: after a gap, or to confirm a subscription. */
  private resyncCurrent(): void {
    if (this.phase !== 'ready') return;
    this.replica.beginSync();
    this.setPhase('syncing', {});
    if (this.modeNow === 'native') return this.sendSync(this.current, false);
    // Plain CHP has no resume: take a fresh snapshot from the same server.
    this.syncs.startChp(this.current, this.clock.now());
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
   * it is quarantined for a server timeout (the finder sends it nothing, it is not chosen) and, if
   * it is the one in use, the client looks for the active again. A malformed update may hide a
   * change: resume.
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
    if (this.phase === 'closed') return;
    if (server !== this.current) return this.onAdvertisement(server, frames);
    const now = this.clock.now();
    this.lastHeard = now;
    this.finder.discovery.heard(server, now);
    const msg = decodeKvMsg(frames, this.limits);
    if (msg.key === HUGZ) {
      const props = properties(msg.properties);
      this.finder.discovery.hugz(server, now, props);
      // A node that is not active says so on its HUGZ (a demoted active keeps sending them).
      const state = props.get(ADVERTISE.STATE);
      if (state !== undefined) return this.findActive(`server says ${state}`);
    }
    if (!this.subscriptionConfirmed) {
      this.subscriptionConfirmed = true;
      // The subscription is in force from now on, but updates published between the sync's answer
      // and this moment were missed (a subtree client cannot see the hole). Resume first, so that
      // this message and the ones after it are held, not applied past the hole.
      if (this.phase === 'ready' && this.modeNow === 'native') this.resyncCurrent();
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
    this.finder.discovery.heard(server, this.clock.now());
    const tag = frames[0]?.toString('latin1');
    const reqId = decodeRequestId(frames[1]);
    if (
      reqId !== undefined &&
      tag !== undefined &&
      tag.startsWith('T') &&
      this.onNativeReply(server, tag, reqId, frames)
    ) {
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
        if (!this.syncs.answers(server, reqId)) return true; // a stale answer
        // Decode before acting on it: a malformed answer throws here and changes nothing.
        if (frames[2] === undefined) throw new KvMsgError('frame-count', `${tag} without its data frame`);
        const batch = tag === Native.SYNC ? unpackBatch(frames[2], this.limits) : undefined;
        const sequence = tag === Native.SYNC_END ? decodeSequence(frames[2]) : -1;
        this.lastHeard = this.clock.now();
        if (batch) {
          this.syncs.batch(batch, this.lastHeard);
        } else {
          const { entries, fresh } = this.syncs.end();
          const term = (frames[3] ?? Buffer.alloc(0)).toString();
          this.finishSync(sequence, term, (frames[4] ?? Buffer.alloc(0)).toString(), entries, fresh);
        }
        return true;
      }
      case Native.NOT_ACTIVE: {
        if (this.finder.onRefused(server, reqId, frames)) return true;
        const state = (frames[2] ?? Buffer.alloc(0)).toString();
        if (server !== this.current) return true;
        if (this.writes.waiting(reqId) || this.syncs.isNative(reqId)) this.findActive(`server says ${state}`);
        return true;
      }
      case Native.ACK:
        this.writes.onAck(reqId, frames);
        return true;
      case Native.ERROR: {
        if (this.writes.onError(reqId, frames)) return true;
        const reason = (frames[2] ?? Buffer.alloc(0)).toString();
        if (reason === 'busy' && this.syncs.answers(server, reqId)) {
          // The server is at its cap of snapshot streams: a transient refusal, asked again later.
          this.syncs.busy(this.clock.now() + busyBackoffMs(this.options.requestTimeoutMs, this.random));
          return true;
        }
        const message = (frames[3] ?? Buffer.alloc(0)).toString();
        this.log.warn(
          { server: this.servers[server]!.snapshot, reason, message },
          'server refused a request',
        );
        return true;
      }
      case Native.PONG: {
        const pong = this.finder.onPong(server, reqId, frames);
        // a late pong from a quarantined server does not make it the one in use
        if (
          pong?.state === 'ACTIVE' &&
          this.phase === 'finding' &&
          this.modeNow === 'native' &&
          !this.quarantine.has(server, this.clock.now())
        )
          this.choose(server);
        return true;
      }
      default:
        return false;
    }
  }

  private onChpSnapshot(server: number, frames: Buffer[]): void {
    const msg = decodeKvMsg(frames, this.limits);
    if (this.phase === 'finding') {
      if (this.quarantine.has(server, this.clock.now())) return; // a late answer from a broken server
      this.current = server;
      this.setPhase('syncing', { server: this.servers[server]!.snapshot });
      this.replica.beginSync();
      this.syncs.startChp(server, this.clock.now());
      this.startFollowing();
    }
    if (!this.syncs.receivingChp(server)) return;
    this.lastHeard = this.clock.now();
    if (msg.key === KTHXBAI) {
      const entries = this.syncs.chpEnd();
      this.finder.discovery.advertised(server, properties(msg.properties));
      if (this.modeNow === 'auto' && this.finder.discovery.native(server) === true) {
        // a twinstar server answered the RFC 12 way: from now on, its native protocol
        this.setMode('native');
        return this.sendSync(server, true);
      }
      if (this.modeNow === 'auto') this.setMode('chp');
      this.finishSync(msg.sequence, '', 'snapshot', entries);
    } else {
      this.syncs.chpEntry({ ...msg, expiresAt: 0 }, this.lastHeard);
    }
  }

  /** A HUGZ from a server not in use ('auto' listens to every publisher): learn what it says. */
  private onAdvertisement(server: number, frames: Buffer[]): void {
    const msg = decodeKvMsg(frames, this.limits);
    if (msg.key !== HUGZ) return;
    const native = this.finder.onHugzElsewhere(server, msg.properties);
    if (native === undefined || this.modeNow !== 'auto' || this.phase !== 'finding') return;
    // twinstar=1: the native protocol (TPING probes from now on); a HUGZ without it: plain CHP
    this.setMode(native ? 'native' : 'chp');
    this.finder.listen(false, -1);
    this.probe();
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
  // The one timer: silence, stalls, timeouts, vote rounds.

  private tick(): void {
    if (this.phase === 'closed') return;
    const now = this.clock.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (gap > this.options.serverTimeoutMs / 2) {
      // We were frozen (GC, SIGSTOP, a busy loop): silence we slept through proves nothing.
      this.lastHeard = Math.max(this.lastHeard, now);
      this.finder.discovery.thaw(now);
      this.syncs.thaw(now);
      this.writes.thaw(now);
    }
    this.writes.expire(now);
    this.readyWaiters.expire(now, (timeoutMs) => {
      const seen = this.finder.discovery.seen();
      return new NoActiveError(`no active server within ${timeoutMs} ms: ${describeSeen(seen)}`, seen);
    });
    switch (this.phase) {
      case 'finding':
        return this.probe();
      case 'syncing':
        if (now - this.lastHeard > this.finder.timeout(this.current)) return this.findActive('server silent');
        return this.syncDue(now);
      case 'ready':
        if (now - this.lastHeard > this.finder.timeout(this.current)) return this.findActive('server silent');
        return this.writes.retryUnanswered(now);
    }
  }

  /**
   * A sync in progress with a server that is heard: a native one asked again after 'busy', or
   * given up when it stalls; a plain CHP snapshot whose request or answer was lost (HUGZ keep the
   * server heard) is asked again of the same server: asking the other would be a vote.
   */
  private syncDue(now: number): void {
    const due = this.syncs.due(now, this.options.requestTimeoutMs);
    if (due?.action === 'retry') this.sendSync(due.server, due.fresh);
    else if (due?.action === 'stalled') this.findActive('sync stalled');
    else if (due?.action === 'reask') this.reaskChpSnapshot(due.server, now);
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
    this.writes.applied(this.replica.sequence);
  }
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
