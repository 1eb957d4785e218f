/**
 * The request lane: the snapshot ROUTER's work for DEALERs that connect to the update stream's
 * port (P+3) instead of P, on Node's own TCP sockets, speaking ZMTP 3.0 as a ROUTER
 * (wire/zmtp.ts). The native client uses it when the server offers it (client/zmtp-dealer.ts);
 * plain CHP clients, and every client with CURVE, use the libzmq ROUTER on P as before.
 *
 * Why (issue 18): a request and its reply each crossed zeromq.js, which hands every message to
 * libzmq's I/O thread and back (a wake-up, a mailbox signal, a poll, a promise): 130-200 µs per
 * hop on a loaded pair against ~25 µs over a plain socket. An awaited write crosses two such
 * hops to and from the client (the request to the active, the passive's `TACK`), so this lane
 * takes most of the transport's cost out of every request (docs/performance.md, "The request
 * lane").
 *
 * It behaves as the libzmq ROUTER does for the server (sockets.ts), so the handlers cannot tell
 * the two apart:
 * - a request arrives as [routing id, ...frames]; the routing id is the DEALER's Identity from its
 *   READY (the client's relay id: the same on both nodes), or one made up when it gave none,
 *   never one libzmq would make (those are 5 bytes, these 6);
 * - a reply to a routing id no connection holds fails with EHOSTUNREACH (`mandatory`), which
 *   `RouterMux` gets by passing it on to the libzmq ROUTER, where the same id may be connected;
 * - a reply to a connection whose socket is full and that has `highWaterMark` replies queued past
 *   it fails with EAGAIN (`sendTimeout: 0`, the snapshot socket's `clientQueue`);
 * - a second connection under an id held by another takes it over, and the first is closed
 *   (`handover`);
 * - the request frames are copies, which the handlers may keep.
 */
import type { Socket } from 'node:net';
import { zmtp } from '../wire/index.js';
import { BoundedWrites, TurnBudget, type LaneHandover } from '../zmq/index.js';

export interface RequestLaneOptions {
  /** a request: [routing id, ...frames], as the libzmq ROUTER's receive loop gives it */
  onRequest(frames: Buffer[]): void;
  /** replies queued towards one connection beyond its socket's buffer */
  highWaterMark: number;
  /** most bytes in one request frame (the snapshot ROUTER's maxMessageSize), -1 for no limit */
  maxFrameBytes: number;
  /** `onRequest` threw (a bug: the connection is kept, and the request dropped) */
  onHandlerError(error: unknown): void;
}

class Connection {
  readonly writes: BoundedWrites;
  constructor(
    readonly socket: Socket,
    readonly id: Buffer,
    highWaterMark: number,
  ) {
    this.writes = new BoundedWrites(socket, highWaterMark);
  }
}

/** The ids made up for DEALERs that gave none: 0x00, 'L', then a counter (libzmq's are 0x00 + 4 bytes). */
let madeUpIds = 0;
function makeUpId(): Buffer {
  const id = Buffer.alloc(6);
  id[1] = 0x4c;
  id.writeUInt32BE(madeUpIds++ >>> 0, 2);
  return id;
}

export class RequestLane {
  private readonly byId = new Map<string, Connection>();
  /** requests are handled as their TCP chunk is read: a socket that had its turn waits (turn-budget.ts) */
  private readonly budget = new TurnBudget();

  constructor(private readonly options: RequestLaneOptions) {}

  /** most bytes in one request frame: a larger one ends its connection, as on the ROUTER */
  get maxFrameBytes(): number {
    return this.options.maxFrameBytes;
  }

  /** Connections holding an id right now. */
  get size(): number {
    return this.byId.size;
  }

  /** Takes over a DEALER's connection whose READY gave `identity` (zmq/stream-publisher.ts). */
  adopt(socket: Socket, identity: Buffer | undefined): LaneHandover {
    const id = identity !== undefined && identity.length > 0 ? identity : makeUpId();
    const key = id.toString('latin1');
    const connection = new Connection(socket, id, this.options.highWaterMark);
    const previous = this.byId.get(key);
    this.byId.set(key, connection);
    if (previous) previous.socket.destroy(); // handover: the newer connection holds the id
    return {
      message: (frames) => {
        if (this.byId.get(key) !== connection) return;
        frames.unshift(id);
        try {
          this.options.onRequest(frames);
        } catch (error) {
          this.options.onHandlerError(error);
        }
        this.budget.charge(socket);
      },
      gone: () => {
        if (this.byId.get(key) === connection) this.byId.delete(key);
      },
    };
  }

  /**
   * Sends [routing id, ...frames] if a connection holds the id: true if it did, false if none
   * holds it (the libzmq ROUTER may). Throws EAGAIN when the connection has `highWaterMark`
   * replies queued past its socket's buffer, and for a `paced` message (a stream's) when it holds
   * STREAM_BUFFER_BYTES unsent.
   */
  send(frames: Buffer[], paced = false): boolean {
    const id = frames[0];
    if (id === undefined || this.byId.size === 0) return false;
    const connection = this.byId.get(id.toString('latin1'));
    // A socket destroyed this turn is still listed until its 'close': its id is no longer held.
    if (connection === undefined || connection.socket.destroyed) return false;
    const { socket } = connection;
    // A snapshot stream would otherwise buffer its whole view here as fast as it reads it (where
    // libzmq's I/O thread kept the kernel's buffer full and no more): it waits (snapshot-streams.ts).
    if (paced && socket.writableLength >= STREAM_BUFFER_BYTES) throw full();
    // A large frame (a snapshot chunk) is written as it is, not copied behind its header.
    if (!connection.writes.write(zmtp.messageParts(frames, 1))) throw full();
    return true;
  }

  close(): void {
    for (const connection of [...this.byId.values()]) connection.socket.destroy();
    this.byId.clear();
  }
}

/** what a stream's messages may leave unsent on one connection before the next waits */
const STREAM_BUFFER_BYTES = 8 * 1024 * 1024;

function full(): Error {
  return Object.assign(new Error('Resource temporarily unavailable'), { code: 'EAGAIN' });
}

/**
 * The snapshot socket as the server sends on it: a reply goes over the request lane when a lane
 * connection holds its routing id, and to the libzmq ROUTER otherwise (where it fails with
 * EHOSTUNREACH if no one holds it there either). What `Outbox` sends through.
 */
export class RouterMux {
  constructor(
    private readonly lane: RequestLane | undefined,
    private readonly router: { send(frames: Buffer[]): Promise<void> },
  ) {}

  send(frames: Buffer[], paced = false): Promise<void> {
    try {
      if (this.lane?.send(frames, paced)) return Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.router.send(frames);
  }
}
