/**
 * The socket side of the peer link: a PUB this node binds and a SUB connected to the other
 * node's PUB. It only moves PeerMessages; what they mean is the node's business. The node depends
 * on the narrow `PeerChannel` interface, so unit tests can drive it with a fake that drops or
 * delays messages on cue.
 */
import * as zmq from 'zeromq';
import { KvMsgError, socketFrameLimits, type DecodeReason, type Limits } from '../wire/index.js';
import { Outbox, receiveLoop, retryInterrupted } from '../zmq/index.js';
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

export class PeerLink implements PeerChannel {
  // The peer link has a ZeroMQ context (an I/O thread) of its own. libzmq resolves a peer named by
  // host name again at every reconnect, inside the I/O thread, and a dead peer's name can take
  // 10 s to fail (Docker's DNS does). On the shared context that froze every client socket of the
  // surviving node exactly when it had to take over.
  private readonly context = new zmq.Context({ ioThreads: 1 });
  private readonly pub: zmq.Publisher;
  private readonly sub: zmq.Subscriber;
  private readonly zap: ZapHandler | undefined;
  private readonly out: Outbox;
  private closed = false;

  constructor(private readonly options: PeerLinkOptions) {
    const { guard } = options;
    const peerKey = guard?.peerPublicKey;
    if (guard && peerKey === undefined) throw new Error('a secure peer link needs the peer public key');
    // A frame beyond the largest replication chunk the limits allow (the source splits by bytes)
    // disconnects its sender; the PUB itself only ever receives subscriptions.
    const frames = socketFrameLimits(options.limits, options.maxSubtreeBytes);
    // Deep queues: a snapshot to the passive travels here in chunks and must not be dropped.
    this.pub = new zmq.Publisher({
      context: this.context,
      linger: 0,
      sendTimeout: 0,
      sendHighWaterMark: 1_000_000,
      maxMessageSize: frames.subscriptionsOnly,
      ...(guard ? curveServerOptions(guard.keys, 'peer') : {}),
    });
    this.sub = new zmq.Subscriber({
      context: this.context,
      linger: 0,
      receiveHighWaterMark: 1_000_000,
      maxMessageSize: frames.peer,
      ...(guard ? curveClientOptions(guard.keys, peerKey!) : {}),
    });
    if (guard) {
      this.zap = new ZapHandler(this.context, (domain, key) => guard.admit(domain, key));
      watchHandshakes(this.pub, guard, 'peer');
      watchHandshakes(this.sub, guard, 'peer');
    }
    this.out = new Outbox(this.pub, () => undefined /* a PUB drops rather than fails */);
  }

  async start(): Promise<void> {
    await this.zap?.start();
    await this.pub.bind(this.options.bind);
    retryInterrupted(() => this.sub.connect(this.options.connect));
    this.sub.subscribe();
    void receiveLoop(this.sub, (frames) => this.onFrames(frames));
  }

  send(msg: PeerMessage): void {
    if (!this.closed) this.out.post(encodePeerMessage(msg));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.out.close();
    this.pub.close();
    this.sub.close();
    this.zap?.close();
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
