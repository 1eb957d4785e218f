/**
 * The socket side of the peer link: a PUB this node binds and a SUB connected to the other
 * node's PUB. It only moves PeerMessages; what they mean is the node's business. The node depends
 * on the narrow `PeerChannel` interface, so unit tests can drive it with a fake that drops or
 * delays messages on cue.
 *
 * Without CURVE both ends are ZMTP on Node's own sockets (zmq/stream-publisher.ts and
 * zmq/zmtp-sub.ts), which a libzmq PUB or SUB on the other node speaks with as well; with CURVE,
 * zeromq.js sockets. Why: every replicated write crosses this link before it is acknowledged, and
 * a zeromq.js hop costs 130-200 µs on a loaded pair against ~25 µs on a plain socket (issue 18,
 * docs/performance.md "The request lane and the peer link on Node's sockets").
 */
import * as zmq from 'zeromq';
import { KvMsgError, socketFrameLimits, type DecodeReason, type Limits } from '../wire/index.js';
import { Outbox, receiveLoop, retryInterrupted, StreamPublisher, TurnBudget, ZmtpSub } from '../zmq/index.js';
import {
  curveClientOptions,
  curveServerOptions,
  watchHandshakes,
  ZapHandler,
  type Guard,
} from '../security/index.js';
import { decodePeerMessage, encodePeerMessage, type PeerMessage } from '../wire/index.js';

export interface PeerChannel {
  send(msg: PeerMessage): void;
  close(): Promise<void>;
}

export interface PeerLinkOptions {
  /** tcp://host:port this node's PUB binds to */
  bind: string;
  /** tcp://host:port of the other node's PUB */
  connect: string;
  limits: Limits;
  /** the configured subtree limit (it bounds subscriptions on this node's PUB) */
  maxSubtreeBytes: number;
  /**
   * With a guard the link is CURVE on both sockets: this node's PUB admits only the peer's key
   * (ZAP), and the SUB completes a handshake only with the holder of the peer's secret key, so
   * nobody else can read the replication stream, vote as the peer or inject updates.
   */
  guard?: Guard;
  onMessage: (msg: PeerMessage) => void;
  onDropped: (reason: DecodeReason | 'bad-request', error: unknown) => void;
}

/** The two sockets of a peer link, as frames. */
interface PeerSockets {
  start(onFrames: (frames: Buffer[]) => void): Promise<void>;
  send(frames: Buffer[]): void;
  close(): void;
}

/** most messages queued towards the peer: a snapshot to the passive travels here in chunks */
const PEER_QUEUE = 1_000_000;

export class PeerLink implements PeerChannel {
  private readonly sockets: PeerSockets;
  private closed = false;

  constructor(private readonly options: PeerLinkOptions) {
    const { guard } = options;
    if (guard && guard.peerPublicKey === undefined)
      throw new Error('a secure peer link needs the peer public key');
    this.sockets = guard ? new ZmqPeerSockets(options, guard) : new NetPeerSockets(options);
  }

  start(): Promise<void> {
    return this.sockets.start((frames) => this.onFrames(frames));
  }

  send(msg: PeerMessage): void {
    if (!this.closed) this.sockets.send(encodePeerMessage(msg));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sockets.close();
  }

  private onFrames(frames: Buffer[]): void {
    let msg: PeerMessage;
    try {
      msg = decodePeerMessage(frames);
    } catch (error) {
      this.options.onDropped(error instanceof KvMsgError ? error.reason : 'bad-request', error);
      return;
    }
    this.options.onMessage(msg);
  }
}

/**
 * ZMTP on Node's sockets. The PUB disconnects a peer that falls `PEER_QUEUE` messages behind
 * (where libzmq's dropped them): either way the passive sees a gap and resumes.
 */
class NetPeerSockets implements PeerSockets {
  private readonly pub: StreamPublisher;
  private sub: ZmtpSub | undefined;
  private readonly maxFrameBytes: number;

  constructor(private readonly options: PeerLinkOptions) {
    const frames = socketFrameLimits(options.limits, options.maxSubtreeBytes);
    this.maxFrameBytes = frames.peer;
    const ignore = () => undefined;
    this.pub = new StreamPublisher({
      highWaterMark: PEER_QUEUE,
      maxQueueBytes: Number.MAX_SAFE_INTEGER,
      maxFrameBytes: frames.subscriptionsOnly,
      onSubscribe: ignore,
      onUnsubscribe: ignore,
      onConnection: ignore,
      onAcceptFailed: ignore,
    });
  }

  async start(onFrames: (frames: Buffer[]) => void): Promise<void> {
    await this.pub.listen(this.options.bind);
    const dropped = (error: Error) => this.options.onDropped('bad-request', error);
    this.sub = new ZmtpSub(this.options.connect, [''], this.maxFrameBytes, onFrames, dropped, undefined, {
      copyFrames: true,
      budget: new TurnBudget(),
    });
  }

  send(frames: Buffer[]): void {
    this.pub.post(frames);
  }

  close(): void {
    this.pub.close();
    this.sub?.close();
  }
}

/** zeromq.js sockets, for CURVE. */
class ZmqPeerSockets implements PeerSockets {
  // The peer link has a ZeroMQ context (an I/O thread) of its own. libzmq resolves a peer named by
  // host name again at every reconnect, inside the I/O thread, and a dead peer's name can take
  // 10 s to fail (Docker's DNS does). On the shared context that froze every client socket of the
  // surviving node exactly when it had to take over.
  private readonly context = new zmq.Context({ ioThreads: 1 });
  private readonly pub: zmq.Publisher;
  private readonly sub: zmq.Subscriber;
  private readonly zap: ZapHandler;
  private readonly out: Outbox;

  constructor(
    private readonly options: PeerLinkOptions,
    guard: Guard,
  ) {
    const peerKey = guard.peerPublicKey!;
    // A frame beyond the largest replication chunk the limits allow (the source splits by bytes)
    // disconnects its sender; the PUB itself only ever receives subscriptions.
    const frames = socketFrameLimits(options.limits, options.maxSubtreeBytes);
    // Deep queues: a snapshot to the passive travels here in chunks and must not be dropped.
    this.pub = new zmq.Publisher({
      context: this.context,
      linger: 0,
      sendTimeout: 0,
      sendHighWaterMark: PEER_QUEUE,
      maxMessageSize: frames.subscriptionsOnly,
      ...curveServerOptions(guard.keys, 'peer'),
    });
    this.sub = new zmq.Subscriber({
      context: this.context,
      linger: 0,
      receiveHighWaterMark: PEER_QUEUE,
      maxMessageSize: frames.peer,
      ...curveClientOptions(guard.keys, peerKey),
    });
    this.zap = new ZapHandler(this.context, (domain, key) => guard.admit(domain, key));
    watchHandshakes(this.pub, guard, 'peer');
    watchHandshakes(this.sub, guard, 'peer');
    this.out = new Outbox(this.pub, () => undefined /* a PUB drops rather than fails */);
  }

  async start(onFrames: (frames: Buffer[]) => void): Promise<void> {
    await this.zap.start();
    await this.pub.bind(this.options.bind);
    retryInterrupted(() => this.sub.connect(this.options.connect));
    this.sub.subscribe();
    void receiveLoop(this.sub, onFrames);
  }

  send(frames: Buffer[]): void {
    this.out.post(frames);
  }

  close(): void {
    this.out.close();
    this.pub.close();
    this.sub.close();
    this.zap.close();
  }
}
