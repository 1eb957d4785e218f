/**
 * The client's sockets for one server, behind the narrow `Link` interface so the client's state
 * machine can be unit-tested with a fake transport. A DEALER talks to the snapshot ROUTER (votes,
 * snapshots, resumes, acknowledged writes), or, where the server offers it, the client's own
 * DEALER to its request lane (lane-path.ts); a subscriber follows the publisher once this server
 * is the one in use (in native mode the client's own ZMTP SUB, follow-stream.ts; otherwise a
 * libzmq SUB); a PUB reaches the collector for plain CHP writes.
 *
 * With CURVE every socket is encrypted and the DEALER's routing id is this client's session token
 * (security/session.ts). Updates then come over the DEALER (TFOLLOW), filtered by the server to
 * what this key may read, because a PUB cannot filter per subscriber (docs/security.md). A server
 * honours a token for one connection only, made soon after the token was minted: so the DEALER is
 * replaced, with a new token, whenever its connection ends, when its token has aged while it was
 * not connected, and when the server says the session is not valid.
 */
import * as zmq from 'zeromq';
import { encodeRequest, HUGZ, isUnauthenticatedReply, Native } from '../wire/index.js';
import {
  CONTEXT_DESCRIPTORS,
  Outbox,
  reserveDescriptors,
  retryInterrupted,
  whenWritable,
  type ZmtpSub,
} from '../zmq/index.js';
import { curveClientOptions, sessionToken, tokenMintedAt } from '../security/index.js';
import type { ServerAddress } from './servers.js';
import { ContextPool, hostOf } from './contexts.js';
import { followStream } from './follow-stream.js';
import { guarded, listen } from './listen.js';
import { Collector } from './collector.js';
import { LanePath } from './lane-path.js';
import { Observers, openSocket, socketError, SocketWarnings } from './open-socket.js';
import type { Link, LinkHandlers, Transport } from './link.js';

/** a token older than this is not used for a new connection (servers honour them for >= 60 s) */
const TOKEN_RENEW_MS = 30_000;
const RENEW_CHECK_MS = 5_000;
const RENEW_MIN_GAP_MS = 1000;
/** a subscriber that could not be opened (EMFILE) is tried again after this */
const FOLLOW_RETRY_MS = 1000;
/** messages a DEALER (or the lane) holds past what its connection took: beyond, a request fails */
const DEALER_HWM = 100_000;

export const zmqTransport: Transport = (server, handlers) => new ZmqLink(server, handlers);

/** Every link of the process to one host shares a context (one I/O thread): see contexts.ts. */
// Each client holds up to about ten sockets on it (a DEALER and the two of its event observer, a
// SUB, the collector's XPUB): with libzmq's default of 1023 a context, only 127 to 146 of 200
// clients connecting at once in one process got in, the rest failed with EMFILE.
// A new context starts its threads at its first socket, the DEALER made right after this.
const contexts = new ContextPool(() => {
  reserveDescriptors(CONTEXT_DESCRIPTORS);
  return new zmq.Context({ ioThreads: 1, maxSockets: 32_768 });
});

class ZmqLink implements Link {
  // One ZeroMQ context (I/O thread) per server host, shared by the process's clients: libzmq
  // resolves host names again at every reconnect inside the I/O thread, and a dead server's name
  // can take seconds to fail. It must not hold up the sockets to the other server, which is the
  // one we are failing over to.
  private readonly context: zmq.Context;
  // immediate: queue only to a completed connection, so votes to a dead server fail at once
  // instead of piling up and flooding it when it comes back.
  private dealer!: zmq.Dealer;
  private dealerOut!: Outbox;
  /** the DEALER has a completed handshake (with CURVE: its token is in use) */
  private dealerConnected = false;
  /** a message went out on this DEALER: it is writable, and asking libzmq again is unsafe */
  private dealerDelivered = false;
  private lastRenewAt = 0;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewLater: NodeJS.Timeout | undefined;
  private readonly curve: Record<string, string> = {};
  /** following over the DEALER (TFOLLOW) rather than a SUB: on which DEALER, which prefixes */
  private followedOn: { dealer: zmq.Dealer; prefixes: string } | undefined;
  private sub: ZmtpSub | zmq.Subscriber | undefined;
  /** what `sub` is subscribed to, when it is a libzmq SUB */
  private subPrefixes: string[] = [];
  /** `sub`, a libzmq SUB, is connected: it sent its subscriptions on its handshake */
  private subConnected = false;
  /** plain CHP writes: made at the first */
  private collector: Collector | undefined;
  private closed = false;
  private readonly observers = new Observers();
  /** a SUB that could not be opened is tried again (followZmq) */
  private followRetry: NodeJS.Timeout | undefined;
  private readonly warnings = new SocketWarnings();
  /** without CURVE, the request lane the server may offer, tried beside the DEALER (lane-path.ts) */
  private readonly lane: LanePath | undefined;

  constructor(
    private readonly server: ServerAddress,
    private readonly handlers: LinkHandlers,
  ) {
    const { curve } = server;
    if (curve) this.curve = curveClientOptions(curve.own, curve.serverPublicKey);
    try {
      this.context = contexts.get(hostOf(server.snapshot));
    } catch (error) {
      throw socketError(`a ZeroMQ context for ${server.snapshot}`, error);
    }
    try {
      this.openDealer();
    } catch (error) {
      throw socketError(`a DEALER to ${server.snapshot}`, error);
    }
    const { updates, routingId } = server;
    if (!curve && updates !== undefined && routingId !== undefined)
      this.lane = this.openLane(updates, routingId);
    if (curve) {
      this.renewTimer = setInterval(() => {
        const minted = tokenMintedAt(this.dealer.routingId ?? '');
        if (!this.dealerConnected && minted !== undefined && Date.now() - minted > TOKEN_RENEW_MS)
          this.renewDealer();
      }, RENEW_CHECK_MS);
      this.renewTimer.unref();
    }
  }

  private openLane(endpoint: string, routingId: string): LanePath {
    const dealer = this.dealer;
    return new LanePath(endpoint, Buffer.from(routingId), this.server.frames?.dealer ?? -1, DEALER_HWM, {
      message: guarded((frames) => {
        if (!this.closed && frames[0]?.toString('latin1') !== Native.PUBLISH) this.handlers.reply(frames);
      }),
      chooseLane: () => {
        this.dealerOut.close(); // nothing went out on it: requests wait for the choice
        dealer.close();
      },
      chooseDealer: () => {
        if (this.dealerConnected && !this.closed) this.announce(dealer);
      },
      connected: () => {
        if (!this.closed) this.handlers.connected?.();
      },
    });
  }

  /** Opens the DEALER (throws if it cannot: EMFILE) and makes it the link's. */
  private openDealer(): void {
    const { curve } = this.server;
    const make = () =>
      new zmq.Dealer({
        context: this.context,
        linger: 0,
        immediate: true,
        sendTimeout: 0,
        sendHighWaterMark: DEALER_HWM,
        maxMessageSize: this.server.frames?.dealer ?? -1,
        ...this.curve,
        ...(curve
          ? { routingId: sessionToken(curve.own, curve.serverPublicKey) }
          : this.server.routingId !== undefined
            ? { routingId: this.server.routingId }
            : {}),
      });
    const dealer = openSocket(make, (dealer) => this.watchDealer(dealer));
    this.dealer = dealer;
    this.dealerOut = new Outbox(dealer, () => undefined);
    this.dealerConnected = this.dealerDelivered = false;
    retryInterrupted(() => dealer.connect(this.server.snapshot));
    // A DEALER replaced by renewDealer() is closed under its loop: that end is expected.
    listen(
      dealer,
      () => !this.closed && this.dealer === dealer,
      (frames) => {
        if (this.dealer !== dealer) return;
        if (frames[0]?.toString('latin1') === Native.PUBLISH) {
          if (this.followedOn) this.handlers.update(frames.slice(1));
          return;
        }
        if (curve && isUnauthenticatedReply(frames)) this.renewDealer();
        this.handlers.reply(frames);
      },
    );
  }

  /** The DEALER's event observer (two sockets more: it may fail to open as well). */
  private watchDealer(dealer: zmq.Dealer): void {
    const { curve } = this.server;
    const events = this.observers.open(dealer);
    events.on('handshake', () => {
      if (this.dealer !== dealer || this.closed) return;
      this.dealerConnected = true;
      if (this.lane && !this.lane.onDealer) return this.lane.dealerConnected(true);
      this.announce(dealer);
    });
    events.on('disconnect', () => {
      if (this.dealer !== dealer) return;
      this.dealerConnected = false;
      this.lane?.dealerConnected(false);
      this.dealerDelivered = false; // no reply can come now: the next handshake may ask `writable`
      if (curve) this.renewDealer(); // libzmq would reconnect with the token, honoured only once
    });
  }

  /**
   * Tells the link's user the DEALER can take a request, which right after the handshake it may
   * not; never asked again once a request went out, as a reply may be on its way (when-writable.ts).
   */
  private announce(dealer: zmq.Dealer): void {
    whenWritable(
      () => this.dealerDelivered || dealer.writable,
      () => this.handlers.connected?.(),
      () => this.dealer !== dealer || this.closed,
    );
  }

  /** A new DEALER with a new token; what was queued on the old one is lost, as on a disconnect. */
  private renewDealer(): void {
    if (this.closed || this.renewLater) return;
    const wait = this.lastRenewAt + RENEW_MIN_GAP_MS - Date.now();
    if (wait > 0) {
      // At most one new socket a second, even if the server keeps refusing.
      this.renewLater = setTimeout(() => {
        this.renewLater = undefined;
        this.renewDealer();
      }, wait);
      return;
    }
    this.lastRenewAt = Date.now();
    const [old, oldOut] = [this.dealer, this.dealerOut];
    try {
      this.openDealer();
    } catch (error) {
      // The old DEALER stays until a new one opens: its requests fail as before (the token).
      this.warnings.failed(`a DEALER to ${this.server.snapshot}`, error, 'trying again in 1 s');
      this.renewDealer(); // waits RENEW_MIN_GAP_MS from this attempt
      return;
    }
    this.warnings.opened();
    oldOut.close();
    old.close();
  }

  request(frames: Buffer[], onFail?: () => void): void {
    if (this.closed) return onFail?.();
    if (this.lane && !this.lane.onDealer) return void (this.lane.send(frames) || onFail?.());
    const dealer = this.dealer;
    this.dealerOut.send(frames).then(
      () => {
        if (this.dealer === dealer) this.dealerDelivered = true;
      },
      () => onFail?.(),
    );
  }

  follow(prefixes: string[], native = false): boolean {
    if (!this.server.curve && !native && this.sub instanceof zmq.Subscriber) {
      this.refollowZmq(this.sub, prefixes);
      return true;
    }
    if (this.server.curve) {
      this.followByRequest(prefixes);
      return true;
    }
    this.unfollow();
    if (!native) return this.followZmq(prefixes);
    this.followLean(prefixes);
    return true;
  }

  /**
   * TFOLLOW: the server replaces what this connection followed, so a follower is never dropped in
   * between (a TUNFOLLOW first lost a plain CHP client the updates of that gap: it has no resume),
   * and the same prefixes on the same connection are not asked again.
   */
  private followByRequest(prefixes: string[]): void {
    const key = prefixes.join('\n');
    if (this.followedOn?.dealer === this.dealer && this.followedOn.prefixes === key) return;
    this.followedOn = { dealer: this.dealer, prefixes: key };
    this.request(encodeRequest({ command: 'TFOLLOW', reqId: 0, prefixes }));
  }

  /** The client's own ZMTP subscriber on the update stream (follow-stream.ts). */
  private followLean(prefixes: string[]): void {
    const sub: ZmtpSub = followStream(this.server, prefixes, {
      current: () => this.sub === sub && !this.closed,
      update: (frames) => this.handlers.update(frames),
      resubscribed: () => this.handlers.resubscribed?.(),
    });
    this.sub = sub;
  }

  /**
   * The libzmq SUB this link holds (auto mode listened to the server's HUGZ on it) follows the new
   * prefixes: they go out at once on a connection that is up, where a new SUB would first connect
   * and handshake, and a plain CHP client never gets back an update published before its
   * subscription is in force (strict-chp.test.ts lost writes made just after a failover).
   */
  private refollowZmq(sub: zmq.Subscriber, prefixes: string[]): void {
    for (const prefix of this.subPrefixes) if (!prefixes.includes(prefix)) sub.unsubscribe(prefix);
    for (const prefix of prefixes) if (!this.subPrefixes.includes(prefix)) sub.subscribe(prefix);
    this.subPrefixes = [...prefixes];
  }

  /** false if the SUB could not be opened (EMFILE): warned, and tried again in FOLLOW_RETRY_MS */
  private followZmq(prefixes: string[]): boolean {
    const make = () =>
      new zmq.Subscriber({
        context: this.context,
        linger: 0,
        receiveHighWaterMark: 1_000_000,
        maxMessageSize: this.server.frames?.sub ?? -1,
      });
    // Its connection is watched only when it follows changes (an ICANHAZ? waits for it); a SUB
    // that listens for HUGZ alone ('auto') does without the two sockets of an event observer.
    const hugzOnly = prefixes.every((prefix) => prefix === HUGZ);
    let sub: zmq.Subscriber;
    try {
      sub = openSocket(make, (sub) => {
        if (!hugzOnly) this.watchSub(sub);
      });
    } catch (error) {
      this.warnings.failed(`a SUB to ${this.server.publisher}`, error, 'trying again every second');
      this.followRetry = setTimeout(() => {
        this.followRetry = undefined;
        if (!this.closed) this.follow(prefixes);
      }, FOLLOW_RETRY_MS);
      this.followRetry.unref();
      return false;
    }
    this.warnings.opened();
    for (const prefix of prefixes) sub.subscribe(prefix);
    this.subConnected = hugzOnly;
    retryInterrupted(() => sub.connect(this.server.publisher));
    this.sub = sub;
    this.subPrefixes = [...prefixes];
    listen(
      sub,
      () => !this.closed && this.sub === sub,
      (frames) => {
        if (this.sub === sub) this.handlers.update(frames);
      },
    );
    return true;
  }

  private watchSub(sub: zmq.Subscriber): void {
    const events = this.observers.open(sub);
    events.on('handshake', () => {
      if (this.sub !== sub) return;
      this.subConnected = true;
      this.handlers.followed?.();
    });
    events.on('disconnect', () => {
      if (this.sub === sub) this.subConnected = false;
    });
  }

  followReady(): boolean {
    return !(this.sub instanceof zmq.Subscriber) || this.subConnected;
  }

  unfollow(): void {
    clearTimeout(this.followRetry);
    this.followRetry = undefined;
    if (this.followedOn) {
      this.followedOn = undefined;
      this.request(encodeRequest({ command: 'TUNFOLLOW', reqId: 0 }));
    }
    this.sub?.close();
    this.sub = undefined;
  }

  publish(frames: Buffer[]): boolean {
    if (this.closed) return true; // closed with its client, which refuses writes from then on
    try {
      this.collector ??= new Collector(this.context, this.server, this.curve);
    } catch (error) {
      this.warnings.failed(`a PUB to ${this.server.collector}`, error, 'the write was refused');
      return false;
    }
    this.warnings.opened();
    this.collector.publish(frames);
    return true;
  }

  drain(timeoutMs: number): Promise<void> {
    return this.collector?.drain(timeoutMs) ?? Promise.resolve();
  }

  stopped(timeoutMs: number): Promise<void> {
    return this.observers.stopped(timeoutMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewTimer);
    clearTimeout(this.renewLater);
    clearTimeout(this.followRetry);
    this.lane?.close();
    this.dealerOut.close();
    this.dealer.close();
    this.sub?.close();
    this.collector?.close();
  }
}
