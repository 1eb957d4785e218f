/**
 * What the client knows about each server while it looks for the active one, as pure bookkeeping
 * (no sockets, no clock: every method is given `now`). The client asks it, on every tick, whom to
 * ping, whether a vote is justified, whom to ask next in plain CHP, and whether the pair is
 * unavailable; docs/protocol.md ("Finding the active") describes the procedure.
 *
 * Two rules matter most:
 * - Silence. A server is silent once nothing came from it for its effective timeout,
 *   max(serverTimeoutMs, 3 x its HUGZ interval). The interval is what the server advertised
 *   (TPONG, or `hugz-ms` on KTHXBAI/HUGZ), else what the client measured between HUGZ, else the
 *   RFC 12 / ZeroMQ guide assumption of one second. Silence counts only while the client was
 *   trying: from the start of the search, or, for the server it was using, from its last message.
 *   A plain CHP ask counts it from the ask, and a server it could not reach at all (no connection)
 *   is silent after serverTimeoutMs.
 * - Votes. A non-active server may be sent TVOTE only once every other server is silent, and never
 *   if it said it has no complete history. Probing (TPING) is never a vote.
 */
import { ADVERTISE, NATIVE_VERSION, type PongReply } from '../wire/index.js';
import type { ServerSeenInfo } from '../errors.js';

/** RFC 12 and the guide's servers send HUGZ every second; assumed until a server says otherwise. */
export const ASSUMED_HUGZ_MS = 1000;
/** a server is silent only after this many of its heartbeat intervals */
export const SILENT_INTERVALS = 3;
/** the measured interval is the largest of this many recent HUGZ gaps */
const GAP_SAMPLES = 4;
/**
 * An unanswered ping is sent again after PING_RETRY_FIRST_MS, then after twice as long each time,
 * up to PING_RETRY_MS. Quickly at first: a ping or its answer may be lost to a connection that has
 * just completed (a TPONG once waited unread until the next send, fixed in transport.ts; pings are
 * free to repeat, so the quick retry stays as a second guard). Then slowly, so a frozen server is
 * not flooded.
 */
const PING_RETRY_FIRST_MS = 100;
const PING_RETRY_MS = 1000;

export type History = 'complete' | 'incomplete';

/** One server as the client saw it during the search (for status events and errors). */
export type ServerSeen = ServerSeenInfo;

export interface Pong {
  readonly state: string;
  readonly heartbeatMs?: number;
  readonly history?: History;
}

interface View {
  /** silence is measured from here: the last message, or the start of the search */
  quietSince: number;
  answered: boolean;
  unreachable: boolean;
  state: string | undefined;
  noHistory: boolean;
  advertisedMs: number | undefined;
  lastHugzAt: number | undefined;
  gaps: number[];
  /** true: advertised twinstar=1; false: spoke plain CHP without it; undefined: unknown */
  native: boolean | undefined;
  pingReqId: number | undefined;
  pingSentAt: number;
  /** pings sent in a row while one was unanswered (sets the retry interval) */
  pingRetries: number;
}

export class Discovery {
  private readonly views: View[];
  private lost: number | undefined;
  private chpTarget: number | undefined;
  private chpAskedAt = -Infinity;
  /** the last ICANHAZ? could not be sent (no connection yet): send it again, same server */
  private chpUnsent = false;
  private chpSentAt = -Infinity;
  private chpDelivered = false;
  /** when the current search began */
  since = 0;

  constructor(
    private readonly endpoints: readonly string[],
    private readonly serverTimeoutMs: number,
  ) {
    this.views = endpoints.map(() => ({
      quietSince: 0,
      answered: false,
      unreachable: false,
      state: undefined,
      noHistory: false,
      advertisedMs: undefined,
      lastHugzAt: undefined,
      gaps: [],
      native: undefined,
      pingReqId: undefined,
      pingSentAt: -Infinity,
      pingRetries: 0,
    }));
  }

  /** Plain CHP: the server asked for a snapshot (subscribed to before it was asked), if any. */
  get asked(): number | undefined {
    return this.chpTarget;
  }

  /** A search begins; `lost` is the server the client was using (its silence already counts). */
  begin(now: number, lost?: number): void {
    this.since = now;
    this.lost = lost;
    this.chpTarget = undefined;
    this.chpAskedAt = -Infinity;
    this.chpUnsent = false;
    this.views.forEach((v, i) => {
      if (i !== lost) v.quietSince = now;
      v.answered = false;
      v.unreachable = false;
      v.state = undefined;
      v.pingReqId = undefined;
      v.pingSentAt = -Infinity;
    });
  }

  /** The client was frozen: silence it slept through proves nothing. */
  thaw(now: number): void {
    for (const v of this.views) v.quietSince = Math.max(v.quietSince, now);
    this.chpAskedAt = Math.max(this.chpAskedAt, now);
  }

  /** Something came from this server. */
  heard(i: number, now: number): void {
    const v = this.views[i]!;
    v.quietSince = now;
    v.answered = true;
    v.unreachable = false;
  }

  /** The client is not trying this server now (quarantined): its silence so far does not count. */
  untried(i: number, now: number): void {
    const v = this.views[i]!;
    v.quietSince = Math.max(v.quietSince, now);
  }

  /** A send to this server failed at once (no connection). */
  unreachable(i: number): void {
    const v = this.views[i]!;
    v.unreachable = !v.answered;
    v.pingReqId = undefined;
  }

  // ----------------------------------------------------------------------------------------
  // Pings (native mode).

  /** Servers to ping now: no ping outstanding for `probeMs`, or an old one went unanswered. */
  pingsDue(now: number, probeMs: number): number[] {
    const out: number[] = [];
    this.views.forEach((v, i) => {
      const wait =
        v.pingReqId === undefined
          ? probeMs
          : Math.min(PING_RETRY_MS, PING_RETRY_FIRST_MS * 2 ** v.pingRetries);
      if (now - v.pingSentAt >= wait) out.push(i);
    });
    return out;
  }

  /**
   * Server `i` can be reached now (its connection completed): a ping, or a plain CHP ask, that
   * could not go out is due at once rather than after the probe interval. True if one is.
   */
  reachable(i: number): boolean {
    if (i === this.chpTarget && this.chpUnsent) {
      this.chpSentAt = -Infinity;
      return true;
    }
    const v = this.views[i]!;
    if (v.pingReqId !== undefined || v.answered) return false;
    v.pingSentAt = -Infinity;
    return true;
  }

  pinged(i: number, reqId: number, now: number): void {
    const v = this.views[i]!;
    v.pingRetries = v.pingReqId === undefined ? 0 : v.pingRetries + 1;
    v.pingReqId = reqId;
    v.pingSentAt = now;
  }

  /** True when reqId is this server's outstanding ping (which is then answered). */
  isPing(i: number, reqId: number): boolean {
    const v = this.views[i]!;
    if (v.pingReqId !== reqId) return false;
    v.pingReqId = undefined;
    return true;
  }

  /** A TPONG (to a ping or a vote), or the state from a TNOTACTIVE. */
  pong(i: number, pong: Pong): void {
    const v = this.views[i]!;
    v.state = pong.state;
    v.native = true;
    if (pong.heartbeatMs !== undefined) v.advertisedMs = clampInterval(pong.heartbeatMs);
    if (pong.history === 'incomplete') v.noHistory = true;
    else if (pong.history === 'complete' || pong.state === 'ACTIVE') v.noHistory = false;
  }

  /** The server refused a vote because it lacks a complete history. */
  refusedNoHistory(i: number): void {
    this.views[i]!.noHistory = true;
  }

  // ----------------------------------------------------------------------------------------
  // Heartbeats and advertisements.

  /** A HUGZ from this server, with its properties. */
  hugz(i: number, now: number, properties: ReadonlyMap<string, string>): void {
    const v = this.views[i]!;
    if (v.lastHugzAt !== undefined && now > v.lastHugzAt) {
      v.gaps.push(now - v.lastHugzAt);
      if (v.gaps.length > GAP_SAMPLES) v.gaps.shift();
    }
    v.lastHugzAt = now;
    this.advertised(i, properties);
  }

  /** Properties of a KTHXBAI or HUGZ: `twinstar=1` and `hugz-ms=N` on twinstar servers. */
  advertised(i: number, properties: ReadonlyMap<string, string>): void {
    const v = this.views[i]!;
    const native = properties.get(ADVERTISE.NATIVE) === NATIVE_VERSION;
    if (native) v.native = true;
    else v.native ??= false;
    const ms = Number(properties.get(ADVERTISE.HUGZ_MS));
    if (properties.has(ADVERTISE.HUGZ_MS) && Number.isFinite(ms) && ms > 0)
      v.advertisedMs = clampInterval(ms);
  }

  /** The HUGZ interval of this server had a new sample just now (a quiet gap restarts). */
  forgetHugz(i: number): void {
    this.views[i]!.lastHugzAt = undefined;
  }

  native(i: number): boolean | undefined {
    return this.views[i]!.native;
  }

  /** This server's HUGZ interval: advertised, else measured, else the pair's, else 1 s. */
  heartbeatMs(i: number): number {
    const v = this.views[i]!;
    if (v.advertisedMs !== undefined) return v.advertisedMs;
    if (v.gaps.length >= 2) return Math.max(...v.gaps);
    // the two nodes of a pair run with the same heartbeat (they refuse to pair otherwise)
    for (const other of this.views) if (other.advertisedMs !== undefined) return other.advertisedMs;
    return ASSUMED_HUGZ_MS;
  }

  /** How long this server must say nothing before it counts as silent. */
  timeout(i: number): number {
    return Math.max(this.serverTimeoutMs, SILENT_INTERVALS * this.heartbeatMs(i));
  }

  silent(i: number, now: number): boolean {
    return now - this.views[i]!.quietSince >= this.timeout(i);
  }

  // ----------------------------------------------------------------------------------------
  // Decisions.

  private othersSilent(x: number, now: number): boolean {
    return this.views.every((_, j) => j === x || this.silent(j, now));
  }

  /**
   * Servers a vote (TVOTE) is justified for now: they answered, are not active, have not said
   * they lack history, and every other server has been silent for its timeout.
   */
  voteCandidates(now: number): number[] {
    const out: number[] = [];
    this.views.forEach((v, x) => {
      if (v.state !== undefined && v.state !== 'ACTIVE' && !v.noHistory && this.othersSilent(x, now))
        out.push(x);
    });
    return out;
  }

  /** No active is reachable and the only node that answers has no complete history. */
  unavailable(now: number): boolean {
    return this.views.some((v, x) => v.noHistory && v.state !== 'ACTIVE' && this.othersSilent(x, now));
  }

  /**
   * Plain CHP (ICANHAZ? is a vote on servers): whom to ask now, in Binary Star order. The first
   * listed server first (or, after a failover, the one after the server lost), the next only once
   * the one asked has been silent for its timeout. Undefined: keep waiting.
   * An ask is not sent again while it may be answered: a second ICANHAZ? would stop the stream of
   * the first (one per client), and parts of both would make one snapshot.
   */
  chpAsk(now: number, retryMs = 50): number | undefined {
    const n = this.views.length;
    if (this.chpTarget === undefined) {
      this.chpTarget = this.lost === undefined ? 0 : (this.lost + 1) % n;
      return this.chpAsked(now);
    }
    // an ask that was not refused at once by the socket (no connection) went out
    if (!this.chpUnsent && now > this.chpSentAt) this.chpDelivered = true;
    const v = this.views[this.chpTarget]!;
    // Silence counts from the ask: an ask held back while the client's subscriber connects
    // (finder.ts, FOLLOW_WAIT_MS) is no silence of the server's (counted from the search's start,
    // the second server of a pair was skipped at once: 6 s to connect with the passive first).
    // A server the client could not reach at all (a send to it failed at once) has been silent
    // since the search began, for serverTimeoutMs alone: no connection, no heartbeat to wait for.
    const unreached = v.unreachable && !this.chpDelivered;
    const quietFrom = unreached ? v.quietSince : Math.max(this.chpAskedAt, v.quietSince);
    const timeout = unreached ? this.serverTimeoutMs : this.timeout(this.chpTarget);
    if (now - quietFrom >= timeout) {
      this.chpTarget = (this.chpTarget + 1) % n;
      return this.chpAsked(now);
    }
    if (this.chpUnsent && now - this.chpSentAt >= retryMs) {
      // not delivered, so not asked yet: again, to the same server
      this.chpUnsent = false;
      this.chpSentAt = now;
      return this.chpTarget;
    }
    return undefined;
  }

  private chpAsked(now: number): number {
    this.chpAskedAt = this.chpSentAt = now;
    this.chpUnsent = false;
    this.chpDelivered = false;
    return this.chpTarget!;
  }

  /** The ICANHAZ? to `i` could not be sent: it will go again shortly. */
  chpNotSent(i: number): void {
    this.unreachable(i);
    this.chpDeferred(i);
  }

  /** The ICANHAZ? to `i` was held back (quarantined): it goes once `i` may be asked again. */
  chpDeferred(i: number): void {
    if (i === this.chpTarget) this.chpUnsent = true;
  }

  /** What each server did during this search, for errors and status events. */
  seen(): ServerSeen[] {
    return this.views.map((v, i) => ({
      server: this.endpoints[i]!,
      seen: v.answered ? 'answered' : v.unreachable ? 'unreachable' : 'silent',
      ...(v.state !== undefined ? { state: v.state } : {}),
      ...(v.noHistory ? { noHistory: true } : {}),
    }));
  }
}

/** One line a person can read: "tcp://a:5556 no connection; tcp://b:5566 answered PASSIVE". */
export function describeSeen(seen: readonly ServerSeen[]): string {
  return seen
    .map((s) => {
      if (s.seen === 'unreachable') return `${s.server} no connection (refused or down)`;
      if (s.seen === 'silent') return `${s.server} no answer`;
      const history = s.noHistory ? ' without a complete history' : '';
      return `${s.server} answered${s.state !== undefined ? ` ${s.state}` : ''}${history}`;
    })
    .join('; ');
}

function clampInterval(ms: number): number {
  return Math.min(60_000, Math.max(1, ms));
}

/** What a TPONG (decoded by the codec) says; old servers send no heartbeatMs and history. */
export function pongOf(reply: PongReply): Pong {
  const { state, heartbeatMs, history } = reply;
  return { state, ...(heartbeatMs === undefined ? {} : { heartbeatMs, history }) };
}
