/**
 * The client's sockets for one server, behind the narrow `Link` interface so the client's state
 * machine can be unit-tested with a fake transport. A DEALER talks to the snapshot ROUTER (votes,
 * snapshots, resumes, acknowledged writes); a SUB follows the publisher once this server is the
 * one in use; a PUB reaches the collector for plain CHP writes.
 *
 * With CURVE every socket is encrypted and the DEALER's routing id is this client's session token
 * (security/session.ts). Updates then come over the DEALER (TFOLLOW), filtered by the server to
 * what this key may read, because a PUB cannot filter per subscriber (docs/security.md).
 */
import * as zmq from 'zeromq';
import { encodeRequestId, Native, Outbox, receiveLoop } from '../clone/index.js';
import { curveClientOptions, sessionToken } from '../security/index.js';
import type { ServerAddress } from './servers.js';

export interface LinkHandlers {
  /** a reply on the snapshot socket */
  reply(frames: Buffer[]): void;
  /** a message from the publisher (KVPUB or HUGZ) */
  update(frames: Buffer[]): void;
}

export interface Link {
  /** to the snapshot socket; `onFail` is told when the message could not be queued */
  request(frames: Buffer[], onFail?: () => void): void;
  /** start (or restart) following the publisher with these prefix subscriptions */
  follow(prefixes: string[]): void;
  /** stop following the publisher */
  unfollow(): void;
  /** to the collector (plain CHP KVSET) */
  publish(frames: Buffer[]): void;
  close(): void;
}

export type Transport = (server: ServerAddress, handlers: LinkHandlers) => Link;

const SUBSCRIPTION_GRACE_MS = 20;

export const zmqTransport: Transport = (server, handlers) => new ZmqLink(server, handlers);

class ZmqLink implements Link {
  // One ZeroMQ context (I/O thread) per server: libzmq resolves host names again at every
  // reconnect inside the I/O thread, and a dead server's name can take seconds to fail. It must
  // not hold up the sockets to the other server, which is the one we are failing over to.
  private readonly context = new zmq.Context({ ioThreads: 1 });
  // immediate: queue only to a completed connection, so votes to a dead server fail at once
  // instead of piling up and flooding it when it comes back.
  private readonly dealer: zmq.Dealer;
  private readonly dealerOut: Outbox;
  private readonly curve: Record<string, string> = {};
  /** following over the DEALER (TFOLLOW) rather than a SUB */
  private followingByRequest = false;
  private sub: zmq.Subscriber | undefined;
  private pub: zmq.Publisher | undefined;
  private pubOut: Outbox | undefined;
  private pubReady = false;
  private pubWaiting: Buffer[][] = [];
  private closed = false;

  constructor(
    private readonly server: ServerAddress,
    private readonly handlers: LinkHandlers,
  ) {
    const { curve } = server;
    if (curve) this.curve = curveClientOptions(curve.own, curve.serverPublicKey);
    this.dealer = new zmq.Dealer({
      context: this.context,
      linger: 0,
      immediate: true,
      sendTimeout: 0,
      sendHighWaterMark: 100_000,
      maxMessageSize: server.frames?.dealer ?? -1,
      ...this.curve,
      ...(curve ? { routingId: sessionToken(curve.own, curve.serverPublicKey) } : {}),
    });
    this.dealerOut = new Outbox(this.dealer, () => undefined);
    this.dealer.connect(server.snapshot);
    void receiveLoop(this.dealer, (frames) => {
      if (frames[0]?.toString('latin1') === Native.PUBLISH) {
        if (this.followingByRequest) handlers.update(frames.slice(1));
      } else {
        handlers.reply(frames);
      }
    });
  }

  request(frames: Buffer[], onFail?: () => void): void {
    if (this.closed) return onFail?.();
    this.dealerOut.send(frames).catch(() => onFail?.());
  }

  follow(prefixes: string[]): void {
    this.unfollow();
    if (this.server.curve) {
      this.followingByRequest = true;
      const frames = [Buffer.from(Native.FOLLOW), encodeRequestId(0), ...prefixes.map((p) => Buffer.from(p))];
      this.request(frames);
      return;
    }
    const sub = new zmq.Subscriber({
      context: this.context,
      linger: 0,
      receiveHighWaterMark: 1_000_000,
      maxMessageSize: this.server.frames?.sub ?? -1,
      ...this.curve,
    });
    for (const prefix of prefixes) sub.subscribe(prefix);
    sub.connect(this.server.publisher);
    this.sub = sub;
    void receiveLoop(sub, (frames) => {
      if (this.sub === sub) this.handlers.update(frames);
    });
  }

  unfollow(): void {
    if (this.followingByRequest) {
      this.followingByRequest = false;
      this.request([Buffer.from(Native.UNFOLLOW), encodeRequestId(0)]);
    }
    this.sub?.close();
    this.sub = undefined;
  }

  publish(frames: Buffer[]): void {
    if (this.closed) return;
    if (!this.pub) {
      const pub = new zmq.Publisher({
        context: this.context,
        linger: 1000,
        sendTimeout: 0,
        // libzmq's default of 1000 queued messages silently dropped bursts of KVSETs (465 of
        // 60,000 in the benchmark); match the server's collector queue.
        sendHighWaterMark: 100_000,
        maxMessageSize: this.server.frames?.pub ?? -1,
        ...this.curve,
      });
      this.pub = pub;
      this.pubOut = new Outbox(pub, () => undefined);
      // A PUB drops everything until the collector's subscription has arrived (the slow-joiner
      // problem of RFC 12 clients), so hold writes until the handshake and a moment after it.
      pub.events.on('handshake', () => {
        setTimeout(() => {
          this.pubReady = true;
          for (const waiting of this.pubWaiting.splice(0)) this.pubOut!.post(waiting);
        }, SUBSCRIPTION_GRACE_MS);
      });
      pub.connect(this.server.collector);
    }
    if (this.pubReady) this.pubOut!.post(frames);
    else this.pubWaiting.push(frames);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dealerOut.close();
    this.pubOut?.close();
    this.dealer.close();
    this.sub?.close();
    this.pub?.close();
  }
}
