/**
 * A PUB on Node's own TCP sockets, speaking ZMTP 3.0 (wire/zmtp.ts): the update stream's publisher
 * (port P+3, server/update-stream.ts) and, without CURVE, the peer link's (pair/peer-link.ts). Any
 * SUB, libzmq's or twinstar's own (zmtp-sub.ts), subscribes to it as it would to a libzmq XPUB.
 * Why not libzmq's: its XPUB writes each message into every matching subscriber's pipe in the
 * sending thread, then wakes its I/O thread, which writes each one out; here a message is encoded
 * once and written to each subscriber's socket from the event loop, one write call each
 * (docs/performance.md, "The update stream on Node's sockets": a fifth of the active's CPU per
 * update at 200 updates/s to 100 watchers).
 *
 * It keeps what the server relied on from the XPUB (server/sockets.ts):
 * - Prefix matching: a message goes to each subscriber holding a subscription that its first frame
 *   starts with.
 * - 'allSubs': every subscription is told (`onSubscribe`), an unsubscription only when the topic's
 *   last subscriber is gone, by a CANCEL or by disconnecting (`onUnsubscribe`).
 * - Never waiting: a subscriber whose socket buffer is full is queued up to `highWaterMark`
 *   messages more, and at most `maxQueueBytes` bytes (the publisher queue, docs/configuration.md).
 *   Past either, where a libzmq PUB drops the subscriber's messages (a subtree client cannot see
 *   that hole), it is disconnected, as NATS does with a slow consumer (its `max_pending` is a
 *   byte bound too): the client connects again and resumes from what it holds
 *   (client/follow-stream.ts), so it misses nothing. A subscriber with nothing queued takes any one
 *   message, however large.
 * - A peer that breaks the protocol, sends a frame over `maxFrameBytes`, is not a SUB or XSUB,
 *   or is not through the handshake within `handshakeMs` is disconnected, as libzmq does.
 *
 * A DEALER is not refused when the server has a request lane (server/request-lane.ts): its
 * connection is handed over to the lane once its READY came. So this end sends its own READY only
 * then: as a PUB to a SUB, as a ROUTER to a DEALER.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { zmtp } from '../wire/index.js';

/** What a DEALER's connection is handed over with, once its READY came (server/request-lane.ts). */
export interface LaneHandover {
  /** each message the peer sends from now on */
  message(frames: Buffer[]): void;
  /** its socket closed */
  gone(): void;
}

/** Where DEALERs go: the server's request lane. */
export interface DealerLane {
  /** most bytes in one frame from a DEALER */
  readonly maxFrameBytes: number;
  adopt(socket: Socket, identity: Buffer | undefined): LaneHandover;
}

export interface StreamPublisherOptions {
  /** messages queued towards one subscriber beyond its socket's buffer (high-water mark) */
  highWaterMark: number;
  /** bytes queued towards one subscriber in this process (beyond what the kernel took) */
  maxQueueBytes: number;
  /** most bytes in one frame a subscriber may send (its subscriptions); -1 for no limit */
  maxFrameBytes: number;
  /** a subscription to `topic` was read (every one, as an XPUB in 'allSubs' tells them) */
  onSubscribe(topic: Buffer): void;
  /** the last subscription to `topic` is gone */
  onUnsubscribe(topic: Buffer): void;
  /** a subscriber connected (true) or went (false) */
  onConnection(connected: boolean): void;
  /** the listener could not accept a connection (out of file descriptors) */
  onAcceptFailed(error: NodeJS.ErrnoException): void;
  /** a subscriber at this address fell too far behind and was disconnected */
  onSlowSubscriber?(remote: string): void;
  /** a connection not through the ZMTP handshake by then is closed (libzmq's handshake interval) */
  handshakeMs?: number;
  /** the clock of `heartbeat`'s `quietMs` (default: performance.now) */
  now?: () => number;
  /** where DEALERs go (none: a DEALER is refused, as any peer that is not a SUB) */
  lane?: DealerLane;
}

/** libzmq's default ZMQ_HANDSHAKE_IVL */
const HANDSHAKE_MS = 30_000;

/** One connected subscriber. */
class Peer {
  /** its subscriptions, as bytes; one entry per SUBSCRIBE (a topic twice is held twice) */
  readonly topics: Buffer[] = [];
  /** the handshake is done: messages may go to it */
  ready = false;
  /** a DEALER, handed over to the request lane */
  handover: LaneHandover | undefined;
  /** messages written since its socket's buffer filled (reset at 'drain') */
  queued = 0;
  /** when it was last sent a message other than a heartbeat (`heartbeat` may then skip it) */
  lastSentAt = -Infinity;

  constructor(readonly socket: Socket) {}

  wants(topic: Buffer): boolean {
    for (const t of this.topics) if (startsWith(topic, t)) return true;
    return false;
  }
}

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  const length = prefix.length;
  if (bytes.length < length) return false;
  for (let i = 0; i < length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** A tcp://HOST:PORT endpoint as Node's listen takes it ('*' is every IPv4 interface, as libzmq has it). */
function listenAddress(endpoint: string): { host: string; port: number } | undefined {
  const match = /^tcp:\/\/(.+):(\d+)$/.exec(endpoint);
  if (!match) return undefined;
  const host = match[1] === '*' ? '0.0.0.0' : match[1]!.replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(match[2]) };
}

export class StreamPublisher {
  private readonly peers = new Set<Peer>();
  /** subscribers per topic (latin1 of its bytes) */
  private readonly holders = new Map<string, number>();
  private server: Server | undefined;
  private closed = false;
  /** subscribers disconnected because their queue was full */
  slowDisconnects = 0;

  constructor(private readonly options: StreamPublisherOptions) {}

  /** Listens on `endpoint`; rejects as a ZeroMQ bind does (`code`, `address`: the endpoint). */
  listen(endpoint: string): Promise<void> {
    const address = listenAddress(endpoint);
    if (!address) return Promise.reject(bindFailure(endpoint, 'EINVAL', 'not a tcp://HOST:PORT endpoint'));
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise<void>((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException) =>
        reject(bindFailure(endpoint, error.code ?? 'EINVAL', error.message));
      server.once('error', failed);
      server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
        server.off('error', failed);
        server.on('error', (error: NodeJS.ErrnoException) => this.options.onAcceptFailed(error));
        resolve();
      });
    });
  }

  /** Sends one message to every subscriber whose subscription its first frame starts with. */
  post(frames: Buffer[]): void {
    this.send(frames);
  }

  /**
   * Sends a heartbeat as `post` does, but only to the subscribers sent nothing else in the last
   * `quietMs` (0: to every one). Any message proves the server alive to a client (its silence is
   * counted from the last message of any kind, docs/protocol.md), so a subscriber kept busy by
   * updates is spared one message and one wake-up per heartbeat. A heartbeat is not counted as
   * traffic: an idle subscriber gets every one.
   */
  heartbeat(frames: Buffer[], quietMs: number): void {
    this.send(frames, quietMs);
  }

  /** `quietMs` undefined: a message, stamped on each subscriber sent it; else a heartbeat. */
  private send(frames: Buffer[], quietMs?: number): void {
    const topic = frames[0];
    if (topic === undefined || this.peers.size === 0) return;
    let bytes: Buffer | undefined;
    const { highWaterMark, maxQueueBytes } = this.options;
    const now = this.options.now?.() ?? performance.now();
    for (const peer of this.peers) {
      if (!peer.ready || !peer.wants(topic)) continue;
      if (quietMs === undefined) peer.lastSentAt = now;
      else if (now - peer.lastSentAt < quietMs) continue;
      const { socket } = peer;
      bytes ??= zmtp.message(frames);
      if (socket.writableNeedDrain) {
        if (peer.queued >= highWaterMark || socket.writableLength + bytes.length > maxQueueBytes) {
          peer.ready = false; // nothing more to it: its 'close' follows
          this.slowDisconnects++;
          this.options.onSlowSubscriber?.(`${socket.remoteAddress}:${socket.remotePort}`);
          socket.destroy();
          continue;
        }
        peer.queued++;
      }
      socket.write(bytes);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server?.close();
    for (const peer of [...this.peers]) peer.socket.destroy();
  }

  private accept(socket: Socket): void {
    if (this.closed) return void socket.destroy();
    const peer = new Peer(socket);
    this.peers.add(peer);
    this.options.onConnection(true);
    const { lane } = this.options;
    const reader: zmtp.ZmtpReader = new zmtp.ZmtpReader(
      {
        greeted: () => undefined, // our READY waits for the peer's: PUB or ROUTER
        reply: (bytes) => socket.write(bytes),
        peerReady: (type, identity) => {
          if (peer.ready || peer.handover) throw new zmtp.ZmtpError('a second READY');
          if (type === 'DEALER' && lane) {
            socket.write(zmtp.ready('ROUTER'));
            this.peers.delete(peer);
            this.options.onConnection(false); // not a subscriber
            reader.copyFrames = true; // requests are kept (a value, a body)
            reader.maxFrameBytes = lane.maxFrameBytes;
            peer.handover = lane.adopt(socket, identity);
          } else if (type === 'SUB' || type === 'XSUB') {
            socket.write(zmtp.ready('PUB'));
            peer.ready = true;
          } else throw new zmtp.ZmtpError(`a ${type ?? 'nameless'} peer`);
          socket.setTimeout(0);
        },
        message: (frames) => (peer.handover ? peer.handover.message(frames) : this.onMessage(peer, frames)),
      },
      this.options.maxFrameBytes,
    );
    socket.setNoDelay(true);
    socket.setTimeout(this.options.handshakeMs ?? HANDSHAKE_MS, () => {
      if (!peer.ready && !peer.handover) socket.destroy(); // a port probe, or a peer that never greets: as libzmq
    });
    socket.on('data', (chunk) => {
      try {
        reader.feed(chunk);
      } catch {
        socket.destroy(); // a protocol error, or a frame over the limit: as libzmq, disconnect
      }
    });
    socket.on('drain', () => (peer.queued = 0));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => (peer.handover ? peer.handover.gone() : this.gone(peer)));
    socket.write(zmtp.greeting());
  }

  /**
   * A SUB sends subscriptions as messages: byte 1 (subscribe) or 0 (cancel), then the topic. As
   * libzmq's XPUB does, every frame is read so, not only a one-frame message's: an XSUB may send
   * multipart messages, and drops a cancel it holds no subscription for, even a message's last
   * frame, so that its next message is read here as the rest of that one.
   */
  private onMessage(peer: Peer, frames: Buffer[]): void {
    if (!peer.ready) return;
    for (const frame of frames) if (frame.length > 0) this.subscription(peer, frame);
  }

  private subscription(peer: Peer, body: Buffer): void {
    const topic = Buffer.from(body.subarray(1)); // the chunk it came in is reused
    if (body[0] === 1) {
      peer.topics.push(topic);
      const key = topic.toString('latin1');
      this.holders.set(key, (this.holders.get(key) ?? 0) + 1);
      this.options.onSubscribe(topic);
    } else if (body[0] === 0) {
      const at = peer.topics.findIndex((t) => t.equals(topic));
      if (at < 0) return;
      peer.topics.splice(at, 1);
      this.release(topic);
    }
  }

  private gone(peer: Peer): void {
    if (!this.peers.delete(peer)) return;
    for (const topic of peer.topics) this.release(topic);
    peer.topics.length = 0;
    this.options.onConnection(false);
  }

  private release(topic: Buffer): void {
    const key = topic.toString('latin1');
    const left = (this.holders.get(key) ?? 1) - 1;
    if (left > 0) return void this.holders.set(key, left);
    this.holders.delete(key);
    if (!this.closed) this.options.onUnsubscribe(topic);
  }
}

/** A listen failure shaped as ZeroMQ's bind errors are (server.ts bindError names the endpoint). */
function bindFailure(endpoint: string, code: string, message: string): Error {
  return Object.assign(new Error(`${message} (${endpoint})`), { code, address: endpoint });
}
