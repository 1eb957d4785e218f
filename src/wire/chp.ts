/**
 * The CHP message codec (ZeroMQ RFC 12); twinstar's packed batch form is in packed.ts.
 *
 * A kvmsg is five frames: key | sequence | uuid | properties | body. This module turns frames into
 * a `KvMsg` and back, and nothing else: no sockets, no clock. Decoding never throws anything but
 * `KvMsgError`, whose `reason` is a short stable word used as a metric label.
 */
import { parseProperties } from './properties.js';
import type { PackedEntry } from './packed.js';
import { isUtf8 } from 'node:buffer';
import { TwinstarError } from '../errors.js';

export interface KvMsg {
  readonly key: string;
  readonly sequence: number;
  /** raw uuid bytes as a latin1 string: cheap to store, compare and use as a Map key */
  readonly uuid: string;
  /** raw properties text: zero or more `name=value\n` entries ('' for none) */
  readonly properties: string;
  /** an empty body means delete */
  readonly body: Buffer;
}

export const UUID_BYTES = 16;
/** Longest uuid frame accepted from a foreign client (packed batches store its length in a byte). */
export const MAX_UUID_BYTES = 255;
/**
 * Highest sequence (and epoch) accepted on the wire: far above anything a node reaches, and low
 * enough that the next one (+1) is still an exact JavaScript number.
 */
export const MAX_SEQUENCE = 2 ** 52;

/** A counter read off the wire: a whole number from 0 to MAX_SEQUENCE. */
export function isCounter(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_SEQUENCE;
}

/** Why a message was refused. These are metric label values: keep them short and stable. */
export type DecodeReason =
  | 'frame-count'
  | 'empty-key'
  | 'key-encoding'
  | 'key-too-long'
  | 'sequence-size'
  | 'sequence-range'
  | 'uuid-too-long'
  | 'properties-syntax'
  | 'properties-too-long'
  | 'body-too-large'
  | 'ttl-invalid'
  | 'ttl-out-of-range'
  | 'too-many-properties'
  | 'unknown-command'
  | 'batch-truncated'
  | 'batch-too-large'
  | 'subtree-too-long'
  | 'too-many-prefixes'
  /** a native frame holds a value its field cannot take (an unknown kind, a bad number) */
  | 'field-invalid';

export class KvMsgError extends TwinstarError {
  readonly reason: DecodeReason;
  constructor(reason: DecodeReason, detail: string) {
    super('ERR_KVMSG_MALFORMED', `${reason}: ${detail}`);
    this.reason = reason;
  }
}

export interface Limits {
  maxKeyBytes: number;
  maxValueBytes: number;
  maxPropertiesBytes: number;
  /** most `name=value` entries in one properties frame */
  maxProperties: number;
  /** shortest and longest TTL a write may ask for, in seconds (checked where writes enter) */
  minTtlSeconds: number;
  maxTtlSeconds: number;
  /**
   * Most writes, and most bytes of packed batch, in one native write (TSET). A bigger batch is
   * refused whole with TERROR 'batch-too-large'; the client splits its batches to fit. Applying a
   * batch is one synchronous step, so this bounds how long one request can hold the event loop.
   */
  maxBatchEntries: number;
  maxBatchBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxPropertiesBytes: 4096,
  maxProperties: 32,
  minTtlSeconds: 0.001,
  maxTtlSeconds: 30 * 24 * 3600,
  maxBatchEntries: 10_000,
  maxBatchBytes: 16 * 1024 * 1024,
};

export const EMPTY = Buffer.alloc(0);

export function encodeSequence(sequence: number): Buffer {
  const frame = Buffer.allocUnsafe(8);
  writeSequence(frame, sequence, 0);
  return frame;
}

/** Writes a sequence as 8 bytes, big-endian, at `offset`: two 32-bit halves, no BigInt. */
export function writeSequence(out: Buffer, sequence: number, offset: number): void {
  out.writeUInt32BE(Math.floor(sequence / 0x1_0000_0000), offset);
  out.writeUInt32BE(sequence >>> 0, offset + 4);
}

export function decodeSequence(frame: Buffer): number {
  if (frame.length !== 8)
    throw new KvMsgError('sequence-size', `sequence frame is ${frame.length} bytes, not 8`);
  // Two 32-bit halves, no BigInt (one per message on every client's receive path). The high half
  // read unsigned: a negative int64 has its top bit set, so it lands above MAX_SEQUENCE.
  const high = frame.readUInt32BE(0);
  const value = high * 0x1_0000_0000 + frame.readUInt32BE(4);
  if (high > MAX_SEQUENCE / 0x1_0000_0000 || value > MAX_SEQUENCE) {
    throw new KvMsgError('sequence-range', `sequence ${frame.readBigInt64BE()} is out of range`);
  }
  return value;
}

export function encodeKvMsg(msg: KvMsg): Buffer[] {
  return [
    Buffer.from(msg.key),
    encodeSequence(msg.sequence),
    msg.uuid.length === 0 ? EMPTY : Buffer.from(msg.uuid, 'latin1'),
    msg.properties.length === 0 ? EMPTY : Buffer.from(msg.properties),
    msg.body,
  ];
}

export function decodeKvMsg(frames: readonly Buffer[], limits: Limits = DEFAULT_LIMITS): KvMsg {
  if (frames.length !== 5) throw new KvMsgError('frame-count', `expected 5 frames, got ${frames.length}`);
  const key = decodeKey(frames[0]!, limits);
  const sequence = decodeSequence(frames[1]!);
  const properties = decodeProperties(frames[3]!, limits);
  checkBodyAndUuid(frames, limits);
  return { key, sequence, uuid: frames[2]!.toString('latin1'), properties, body: frames[4]! };
}

/**
 * A published update (KVPUB) as an entry with no deadline (a KVPUB's `ttl=` is relative: the
 * client notes it on receipt): decodeKvMsg's checks, in the same order, and one literal of the
 * shape `unpackBatch` gives entries, so the replica holds one kind of object whichever way an
 * entry came and no intermediate object is made. The client's receive path.
 *
 * A small body is copied into Node's shared Buffer pool. zeromq.js hands over every frame as its
 * own ArrayBuffer (a malloc'd copy up to 128 bytes, the message itself with a finalizer above): a
 * replica keeps a body until its key changes again, long enough to reach the old generation,
 * and freeing a million such ArrayBuffers was a large part of a watcher's GC (issue 18: 100
 * watchers at 1,000 updates/s, 16.5 -> 13.2 ms of CPU per 1,000 deliveries). A pooled copy costs
 * a memcpy; the frames die young.
 */
export function decodeKvEntry(frames: readonly Buffer[], limits: Limits = DEFAULT_LIMITS): PackedEntry {
  if (frames.length !== 5) throw new KvMsgError('frame-count', `expected 5 frames, got ${frames.length}`);
  const key = decodeKey(frames[0]!, limits);
  const sequence = decodeSequence(frames[1]!);
  const properties = decodeProperties(frames[3]!, limits);
  checkBodyAndUuid(frames, limits);
  const frame = frames[4]!;
  // Node pools allocations under half its pool size; a bigger copy would be an ArrayBuffer again.
  const body = frame.length === 0 || frame.length >= Buffer.poolSize >>> 1 ? frame : Buffer.from(frame);
  return { key, sequence, uuid: frames[2]!.toString('latin1'), properties, body, expiresAt: 0 };
}

function checkBodyAndUuid(frames: readonly Buffer[], limits: Limits): void {
  const body = frames[4]!;
  if (body.length > limits.maxValueBytes) {
    throw new KvMsgError('body-too-large', `body is ${body.length} bytes, limit ${limits.maxValueBytes}`);
  }
  // Foreign clients may send an empty or odd-sized uuid: accept it as it is, up to what a packed
  // batch can carry.
  const uuid = frames[2]!;
  if (uuid.length > MAX_UUID_BYTES) {
    throw new KvMsgError('uuid-too-long', `uuid is ${uuid.length} bytes, limit ${MAX_UUID_BYTES}`);
  }
}

/** @internal a key frame, checked (packed.ts checks packed keys the same way) */
export function decodeKey(frame: Buffer, limits: Limits): string {
  if (frame.length === 0) throw new KvMsgError('empty-key', 'key frame is empty');
  if (frame.length > limits.maxKeyBytes) {
    throw new KvMsgError('key-too-long', `key is ${frame.length} bytes, limit ${limits.maxKeyBytes}`);
  }
  if (!isUtf8(frame)) throw new KvMsgError('key-encoding', 'key is not valid UTF-8');
  return frame.toString('utf8');
}

/** @internal a properties frame, checked and normalised (packed.ts too) */
export function decodeProperties(frame: Buffer, limits: Limits): string {
  if (frame.length === 0) return '';
  if (frame.length > limits.maxPropertiesBytes) {
    throw new KvMsgError('properties-too-long', `properties are ${frame.length} bytes`);
  }
  if (!isUtf8(frame)) throw new KvMsgError('properties-syntax', 'properties are not valid UTF-8');
  const text = frame.toString('utf8');
  if (text === '\n') return '';
  // validate once at the edge; later readers can trust the text
  const count = parseProperties(text).size;
  if (count > limits.maxProperties) {
    throw new KvMsgError('too-many-properties', `${count} properties, limit ${limits.maxProperties}`);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Snapshot request (ICANHAZ?) and the fixed-key control messages.

export const ICANHAZ = 'ICANHAZ?';
export const KTHXBAI = 'KTHXBAI';
export const HUGZ = 'HUGZ';

export function encodeIcanhaz(subtree: string): Buffer[] {
  return [Buffer.from(ICANHAZ), Buffer.from(subtree)];
}

export function encodeKthxbai(sequence: number, subtree: string, properties = ''): Buffer[] {
  return encodeKvMsg({ key: KTHXBAI, sequence, uuid: '', properties, body: Buffer.from(subtree) });
}

export function encodeHugz(sequence: number, properties = ''): Buffer[] {
  return encodeKvMsg({ key: HUGZ, sequence, uuid: '', properties, body: EMPTY });
}
