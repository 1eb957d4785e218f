/**
 * ZMTP 3.0 (RFC 23, rfc.zeromq.org/spec/23) with the NULL mechanism, for the two ends of the
 * update stream and of the request lane that shares its port, as pure logic: the bytes a SUB, a
 * PUB, a DEALER or a ROUTER sends (greeting, READY, subscriptions, framed messages) and a reader
 * that turns a peer's bytes into messages, chunk by chunk, in whatever pieces TCP delivers them.
 * No sockets: zmq/zmtp-sub.ts, zmq/stream-publisher.ts, client/zmtp-dealer.ts and
 * server/request-lane.ts carry the bytes.
 *
 * Why twinstar speaks it itself (issue 18): a zeromq.js SUB costs, per message, a wake-up of the
 * libzmq I/O thread, a signal to the socket's mailbox, a poll started and stopped on the event
 * loop, a native call, a promise and one ArrayBuffer per frame: about 19 ms of CPU per 1,000
 * deliveries for 100 subscribers in one process at 200 messages/s, against 8 ms for this reader,
 * which parses every message of a TCP read in one call. On the publishing side, libzmq writes
 * each message into every subscriber's pipe and wakes its I/O thread to write each one out;
 * writing the encoded bytes to each subscriber's socket straight from the event loop costs less
 * (docs/performance.md, "The update stream on Node's sockets").
 */

export const FLAG_MORE = 0x01;
export const FLAG_LONG = 0x02;
export const FLAG_COMMAND = 0x04;
export const GREETING_BYTES = 64;

/** The peer broke the protocol, or sent a frame over the size limit: the connection must end. */
export class ZmtpError extends Error {}

/** Our greeting: signature, version 3.0, NULL mechanism, as-server 0. */
export function greeting(): Buffer {
  const g = Buffer.alloc(GREETING_BYTES);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3;
  g[11] = 0; // 3.0: a subscription is a message whose first byte is 1, understood by every 3.x peer
  g.write('NULL', 12, 'latin1');
  return g;
}

/** A frame with its header: flags, then the size in one byte or (FLAG_LONG) eight. */
export function frame(flags: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(headerBytes(body.length) + body.length);
  out.set(body, writeHeader(out, 0, flags, body.length));
  return out;
}

function headerBytes(size: number): number {
  return size <= 255 ? 2 : 9;
}

/** Writes a frame header at `at`; returns where the body starts. */
function writeHeader(out: Buffer, at: number, flags: number, size: number): number {
  if (size <= 255) {
    out[at] = flags;
    out[at + 1] = size;
    return at + 2;
  }
  out[at] = flags | FLAG_LONG;
  out.writeUInt32BE(Math.floor(size / 0x1_0000_0000), at + 1);
  out.writeUInt32BE(size >>> 0, at + 5);
  return at + 9;
}

export type SocketType = 'SUB' | 'PUB' | 'DEALER' | 'ROUTER';

/**
 * The NULL mechanism's READY command saying which Socket-Type this end is, and (a DEALER's) the
 * Identity a ROUTER is to know it by.
 */
export function ready(socketType: SocketType, identity?: Buffer): Buffer {
  const parts = [
    Buffer.from([5]),
    Buffer.from('READY', 'latin1'),
    property('Socket-Type', Buffer.from(socketType)),
  ];
  if (identity !== undefined) parts.push(property('Identity', identity));
  return frame(FLAG_COMMAND, Buffer.concat(parts));
}

/** One metadata property: name length, name, value length (4 bytes), value. */
function property(name: string, value: Buffer): Buffer {
  const head = Buffer.alloc(1 + name.length + 4);
  head[0] = name.length;
  head.write(name, 1, 'latin1');
  head.writeUInt32BE(value.length, 1 + name.length);
  return Buffer.concat([head, value]);
}

/** A ZMTP 3.0 subscription: a one-frame message, byte 1 then the prefix. */
export function subscription(prefix: string): Buffer {
  return frame(0, Buffer.concat([Buffer.from([1]), Buffer.from(prefix)]));
}

/**
 * One message as its frames go on the wire, headers included, in one buffer: encoded once and
 * written to every subscriber it goes to. `from`: the first frame to send (a ROUTER's reply
 * starts with the peer's routing id, which is not sent).
 */
export function message(frames: readonly Buffer[], from = 0): Buffer {
  let size = 0;
  for (let i = from; i < frames.length; i++) size += headerBytes(frames[i]!.length) + frames[i]!.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = from; i < frames.length; i++) {
    const body = frames[i]!;
    at = writeHeader(out, at, i < frames.length - 1 ? FLAG_MORE : 0, body.length);
    out.set(body, at);
    at += body.length;
  }
  return out;
}

/** Frames at least this large are not copied by `messageParts`: written as they are. */
export const UNCOPIED_FRAME_BYTES = 16 * 1024;

/**
 * One message as `message(frames, from)` encodes it, in pieces to write one after the other:
 * headers and small frames joined, and each frame of UNCOPIED_FRAME_BYTES or more a piece of its
 * own, not copied (a snapshot chunk is written as it is).
 */
export function messageParts(frames: readonly Buffer[], from = 0): Buffer[] {
  const parts: Buffer[] = [];
  const last = frames.length - 1;
  let joined = 0;
  for (let i = from; i <= last; i++) {
    const size = frames[i]!.length;
    joined += headerBytes(size) + (size < UNCOPIED_FRAME_BYTES ? size : 0);
  }
  const out = Buffer.allocUnsafe(joined);
  let at = 0;
  let pieceStart = 0;
  for (let i = from; i <= last; i++) {
    const body = frames[i]!;
    at = writeHeader(out, at, i < last ? FLAG_MORE : 0, body.length);
    if (body.length < UNCOPIED_FRAME_BYTES) {
      out.set(body, at);
      at += body.length;
      continue;
    }
    parts.push(out.subarray(pieceStart, at), body);
    pieceStart = at;
  }
  if (at > pieceStart) parts.push(out.subarray(pieceStart, at));
  return parts;
}

/** A PONG answering a PING command's context (ZMTP 3.1 heartbeats, should a peer send them). */
function pong(ping: Buffer): Buffer {
  // PING body: name length 4, "PING", TTL (2 bytes), context
  return frame(
    FLAG_COMMAND,
    Buffer.concat([Buffer.from([4]), Buffer.from('PONG', 'latin1'), ping.subarray(7)]),
  );
}

/** Frames of at least this size are copied out of the TCP chunk, so they never pin it in memory. */
const COPY_FROM = 4096;

export interface ZmtpReaderHandlers {
  /** a complete message; its frames are views of the chunk (large ones copies): use them now */
  message(frames: Buffer[]): void;
  /** the peer's greeting has come: time to send READY and the subscriptions */
  greeted(): void;
  /** bytes to send back (a PONG) */
  reply(bytes: Buffer): void;
  /**
   * the peer's READY came, saying its Socket-Type (undefined: it did not say) and, if it gave one,
   * its Identity (a copy)
   */
  peerReady?(socketType: string | undefined, identity: Buffer | undefined): void;
}

export class ZmtpReader {
  /** bytes of an unfinished frame (or greeting), kept as they came: joined once there are enough */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** how many pending bytes the unfinished frame needs (0: unknown yet, join at every chunk) */
  private need = 0;
  private greeted = false;
  private frames: Buffer[] = [];

  /**
   * `maxFrameBytes`: most bytes in one frame, -1 for no limit (libzmq's ZMQ_MAXMSGSIZE).
   * `copyFrames`: every frame handed over is a copy, which may be kept (a reply's value, a
   * request's body), rather than a view of the chunk. Both may change once the peer's READY said
   * what it is.
   */
  constructor(
    private readonly handlers: ZmtpReaderHandlers,
    public maxFrameBytes = -1,
    public copyFrames = false,
  ) {}

  /**
   * Takes the next bytes of the stream; throws ZmtpError when the connection must end. The chunk
   * may be a buffer the caller reuses for its next read (zmtp-sub.ts reads into one buffer shared
   * by every subscriber of the process): nothing of it is kept past this call without a copy.
   */
  feed(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingBytes > 0) {
      // A large frame comes in many TCP chunks: they are joined once, when it is complete, not
      // again at every chunk (which would copy a 16 MB frame's bytes about 250 times).
      this.pending.push(Buffer.from(chunk));
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.need) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      this.need = 0;
    }
    let at = 0;
    if (!this.greeted) {
      if (buf.length < GREETING_BYTES) {
        checkSignature(buf);
        this.keep(buf, 0);
        return;
      }
      checkGreeting(buf);
      this.greeted = true;
      at = GREETING_BYTES;
      this.handlers.greeted();
    }
    const end = buf.length;
    let need = 0;
    while (at < end) {
      const flags = buf[at]!;
      if ((flags & ~(FLAG_MORE | FLAG_LONG | FLAG_COMMAND)) !== 0)
        throw new ZmtpError(`reserved frame flags 0x${flags.toString(16)}`);
      let size: number;
      let header: number;
      if ((flags & FLAG_LONG) !== 0) {
        if (at + 9 > end) break;
        const high = buf.readUInt32BE(at + 1);
        if (high > 0x1f_ffff) throw new ZmtpError('frame larger than 2^53 bytes');
        size = high * 0x1_0000_0000 + buf.readUInt32BE(at + 5);
        header = 9;
      } else {
        if (at + 2 > end) break;
        size = buf[at + 1]!;
        header = 2;
      }
      if (this.maxFrameBytes >= 0 && size > this.maxFrameBytes)
        throw new ZmtpError(`frame of ${size} bytes, limit ${this.maxFrameBytes}`);
      if (at + header + size > end) {
        need = header + size;
        break;
      }
      const start = at + header;
      at = start + size;
      if ((flags & FLAG_COMMAND) !== 0) {
        this.command(buf.subarray(start, at));
        continue;
      }
      const view = buf.subarray(start, at);
      const body = this.copyFrames || size >= COPY_FROM ? Buffer.from(view) : view;
      this.frames.push(body);
      if ((flags & FLAG_MORE) !== 0) continue;
      const frames = this.frames;
      this.frames = [];
      this.handlers.message(frames);
    }
    // The frames of an unfinished message and a partial frame are kept as copies.
    if (!this.copyFrames)
      for (let i = 0; i < this.frames.length; i++) this.frames[i] = Buffer.from(this.frames[i]!);
    if (at < end) this.keep(buf.subarray(at), need);
  }

  /** Keeps the start of an unfinished frame (a copy), which needs `need` bytes in all (0: unknown). */
  private keep(bytes: Buffer, need: number): void {
    this.pending = [Buffer.from(bytes)];
    this.pendingBytes = bytes.length;
    this.need = need;
  }

  private command(body: Buffer): void {
    const nameLength = body[0];
    if (nameLength === undefined || 1 + nameLength > body.length) throw new ZmtpError('malformed command');
    const name = body.toString('latin1', 1, 1 + nameLength);
    if (name === 'PING' && body.length >= 7) this.handlers.reply(pong(body));
    else if (name === 'ERROR') throw new ZmtpError(`peer says ERROR`);
    else if (name === 'READY') {
      const properties = readyProperties(body, 1 + nameLength);
      this.handlers.peerReady?.(
        properties.get('socket-type')?.toString('latin1'),
        properties.get('identity'),
      );
    }
    // anything else: ignored
  }
}

function checkSignature(buf: Buffer): void {
  if (buf.length > 0 && buf[0] !== 0xff) throw new ZmtpError('not a ZMTP peer');
  if (buf.length > 9 && buf[9] !== 0x7f) throw new ZmtpError('not a ZMTP peer');
}

function checkGreeting(buf: Buffer): void {
  checkSignature(buf);
  if (buf[10]! < 3) throw new ZmtpError(`ZMTP ${buf[10]}.x peer: 3.0 or later needed`);
  const mechanism = buf.toString('latin1', 12, 32).replace(/\0+$/, '');
  if (mechanism !== 'NULL') throw new ZmtpError(`peer wants the ${mechanism} mechanism`);
}

/** A READY command's metadata, which starts at `at`: each property's value (a copy), by lower-case name. */
function readyProperties(body: Buffer, at: number): Map<string, Buffer> {
  const properties = new Map<string, Buffer>();
  while (at < body.length) {
    const nameLength = body[at]!;
    const valueAt = at + 1 + nameLength + 4;
    if (valueAt > body.length) throw new ZmtpError('malformed READY');
    const name = body.toString('latin1', at + 1, at + 1 + nameLength);
    const end = valueAt + body.readUInt32BE(valueAt - 4);
    if (end > body.length) throw new ZmtpError('malformed READY');
    properties.set(name.toLowerCase(), Buffer.from(body.subarray(valueAt, end)));
    at = end;
  }
  return properties;
}
