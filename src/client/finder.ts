/**
 * The search for the active server, on the client's links: the I/O half of discovery.ts. While the
 * client looks, every tick calls `probe()`:
 * - native: TPING to every server (never a vote); TVOTE to a non-active server only once every
 *   other server has been silent for its effective timeout, at most one outstanding per server,
 *   the first one jittered and a jittered back-off after refusals (votes.ts); the pair is
 *   unavailable when the only node that answers lacks history;
 * - chp: ICANHAZ? (a vote on RFC 12 servers) in Binary Star order, one server at a time, each
 *   once the client's subscriber to that server's publisher is connected;
 * - auto: nothing native; HUGZ followed on every publisher until one advertises (or not)
 *   `twinstar=1`, and the RFC 12 way after a timeout with no HUGZ at all.
 * The client is told through `FinderHost` when a server says ACTIVE or the pair is unavailable.
 * A server the host says is not `usable` (quarantined: it sent a malformed reply) gets no ping, vote
 * or ICANHAZ? meanwhile, and its silence does not count while the client is not trying it.
 */
import {
  encodeIcanhaz,
  encodeRequest,
  HUGZ,
  parseProperties,
  type NativeReply,
  type PongReply,
} from '../wire/index.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { describeSeen, Discovery, pongOf, type Pong } from './discovery.js';
import { VoteBook, type Random } from './votes.js';
import type { Link } from './link.js';

/** how often a server is pinged while the client looks for the active */
export const PROBE_MS = 50;
/**
 * longest a plain CHP ask waits for its subscriber's handshake: then it goes anyway (the publisher
 * may be unreachable while the snapshot socket is not, and the server must still be asked)
 */
export const FOLLOW_WAIT_MS = 1000;

export interface FinderHost {
  readonly links: readonly Link[];
  readonly subtree: string;
  readonly log: Logger;
  now(): number;
  /** 'native' | 'chp', or 'auto' while undecided */
  mode(): string;
  reqId(): number;
  /** the pair is unavailable (no history): ready() fails with this, connected clients say so */
  unavailable(error: UnavailableError): void;
  /** false while the server is quarantined (drops.ts): nothing is sent to it */
  usable(server: number, now: number): boolean;
  /** the jitter of votes (votes.ts) */
  readonly random: Random;
}

export class Finder {
  readonly discovery: Discovery;
  readonly votes: VoteBook;
  /** a search is under way (silence measured so far still counts) */
  private searching = false;
  /** 'auto': following HUGZ on every publisher to read the advertisements */
  private listening = false;
  /** per server: since when a plain CHP ask has waited for the subscriber's handshake */
  private followWaitFrom: (number | undefined)[] = [];

  constructor(
    private readonly host: FinderHost,
    endpoints: readonly string[],
    serverTimeoutMs: number,
  ) {
    this.discovery = new Discovery(endpoints, serverTimeoutMs);
    this.votes = new VoteBook(serverTimeoutMs, {
      baseMs: PROBE_MS,
      maxMs: Math.max(1000, serverTimeoutMs),
      random: host.random,
    });
  }

  /** The client lost (or never had) its server: look. `lost` is the server it was using. */
  begin(lost: number | undefined): void {
    this.votes.clear();
    this.followWaitFrom = [];
    // A search already under way keeps the silence it measured (a server that answered "not
    // active" to a sync must not restart the clock on the one that is dead).
    if (!this.searching) this.discovery.begin(this.host.now(), lost);
    this.searching = true;
    if (this.host.mode() === 'auto') this.listen(true, -1);
  }

  /** The client chose `server`: stop listening elsewhere, measure its HUGZ afresh. */
  chose(server: number): void {
    this.votes.clear();
    // Only the chosen server stays followed: auto mode listened to every publisher's HUGZ, and a
    // plain CHP search subscribed to each server it asked.
    this.listening = false;
    this.host.links.forEach((link, i) => i !== server && link.unfollow());
    this.discovery.forgetHugz(server);
  }

  /** The client is ready: the next search starts from scratch. */
  done(): void {
    this.searching = false;
  }

  timeout(server: number): number {
    return this.discovery.timeout(server);
  }

  /** One step of the search. */
  probe(): void {
    const now = this.host.now();
    const d = this.discovery;
    const mode = this.host.mode();
    const usable = (i: number) => this.host.usable(i, now);
    // Not trying a quarantined server: its silence counts only from when the client asks again.
    for (let i = 0; i < this.host.links.length; i++) if (!usable(i)) d.untried(i, now);
    if (mode === 'native') {
      for (const i of d.pingsDue(now, PROBE_MS)) if (usable(i)) this.ping(i, now);
      for (const x of d.voteCandidates(now)) if (usable(x) && this.votes.isDue(x, now)) this.vote(x, now);
      if (d.unavailable(now)) {
        const seen = d.seen();
        this.host.unavailable(
          new UnavailableError(
            'no-history',
            `no active server, and the node that answers has no complete history: ${describeSeen(seen)}`,
          ),
        );
      }
    } else if (mode === 'chp' || now - d.since >= d.timeout(0)) {
      // plain CHP, or 'auto' that heard no advertisement within a timeout: RFC 12's way
      const ask = d.chpAsk(now, PROBE_MS);
      if (ask !== undefined && !usable(ask)) d.chpDeferred(ask);
      else if (ask !== undefined) {
        // Subscribed before asking, as RFC 12's clients are: a plain CHP client never gets back an
        // update published between the snapshot and a subscription made after it. A new SUB's
        // subscriptions go out on its handshake: asking before it lost the updates that followed
        // the snapshot (86 of 100 clients connecting while a writer pipelined).
        // A SUB that could not be opened (EMFILE) defers the ask: without it, updates are lost.
        const link = this.host.links[ask]!;
        if (!link.follow([this.host.subtree, HUGZ]) || !this.subscribed(ask, now)) d.chpDeferred(ask);
        else link.request(encodeIcanhaz(this.host.subtree), () => d.chpNotSent(ask));
      }
    }
  }

  /** The subscriber to `server` is connected, or has been given FOLLOW_WAIT_MS to connect. */
  private subscribed(server: number, now: number): boolean {
    if (this.host.links[server]!.followReady?.() !== false) {
      this.followWaitFrom[server] = undefined;
      return true;
    }
    const from = (this.followWaitFrom[server] ??= now);
    return now - from >= FOLLOW_WAIT_MS;
  }

  /** The subscriber to `server` connected: true if a plain CHP ask waiting for it is due now. */
  followed(server: number): boolean {
    return this.followWaitFrom[server] !== undefined && this.discovery.reachable(server);
  }

  private ping(server: number, now: number): void {
    const reqId = this.host.reqId();
    this.discovery.pinged(server, reqId, now);
    this.host.links[server]!.request(encodeRequest({ command: 'TPING', reqId }), () =>
      this.discovery.unreachable(server),
    );
  }

  /** TVOTE: only once every other server has been silent for its timeout (promise 3). */
  private vote(server: number, now: number): void {
    const reqId = this.host.reqId();
    this.votes.sent(server, reqId, now);
    this.host.log.info({ server: this.discovery.seen()[server]!.server }, 'the active is silent: voting');
    this.host.links[server]!.request(encodeRequest({ command: 'TVOTE', reqId }), () => {
      if (this.votes.serverOf(reqId) === server) this.votes.settle(server);
      this.discovery.unreachable(server);
    });
  }

  /** A TPONG: the pong if it answers our ping or vote, else undefined. */
  onPong(server: number, reply: PongReply): Pong | undefined {
    const { reqId } = reply;
    const vote = this.votes.serverOf(reqId) === server;
    if (vote) this.votes.settle(server);
    if (!vote && !this.discovery.isPing(server, reqId)) return undefined;
    const pong = pongOf(reply);
    this.discovery.pong(server, pong);
    return pong;
  }

  /** A TNOTACTIVE: true if it refused our vote ('peer-alive': back off; 'no-history': never). */
  onRefused(server: number, reply: Extract<NativeReply, { command: 'TNOTACTIVE' }>): boolean {
    if (this.votes.serverOf(reply.reqId) !== server) return false;
    this.discovery.pong(server, { state: reply.state });
    if (reply.reason === 'no-history') this.discovery.refusedNoHistory(server);
    this.votes.refused(server, this.host.now());
    return true;
  }

  /**
   * A HUGZ from a server not in use: its interval (advertised or measured) sets how long the
   * client waits for that server. A plain CHP client hears the server it asked, and without this
   * waited the 3 s of an assumed 1 s interval for a passive asked first, not 3 of its 100 ms
   * (at least serverTimeoutMs). While listening ('auto'), returns what it says about the protocol
   * (true: twinstar=1; false: plain CHP); else undefined.
   */
  onHugzElsewhere(server: number, props: string): boolean | undefined {
    this.discovery.hugz(server, this.host.now(), properties(props));
    if (!this.listening) return undefined;
    return this.discovery.native(server) === true;
  }

  /** Follow HUGZ on every publisher but the one in use ('auto'), or stop. */
  listen(on: boolean, current: number): void {
    if (this.listening === on) return;
    this.listening = on;
    this.host.links.forEach((link, i) => {
      if (i === current) return;
      if (on) {
        this.discovery.forgetHugz(i);
        link.follow([HUGZ]);
      } else {
        link.unfollow();
      }
    });
  }
}

/** Properties of a control message; malformed ones count as none (they only carry hints). */
export function properties(text: string): Map<string, string> {
  try {
    return parseProperties(text);
  } catch {
    return new Map();
  }
}
