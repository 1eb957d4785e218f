/**
 * An in-memory stand-in for a twinstar pair, for unit tests of the client's state machine.
 *
 * - `FakeClock` implements the client's `Clock`: time moves only when a test advances it, and
 *   every due interval callback runs once per period, in time order.
 * - `FakeServer` holds a map, a sequence, a replay log and a term history, and answers the native
 *   requests, decoded and encoded with the real codec (src/wire/native.ts), the way the real
 *   server does (src/server/router.ts, handlers/): TSNAP/TRESUME -> TSYNC* + TSYNCEND, TSET -> TACK
 *   or TNOTACTIVE 'not-active', de-duplication by uuid, ICANHAZ? -> KVSYNC* + KTHXBAI, TPING ->
 *   TPONG with heartbeat and history, TVOTE -> TPONG ACTIVE or TNOTACTIVE 'peer-alive' /
 *   'no-history'. Its state decides what it does: ACTIVE serves, PASSIVE says TNOTACTIVE (and
 *   ignores ICANHAZ?) unless it accepts votes, SILENT (a frozen process) takes requests and
 *   answers nothing, DEAD takes nothing and fails every send. A twinstar server advertises
 *   `twinstar=1` and `hugz-ms` on KTHXBAI and HUGZ; a plain (RFC 12 / guide) one does not.
 * - `FakeNetwork` makes the `Transport` the client is given. Every message crosses it
 *   asynchronously (one `setImmediate` per message, so order on the wire is kept), and a test can
 *   drop, hold and reorder published updates on cue. `settle()` waits until the wire is quiet;
 *   `advance(ms)` moves fake time in small steps, sends HUGZ from active servers and settles.
 */
import { PackedBatch } from '../../../src/wire/packed.js';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../../src/client/client.js';
import type { ServerAddress } from '../../../src/client/servers.js';
import type { Link, LinkHandlers, Transport } from '../../../src/client/link.js';
import {
  decodeKvEntry,
  decodeKvMsg,
  encodeUpdates,
  decodeRequest,
  ADVERTISE,
  encodeKvMsg,
  encodeReply,
  formatProperties,
  HUGZ,
  KTHXBAI,
  NATIVE_VERSION,
  ICANHAZ,
  Native,
  type Durability,
  type KvMsg,
  type NativeReply,
  type NotActiveReason,
  type SnapshotSocketRequest,
} from '../../../src/wire/index.js';
import { type Entry } from '../../../src/kv/index.js';
import { FakeEventBus } from './fake-events.js';
import { FakeKv } from './fake-kv.js';

// ---------------------------------------------------------------------------------------------
// Clock.

interface FakeTimer {
  readonly id: number;
  readonly fn: () => void;
  readonly ms: number;
  due: number;
}

export class FakeClock implements Clock {
  private t: number;
  private nextId = 1;
  private readonly timers = new Map<number, FakeTimer>();

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    const period = Math.max(1, ms);
    this.timers.set(id, { id, fn, ms: period, due: this.t + period });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Interval timers still registered. */
  get timerCount(): number {
    return this.timers.size;
  }

  /** The periods of the registered timers. */
  get periods(): number[] {
    return [...this.timers.values()].map((t) => t.ms);
  }

  /** Moves time forward, running every due callback once per period in time order. */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const timer of this.timers.values())
        if (timer.due <= target && (next === undefined || timer.due < next.due)) next = timer;
      if (next === undefined) break;
      this.t = next.due;
      next.due += next.ms;
      next.fn();
    }
    this.t = target;
  }
}

// ---------------------------------------------------------------------------------------------
// Servers.

export type FakeState = 'ACTIVE' | 'PASSIVE' | 'DEAD' | 'SILENT';

/** A request as a server received it, decoded for assertions. */
export interface ReceivedRequest {
  readonly command: string;
  readonly reqId: number | undefined;
  readonly subtree: string | undefined;
  /** TRESUME: the sequence and term the client resumes from */
  readonly fromSequence: number | undefined;
  readonly term: string | undefined;
  /** TSET: the writes, in request order */
  readonly writes: Entry[];
  /** the server's state when the request arrived */
  readonly state: FakeState;
  readonly at: number;
  readonly frames: Buffer[];
}

/** A reply as a server sent it. */
export interface SentReply {
  readonly command: string;
  readonly reqId: number | undefined;
  readonly frames: Buffer[];
}

interface TermEntry {
  readonly term: string;
  readonly startSequence: number;
}

export interface FakeServerOptions {
  state?: FakeState;
  /** entries per TSYNC chunk */
  chunk?: number;
  /** durability reported in TACK */
  durability?: Durability;
  /** a plain RFC 12 server: native (T*) requests are dropped unanswered, nothing advertised */
  plainChp?: boolean;
  /** HUGZ period of this server (default: the network's) */
  heartbeatMs?: number;
  /** advertise twinstar=1 and hugz-ms on KTHXBAI/HUGZ and in TPONG (default: !plainChp) */
  advertise?: boolean;
  /** TPONG/TVOTE: whether this node holds a complete history (default 'complete') */
  history?: 'complete' | 'incomplete';
  /** a non-active node accepts a vote (TVOTE, or ICANHAZ? when plain): its peer is silent */
  acceptVotes?: boolean;
  /** sends HUGZ while PASSIVE too (the ZeroMQ guide's servers do) */
  passiveHugz?: boolean;
}

let termCounter = 0;

export class FakeServer {
  readonly address: ServerAddress;
  state: FakeState;
  chunk: number;
  durability: Durability;
  plainChp: boolean;
  heartbeatMs: number | undefined;
  advertise: boolean;
  history: 'complete' | 'incomplete';
  acceptVotes: boolean;
  passiveHugz: boolean;
  /** while true, TSET is applied (and published) but its TACK waits for `releaseAcks()` */
  holdAcks = false;
  /** called after each request is handled (its replies are on the wire): a hook for races */
  onRequest: ((request: ReceivedRequest) => void) | undefined;
  /**
   * Called before each message of an ICANHAZ? answer (`sent` of them gone so far), once its
   * sequence and entries are taken: what a test publishes here is newer than the snapshot and may
   * reach the client before or amid it, as from the real server, which streams a snapshot.
   */
  duringChpSnapshot: ((sent: number) => void) | undefined;
  /** answer this many more TSNAP/TRESUME with TERROR 'busy' (the server's cap of streams) */
  busySyncs = 0;

  readonly map = new Map<string, Entry>();
  sequence = 0;
  /** every change ever applied, in order; resumes read from here */
  log: Entry[] = [];
  /** the replay log reaches back to (resumes from) this sequence, no further */
  replayFrom = 0;
  terms: TermEntry[] = [];
  /** uuid -> sequence of every applied write (the server's de-duplication window) */
  applied = new Map<string, number>();

  readonly requests: ReceivedRequest[] = [];
  /** requests dropped as malformed (e.g. a TSET whose batch breaks the wire limits) */
  readonly malformed: { command: string; error: Error }[] = [];
  readonly replies: SentReply[] = [];
  /** KVSET messages that reached the collector */
  readonly collected: KvMsg[] = [];
  /** KVSETs collected while not active (Model Six pending list) */
  readonly pending: KvMsg[] = [];
  /** every message put on the publisher (after drop/hold filtering: what went out) */
  readonly published: Buffer[][] = [];
  readonly followers = new Set<FakeLink>();
  /** the event bus (TEPUB, TESUB, TEUNSUB, TEACK): fake-events.ts */
  readonly events = new FakeEventBus(this);
  /** KV parity: conditions, leases, watch from a sequence (fake-kv.ts) */
  readonly kv = new FakeKv(this);

  private dropNext = 0;
  private readonly lose = new Map<string, number>();
  private holding = false;
  private held: Buffer[][] = [];
  private heldAcks: { link: FakeLink; ack: NativeReply & { command: 'TACK' } }[] = [];
  lastHugz = -Infinity;
  /** when each HUGZ went out */
  readonly hugzAt: number[] = [];

  constructor(
    readonly net: FakeNetwork,
    readonly endpoint: string,
    options: FakeServerOptions = {},
  ) {
    const port = Number(/:(\d+)$/.exec(endpoint)![1]);
    const host = endpoint.slice(0, endpoint.lastIndexOf(':'));
    this.address = { snapshot: endpoint, publisher: `${host}:${port + 1}`, collector: `${host}:${port + 2}` };
    this.state = options.state ?? 'PASSIVE';
    this.chunk = options.chunk ?? 2;
    this.durability = options.durability ?? 'replicated';
    this.plainChp = options.plainChp ?? false;
    this.heartbeatMs = options.heartbeatMs;
    this.advertise = options.advertise ?? !this.plainChp;
    this.history = options.history ?? 'complete';
    this.acceptVotes = options.acceptVotes ?? false;
    this.passiveHugz = options.passiveHugz ?? false;
    if (this.state === 'ACTIVE') this.openTerm();
  }

  get term(): string {
    return this.terms[this.terms.length - 1]?.term ?? '';
  }

  get isActive(): boolean {
    return this.state === 'ACTIVE';
  }

  // ----------------------------------------------------------------------------------------
  // What a test does to a server.

  /** Changes state; a server leaving ACTIVE answers its held write acknowledgements as a real one would. */
  setState(state: FakeState): void {
    const was = this.state;
    this.state = state;
    if (was === 'ACTIVE' && state === 'PASSIVE') {
      // durable() rejects when the node stops being active: the writes are told TNOTACTIVE
      for (const { link, ack } of this.heldAcks.splice(0)) this.notActive(link, ack.reqId, 'not-active');
    }
    if (state === 'DEAD') this.heldAcks = [];
  }

  /** Becomes ACTIVE under a new term (a Binary Star promotion). */
  promote(): string {
    this.state = 'ACTIVE';
    return this.openTerm();
  }

  /** Takes another server's whole state (the passive has mirrored the active). */
  copyFrom(other: FakeServer): void {
    this.map.clear();
    for (const [k, v] of other.map) this.map.set(k, v);
    this.sequence = other.sequence;
    this.log = [...other.log];
    this.replayFrom = other.replayFrom;
    this.terms = [...other.terms];
    this.applied = new Map(other.applied);
    this.events.copyFrom(other.events);
    this.kv.copyFrom(other.kv);
  }

  /** The replay log no longer reaches back before the current sequence: older resumes get a snapshot. */
  forgetHistory(): void {
    this.replayFrom = this.sequence;
  }

  set(key: string, value: string | Buffer, uuid = randomUuid()): Entry {
    const body = typeof value === 'string' ? Buffer.from(value) : value;
    const result = this.commit({ key, uuid, properties: '', body });
    if (result.duplicate) throw new Error(`uuid of ${key} already applied`);
    return result.entry;
  }

  delete(key: string): Entry {
    const result = this.commit({ key, uuid: randomUuid(), properties: '', body: Buffer.alloc(0) });
    if (result.duplicate) throw new Error('duplicate');
    return result.entry;
  }

  /** Sequences a change (de-duplicated by uuid) and, while active, publishes it. */
  commit(change: {
    key: string;
    uuid: string;
    properties: string;
    body: Buffer;
  }): { duplicate: true; sequence: number } | { duplicate: false; entry: Entry } {
    const dedupe = change.uuid.length === 16;
    if (dedupe) {
      const earlier = this.applied.get(change.uuid);
      if (earlier !== undefined) return { duplicate: true, sequence: earlier };
    }
    const entry: Entry = { ...change, sequence: this.sequence + 1, expiresAt: 0 };
    this.sequence = entry.sequence;
    if (entry.body.length === 0) this.map.delete(entry.key);
    else this.map.set(entry.key, entry);
    this.kv.applied(entry);
    this.log.push(entry);
    if (dedupe) this.applied.set(change.uuid, entry.sequence);
    if (this.isActive) this.publishUpdate(encodeKvMsg(entry));
    return { duplicate: false, entry };
  }

  /** This server's HUGZ period. */
  get hugzMs(): number {
    return this.heartbeatMs ?? this.net.heartbeatMs;
  }

  /** What a twinstar server adds to KTHXBAI and HUGZ (nothing on a plain one). */
  get advertisement(): string {
    if (!this.advertise) return '';
    return formatProperties({ [ADVERTISE.NATIVE]: NATIVE_VERSION, [ADVERTISE.HUGZ_MS]: String(this.hugzMs) });
  }

  /** Whether this server sends HUGZ in its current state. */
  get sendsHugz(): boolean {
    return this.isActive || (this.passiveHugz && this.state === 'PASSIVE');
  }

  /** Publishes a heartbeat with the current sequence (the network does this every hugzMs). */
  hugz(): void {
    this.lastHugz = this.net.clock.now();
    if (this.sendsHugz) this.hugzAt.push(this.lastHugz);
    const frames = encodeKvMsg({
      key: HUGZ,
      sequence: this.sequence,
      uuid: '',
      properties: this.advertisement,
      body: Buffer.alloc(0),
    });
    this.publishRaw(frames, this.sendsHugz);
  }

  /** The next `n` requests of `command` are lost on the wire (received, never answered). */
  loseRequests(command: string, n = 1): void {
    this.lose.set(command, (this.lose.get(command) ?? 0) + n);
  }

  /** The next `n` KVPUB messages are lost on the way to every follower. */
  dropPublished(n = 1): void {
    this.dropNext += n;
  }

  /** KVPUB messages are held back until `releasePublished`. */
  holdPublished(): void {
    this.holding = true;
  }

  get heldCount(): number {
    return this.held.length;
  }

  /**
   * Sends the held KVPUB messages, in `order` (indices into the held list; default: as they
   * came). Held messages not named in `order` are lost.
   */
  releasePublished(order?: number[]): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const i of order ?? held.map((_, i) => i)) this.publishRaw(held[i]!);
  }

  /**
   * Sends the held KVPUB messages as the update stream does (wire/updates.ts): to each follower,
   * one batch per prefix it follows, holding the held updates under it, in `order` (default: as
   * they came; held messages not named are lost). `damage` may change each batch's frames.
   */
  releasePublishedAsBatches(order?: number[], damage: (frames: Buffer[]) => Buffer[] = (f) => f): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    const entries = (order ?? held.map((_, i) => i)).map((i) => decodeKvEntry(held[i]!));
    for (const link of this.followers)
      for (const prefix of link.prefixes ?? []) {
        const frames = damage(
          encodeUpdates(
            prefix,
            entries.filter((e) => e.key.startsWith(prefix)),
          ),
        );
        this.net.deliver(() => link.handlers.update(frames), link);
      }
  }

  /** Sends the write acknowledgements held by `holdAcks`. */
  releaseAcks(): void {
    this.holdAcks = false;
    for (const { link, ack } of this.heldAcks.splice(0)) this.reply(link, ack);
  }

  get heldAckCount(): number {
    return this.heldAcks.length;
  }

  /** Requests of one command (TSNAP, TRESUME, TSET, ICANHAZ?...). */
  requestsOf(command: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.command === command);
  }

  /** Votes (TVOTE) received. */
  get votes(): ReceivedRequest[] {
    return this.requestsOf(Native.VOTE);
  }

  /** Sync requests (snapshots and resumes, native or ICANHAZ?). */
  get syncRequests(): ReceivedRequest[] {
    return this.requests.filter(
      (r) => r.command === Native.SNAPSHOT || r.command === Native.RESUME || r.command === ICANHAZ,
    );
  }

  /** Every write uuid received in TSET requests, in order. */
  get writeUuids(): string[] {
    return this.requestsOf(Native.SET).flatMap((r) => r.writes.map((w) => w.uuid));
  }

  /** How many changes in the log carry this key. */
  changesOf(key: string): number {
    return this.log.filter((e) => e.key === key).length;
  }

  // ----------------------------------------------------------------------------------------
  // The wire.

  private openTerm(): string {
    const term = `term-${++termCounter}`;
    this.terms.push({ term, startSequence: this.sequence + 1 });
    return term;
  }

  private onTimeline(sequence: number, term: string): boolean {
    const i = this.terms.findIndex((e) => e.term === term);
    if (i === -1) return false;
    const next = this.terms[i + 1];
    return next === undefined || sequence < next.startSequence;
  }

  private changesSince(sequence: number, subtree: string): Entry[] | undefined {
    if (sequence === this.sequence) return [];
    if (sequence < this.replayFrom || sequence > this.sequence) return undefined;
    return this.log.filter((e) => e.sequence > sequence && e.key.startsWith(subtree));
  }

  private publishUpdate(frames: Buffer[]): void {
    if (this.dropNext > 0) {
      this.dropNext--;
      return;
    }
    if (this.holding) {
      this.held.push(frames);
      return;
    }
    this.publishRaw(frames);
  }

  private publishRaw(frames: Buffer[], allowed = this.state === 'ACTIVE'): void {
    if (!allowed) return;
    this.published.push(frames);
    for (const link of this.followers)
      if (link.subscribed(frames[0]!)) this.net.deliver(() => link.handlers.update(frames), link);
  }

  /** A native reply, encoded by the codec the real server uses; or the frames of a CHP snapshot. */
  reply(link: FakeLink, reply: NativeReply | Buffer[]): void {
    const frames = Array.isArray(reply) ? reply : encodeReply(reply);
    const reqId = Array.isArray(reply) || !('reqId' in reply) ? undefined : reply.reqId;
    this.replies.push({ command: frames[0]!.toString('latin1'), reqId, frames });
    this.net.deliver(() => link.handlers.reply(frames), link);
  }

  /** A message arrived on the snapshot socket (the link checked the server is not DEAD when sending). */
  receive(link: FakeLink, frames: Buffer[]): void {
    if (this.state === 'DEAD') return; // died while the message was on the wire
    const command = frames[0]?.toString('latin1') ?? '';
    let decoded: SnapshotSocketRequest;
    try {
      // the real server's codec, with its default limits
      decoded = decodeRequest(frames);
    } catch (error) {
      // the real server drops a malformed request (counted and logged) and answers nothing
      this.malformed.push({ command, error: error as Error });
      return;
    }
    const request: ReceivedRequest = {
      command,
      reqId: 'reqId' in decoded ? decoded.reqId : undefined,
      subtree: 'subtree' in decoded ? decoded.subtree : undefined,
      fromSequence: decoded.command === 'TRESUME' ? decoded.fromSequence : undefined,
      term: decoded.command === 'TRESUME' ? decoded.term : undefined,
      writes: decoded.command === 'TSET' ? [...decoded.writes] : [],
      state: this.state,
      at: this.net.clock.now(),
      frames,
    };
    this.requests.push(request);
    if (this.state === 'SILENT') return;
    const lose = this.lose.get(command) ?? 0;
    if (lose > 0) return void this.lose.set(command, lose - 1);
    this.handle(link, request);
    this.onRequest?.(request);
  }

  private handle(link: FakeLink, request: ReceivedRequest): void {
    const { command } = request;
    const reqId = request.reqId ?? 0;
    switch (command) {
      case ICANHAZ:
        return this.onIcanhaz(link, request);
      case Native.SNAPSHOT:
      case Native.RESUME:
        if (this.plainChp) return;
        if (this.busySyncs > 0) {
          this.busySyncs--;
          return this.reply(link, { command: 'TERROR', reqId, reason: 'busy', message: 'at cap' });
        }
        return this.onSync(link, request);
      case Native.SET:
        if (this.plainChp) return;
        return this.onSet(link, request);
      case Native.PING:
        if (this.plainChp) return;
        return this.pong(link, reqId);
      case Native.VOTE:
        if (this.plainChp) return;
        return this.onVote(link, reqId);
      case Native.EVENT_PUBLISH:
      case Native.EVENT_SUBSCRIBE:
      case Native.EVENT_UNSUBSCRIBE:
      case Native.EVENT_ACK:
        if (this.plainChp) return;
        this.events.handle(link, request.frames);
        return;
      case Native.LEASE:
      case Native.WATCH:
        if (this.plainChp) return;
        return this.kv.handle(link, request.frames);
      default:
        return; // the real server drops unknown commands
    }
  }

  private pong(link: FakeLink, reqId: number): void {
    const pong = {
      command: 'TPONG',
      reqId,
      state: this.state,
      sequence: this.sequence,
      term: this.term,
    } as const;
    // a plain (older) server's TPONG has neither heartbeatMs nor history
    this.reply(link, this.advertise ? { ...pong, heartbeatMs: this.hugzMs, history: this.history } : pong);
  }

  private notActive(link: FakeLink, reqId: number, reason: NotActiveReason): void {
    this.reply(link, { command: 'TNOTACTIVE', reqId, state: this.state, reason });
  }

  /** Whether a vote (TVOTE, or ICANHAZ? on a plain server) makes this node active. */
  private voteWins(): boolean {
    if (this.isActive) return true;
    if (this.history !== 'complete' || !this.acceptVotes) return false;
    this.promote();
    return true;
  }

  private onVote(link: FakeLink, reqId: number): void {
    if (this.history !== 'complete' && !this.isActive) return this.notActive(link, reqId, 'no-history');
    if (!this.voteWins()) return this.notActive(link, reqId, 'peer-alive');
    this.pong(link, reqId);
  }

  /** Plain RFC 12 snapshot (a vote); an inactive server turns the client away with silence. */
  private onIcanhaz(link: FakeLink, request: ReceivedRequest): void {
    if (!this.voteWins()) return;
    const subtree = request.subtree ?? '';
    const sequence = this.sequence;
    let sent = 0;
    for (const entry of this.snapshot(subtree)) {
      this.duringChpSnapshot?.(sent++);
      this.reply(link, encodeKvMsg(entry));
    }
    this.duringChpSnapshot?.(sent);
    this.reply(
      link,
      encodeKvMsg({
        key: KTHXBAI,
        sequence,
        uuid: '',
        properties: this.advertisement,
        body: Buffer.from(subtree),
      }),
    );
  }

  private onSync(link: FakeLink, request: ReceivedRequest): void {
    const reqId = request.reqId ?? 0;
    if (!this.isActive) return this.notActive(link, reqId, 'not-active');
    const subtree = request.subtree ?? '';
    const sequence = this.sequence;
    let entries: Entry[] | undefined;
    let kind: 'resume' | 'snapshot' = 'snapshot';
    if (
      request.command === Native.RESUME &&
      request.fromSequence !== undefined &&
      this.onTimeline(request.fromSequence, request.term ?? '')
    ) {
      entries = this.changesSince(request.fromSequence, subtree);
      if (entries !== undefined) kind = 'resume';
    }
    entries ??= this.snapshot(subtree);
    for (let i = 0; i < entries.length; i += this.chunk)
      this.reply(link, { command: 'TSYNC', reqId, batch: PackedBatch.of(entries.slice(i, i + this.chunk)) });
    this.reply(link, { command: 'TSYNCEND', reqId, sequence, term: this.term, kind });
  }

  private onSet(link: FakeLink, request: ReceivedRequest): void {
    const reqId = request.reqId ?? 0;
    if (!this.isActive) return this.notActive(link, reqId, 'not-active');
    const refused = this.kv.refusal(reqId, request.writes);
    if (refused) return this.reply(link, refused);
    const sequences = request.writes.map((w) => {
      const result = this.commit(this.kv.stored(w));
      return result.duplicate ? result.sequence : result.entry.sequence;
    });
    const ack = { command: 'TACK', reqId, sequences, durability: this.durability } as const;
    if (this.holdAcks) this.heldAcks.push({ link, ack });
    else this.reply(link, ack);
  }

  /** A KVSET on the collector (plain CHP write). */
  collect(frames: Buffer[]): void {
    if (this.state === 'DEAD' || this.state === 'SILENT') return;
    let msg: KvMsg;
    try {
      msg = decodeKvMsg(frames);
    } catch (error) {
      this.malformed.push({ command: 'KVSET', error: error as Error });
      return;
    }
    this.collected.push(msg);
    if (!this.isActive) {
      this.pending.push(msg);
      return;
    }
    this.commit({ key: msg.key, uuid: msg.uuid, properties: msg.properties, body: msg.body });
  }

  private snapshot(subtree: string): Entry[] {
    return [...this.map.values()]
      .filter((e) => e.key.startsWith(subtree))
      .sort((a, b) => a.sequence - b.sequence);
  }
}

// ---------------------------------------------------------------------------------------------
// Links and the network.

export class FakeLink implements Link {
  closed = false;
  prefixes: string[] | undefined;
  /** how many times follow() was called */
  follows = 0;
  /** KVSETs waiting for the collector connection (see FakeNetwork.collectorsUp) */
  private unsent: Buffer[][] = [];
  private publishing = 0;

  constructor(
    readonly net: FakeNetwork,
    readonly address: ServerAddress,
    readonly handlers: LinkHandlers,
  ) {}

  get server(): FakeServer | undefined {
    return this.net.server(this.address.snapshot);
  }

  subscribed(key: Buffer): boolean {
    return (this.prefixes ?? []).some((p) => {
      const prefix = Buffer.from(p);
      return key.length >= prefix.length && key.subarray(0, prefix.length).equals(prefix);
    });
  }

  request(frames: Buffer[], onFail?: () => void): void {
    if (this.closed) return onFail?.();
    const server = this.server;
    if (server === undefined || server.state === 'DEAD') {
      // no connection: the send fails (the real DEALER has `immediate` set)
      this.net.deliver(() => onFail?.());
      return;
    }
    this.net.deliver(() => server.receive(this, frames));
  }

  follow(prefixes: string[]): boolean {
    this.unfollow();
    this.follows++;
    this.prefixes = [...prefixes];
    this.server?.followers.add(this);
    return true;
  }

  unfollow(): void {
    this.prefixes = undefined;
    this.server?.followers.delete(this);
  }

  publish(frames: Buffer[]): boolean {
    if (this.closed) return true;
    if (!this.net.collectorsUp) {
      this.unsent.push(frames);
      return true;
    }
    const server = this.server;
    if (server === undefined) return true;
    this.publishing++;
    this.net.deliver(() => {
      this.publishing--;
      server.collect(frames);
    });
    return true;
  }

  /** The collector connection is up: what waited goes out. */
  connectCollector(): void {
    for (const frames of this.unsent.splice(0)) this.publish(frames);
  }

  /** Polls (real time, bounded) until nothing waits for the collector. */
  drain(timeoutMs: number): Promise<void> {
    this.drains++;
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve) => {
      const check = () => {
        if (this.closed || (this.unsent.length === 0 && this.publishing === 0) || Date.now() >= deadline)
          resolve();
        else setTimeout(check, 1);
      };
      check();
    });
  }

  /** how many times drain() was called */
  drains = 0;

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsent = []; // a closed socket sends nothing more
    this.unfollow();
  }
}

export interface FakeNetworkOptions {
  /** HUGZ period of active servers during `advance` */
  heartbeatMs?: number;
  start?: number;
}

export class FakeNetwork {
  readonly clock: FakeClock;
  readonly links: FakeLink[] = [];
  heartbeatMs: number;
  /** whether `advance` sends HUGZ from active servers */
  heartbeats = true;
  /** while false, clients' KVSETs wait in their link (the PUB has not connected yet) */
  collectorsUp = true;
  private readonly servers = new Map<string, FakeServer>();
  private inFlight = 0;
  private readonly errors: unknown[] = [];

  constructor(options: FakeNetworkOptions = {}) {
    this.clock = new FakeClock(options.start);
    this.heartbeatMs = options.heartbeatMs ?? 100;
  }

  addServer(endpoint: string, options: FakeServerOptions = {}): FakeServer {
    const server = new FakeServer(this, endpoint, options);
    this.servers.set(endpoint, server);
    return server;
  }

  server(endpoint: string): FakeServer | undefined {
    return this.servers.get(endpoint);
  }

  get endpoints(): string[] {
    return [...this.servers.keys()];
  }

  /** The `Transport` to hand to the client. */
  readonly transport: Transport = (address, handlers) => {
    const link = new FakeLink(this, address, handlers);
    this.links.push(link);
    return link;
  };

  /** Brings every client's collector connection up (see collectorsUp). */
  connectCollectors(): void {
    this.collectorsUp = true;
    for (const link of this.links) link.connectCollector();
  }

  /** Carries one message (or one send failure) across the wire, after the current turn. */
  deliver(fn: () => void, to?: FakeLink): void {
    this.inFlight++;
    setImmediate(() => {
      this.inFlight--;
      if (to?.closed) return; // the receiving socket is gone
      try {
        fn();
      } catch (error) {
        this.errors.push(error);
      }
    });
  }

  /** Resolves once nothing is on the wire and the client has had a few turns to react. */
  async settle(maxTurns = 100_000): Promise<void> {
    let idle = 0;
    for (let turn = 0; turn < maxTurns; turn++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.rethrow();
      if (this.inFlight > 0) idle = 0;
      else if (++idle >= 4) return;
    }
    throw new Error('the fake network never went quiet');
  }

  /**
   * Moves fake time forward `ms` in steps of `stepMs`: at each step the client's due timers run,
   * active servers send HUGZ every `heartbeatMs`, and the wire settles.
   */
  async advance(ms: number, stepMs = 10): Promise<void> {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.advance(Math.min(stepMs, end - this.clock.now()));
      this.rethrow();
      if (this.heartbeats) {
        for (const server of this.servers.values()) {
          if (server.sendsHugz && this.clock.now() - server.lastHugz >= server.hugzMs) server.hugz();
        }
      }
      await this.settle();
    }
  }

  private rethrow(): void {
    if (this.errors.length > 0) throw this.errors.shift();
  }
}

export function randomUuid(): string {
  return randomBytes(16).toString('latin1');
}
