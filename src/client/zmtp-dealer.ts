/**
 * A DEALER to a server's request lane (server/request-lane.ts, on the update stream's port P+3)
 * over a plain Node TCP socket, speaking ZMTP 3.0 (wire/zmtp.ts). The link (transport.ts) sends
 * its requests here instead of through a zeromq.js DEALER to P when the server offers the lane:
 * each request and each reply then skips libzmq's I/O-thread hand-offs (issue 18).
 *
 * It behaves as the link's libzmq DEALER does (`immediate`, `sendTimeout: 0`): a message is sent
 * only over a connection through its handshake, and `send` says false at once otherwise, or when
 * `highWaterMark` messages wait past the socket's buffer. It connects, and reconnects every 100 ms
 * (libzmq's default interval) for as long as it is open. It names itself with `identity` in its
 * READY, as a libzmq DEALER does with its routing id. A frame over the size limit or a protocol
 * error ends the connection.
 */
import type { Socket } from 'node:net';
import { zmtp } from '../wire/index.js';
import { BoundedWrites, tcpAddress, zmtpConnect, type TcpAddress } from '../zmq/index.js';

const RECONNECT_MS = 100;
/** one read takes up to this much: a snapshot arrives in large reads, fewer of its chunks cut in two */
const READ_BUFFER_BYTES = 1024 * 1024;

/** Every DEALER of the process reads into this buffer; the reader copies each frame out of it. */
let readBuffer: Buffer | undefined;
const sharedReadBuffer = (): Buffer => (readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES));

export interface ZmtpDealerHandlers {
  /** a message from the server (its frames are copies); must not throw (the link guards it) */
  message(frames: Buffer[]): void;
  /** a connection finished its handshake: the server speaks the lane, and requests may go */
  ready(): void;
  /**
   * no handshake came of an attempt: `connected` says whether TCP connected (the peer then
   * closed, or broke the protocol, before its READY: it does not offer the lane) or not
   * (nothing listens, or the address is unreachable)
   */
  refused(connected: boolean): void;
  /** a connection through its handshake ended */
  lost(): void;
}

export class ZmtpDealer {
  private socket: Socket | undefined;
  /** `socket` is through its handshake */
  private up = false;
  /** `socket`'s high-water mark */
  private writes: BoundedWrites | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly address: TcpAddress;

  constructor(
    /** tcp://HOST:PORT (a bracketed IPv6 host too) */
    endpoint: string,
    private readonly identity: Buffer,
    private readonly maxFrameBytes: number,
    private readonly highWaterMark: number,
    private readonly handlers: ZmtpDealerHandlers,
  ) {
    this.address = tcpAddress(endpoint);
    this.open();
  }

  /** Sends one message; false if there is no connection through its handshake, or it is full. */
  send(frames: readonly Buffer[]): boolean {
    if (!this.up || this.writes === undefined) return false;
    return this.writes.write([zmtp.message(frames)]);
  }

  private open(): void {
    if (this.closed) return;
    let connected = false;
    const socket = zmtpConnect(
      this.address,
      sharedReadBuffer,
      (chunk) => {
        if (this.socket === socket) reader.feed(chunk);
      },
      () => undefined, // the connection ends: 'close' says it was refused or lost
    );
    this.socket = socket;
    this.writes = new BoundedWrites(socket, this.highWaterMark);
    const reader = new zmtp.ZmtpReader(
      {
        greeted: () => socket.write(zmtp.ready('DEALER', this.identity)),
        reply: (bytes) => socket.write(bytes),
        peerReady: (type) => {
          if (type !== 'ROUTER') throw new zmtp.ZmtpError(`a ${type ?? 'nameless'} peer`);
          if (this.socket !== socket || this.up) return;
          this.up = true;
          this.handlers.ready();
        },
        message: (frames) => {
          if (this.socket === socket && this.up) this.handlers.message(frames);
        },
      },
      this.maxFrameBytes,
      true,
    );
    socket.on('connect', () => (connected = true));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      const wasUp = this.up;
      this.socket = undefined;
      this.up = false;
      if (this.closed) return;
      this.timer = setTimeout(() => this.open(), RECONNECT_MS);
      if (wasUp) this.handlers.lost();
      else this.handlers.refused(connected);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.up = false;
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = undefined;
  }
}
