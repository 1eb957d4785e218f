/**
 * A SUB over a plain Node TCP socket, speaking ZMTP 3.0 (wire/zmtp.ts): what the client follows
 * updates with when it is not using CURVE (client/follow-stream.ts), and what a node follows its
 * peer with (pair/peer-link.ts). It behaves as the libzmq SUB it replaces did: it connects, and
 * reconnects every 100 ms (libzmq's default interval) for as long as it is open, sending its
 * subscriptions again on each new connection; a frame over the size limit or a protocol error
 * ends the connection, and it reconnects. The host name is resolved by Node, asynchronously, at
 * each connect.
 *
 * Unlike a libzmq SUB it has no queue of its own: messages are handled as their TCP chunk is
 * read. While the event loop is busy, the kernel's socket buffers and then the server's queue for
 * this subscriber (its publisher high-water mark) hold what comes; past that the server
 * disconnects it, and the client resumes on the new connection (`onReconnect`).
 *
 * Two options serve the peer link: `copyFrames` (its messages are kept: a replicated value) and
 * `budget` (a snapshot crossing it must not hold the event loop: turn-budget.ts).
 */
import type { Socket } from 'node:net';
import { zmtp } from '../wire/index.js';
import type { TurnBudget } from './turn-budget.js';
import { tcpAddress, zmtpConnect, type TcpAddress } from './zmtp-connect.js';

const RECONNECT_MS = 100;

export interface ZmtpSubOptions {
  /** every frame handed over is a copy, which may be kept (else a view of a shared buffer) */
  copyFrames?: boolean;
  /** messages are handled within this budget per event-loop turn */
  budget?: TurnBudget;
}

/**
 * Every subscriber of the process reads into this one buffer (`onread`): no Buffer, no ArrayBuffer
 * and no stream event per TCP read. Reads run one at a time on the event loop, and the reader
 * copies whatever it keeps (wire/zmtp.ts), so sharing it is safe.
 */
let readBuffer: Buffer | undefined;
const sharedReadBuffer = (): Buffer => (readBuffer ??= Buffer.allocUnsafe(64 * 1024));

export class ZmtpSub {
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** a connection was made before: the next one is a reconnection */
  private connectedBefore = false;
  private readonly address: TcpAddress;

  constructor(
    /** tcp://HOST:PORT (a bracketed IPv6 host too) */
    endpoint: string,
    private readonly prefixes: readonly string[],
    private readonly maxFrameBytes: number,
    /** each message; must not throw (the transport guards it) */
    private readonly onMessage: (frames: Buffer[]) => void,
    /** a connection ended with a protocol error (logged by the caller, then reconnected) */
    private readonly onError: (error: Error) => void,
    /**
     * a connection after the first is up: what the server published while there was none is
     * lost to this subscriber (as it is when the server disconnects one whose queue was full)
     */
    private readonly onReconnect: () => void = () => undefined,
    private readonly options: ZmtpSubOptions = {},
  ) {
    this.address = tcpAddress(endpoint);
    this.open();
  }

  private open(): void {
    if (this.closed) return;
    const socket = zmtpConnect(
      this.address,
      sharedReadBuffer,
      (chunk) => {
        if (this.socket === socket) reader.feed(chunk);
      },
      (error) => {
        if (!this.closed) this.onError(error);
      },
    );
    this.socket = socket;
    const reader = new zmtp.ZmtpReader(
      {
        greeted: () =>
          socket.write(Buffer.concat([zmtp.ready('SUB'), ...this.prefixes.map(zmtp.subscription)])),
        reply: (bytes) => socket.write(bytes),
        message: (frames) => {
          if (this.socket !== socket) return;
          this.onMessage(frames);
          this.options.budget?.charge(socket);
        },
      },
      this.maxFrameBytes,
      this.options.copyFrames,
    );
    socket.on('connect', () => {
      if (this.connectedBefore) this.onReconnect();
      this.connectedBefore = true;
    });
    socket.on('close', () => {
      if (this.socket !== socket || this.closed) return;
      this.socket = undefined;
      this.timer = setTimeout(() => this.open(), RECONNECT_MS);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = undefined;
  }
}
