/**
 * twinstar's packed batch: many kvmsgs in one frame, for its own paths (native snapshot, resume,
 * acknowledged writes, replication, the packed map's records). One socket call then moves hundreds
 * of updates, and a record can be copied from a frame to a page and back without being decoded.
 *
 *   entry := u16 keyLen | key | f64 sequence | u8 uuidLen | uuid | u16 propsLen | props
 *            | f64 expiresAt (ms since epoch, 0 = never) | u32 bodyLen | body
 *
 * Pure, like chp.ts, whose errors (`KvMsgError`) and checks (`decodeKey`, `decodeProperties`) the
 * readers here share.
 */
import {
  decodeKey,
  decodeProperties,
  DEFAULT_LIMITS,
  EMPTY,
  isCounter,
  KvMsgError,
  type KvMsg,
  type Limits,
} from './chp.js';

export interface PackedEntry extends KvMsg {
  /** absolute deadline in ms since the Unix epoch; 0 means no expiry */
  readonly expiresAt: number;
}

/** Bytes of a packed entry besides its key, uuid, properties and body. */
export const FIXED_BYTES = 2 + 8 + 1 + 2 + 8 + 4;

/** `size`: the entries' packed size when the caller has summed it already (sizes.ts packedSize). */
export function packBatch(entries: readonly PackedEntry[], size = packedBytes(entries)): Buffer {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const e of entries) at = packEntry(out, e, at);
  return out;
}

function packedBytes(entries: readonly PackedEntry[]): number {
  let size = 0;
  for (const e of entries)
    size +=
      FIXED_BYTES +
      Buffer.byteLength(e.key) +
      e.uuid.length +
      Buffer.byteLength(e.properties) +
      e.body.length;
  return size;
}

/**
 * Writes one entry in the packed form at `at` and returns the offset after it; `out` must have its
 * `packedSize` from there. The one writer of the format (packBatch, the replay log).
 */
export function packEntry(out: Buffer, e: PackedEntry, at: number): number {
  // A server packs a million of these for one snapshot, and every write for its passive: fields
  // are stored byte by byte, short ASCII keys and latin1 uuids too, which costs less than Buffer's
  // writers and their argument checks (4-5% of an active's JavaScript under pipelined writes).
  // What the format cannot hold throws, as Buffer's writers did; so does an `out` too small: the
  // body is stored last, with `set`, which checks its range.
  const keyLen = writeShortUtf8(out, e.key, at + 2);
  if (keyLen > 0xffff) throw new RangeError(`a key of ${keyLen} bytes does not fit a packed entry`);
  putU16(out, keyLen, at);
  at += 2 + keyLen;
  putF64(out, e.sequence, at);
  at += 8;
  const { uuid } = e;
  if (uuid.length > 0xff) throw new RangeError(`a uuid of ${uuid.length} bytes does not fit a packed entry`);
  out[at++] = uuid.length;
  for (let i = 0; i < uuid.length; i++) out[at++] = uuid.charCodeAt(i) & 0xff;
  const propsLen = e.properties.length === 0 ? 0 : out.write(e.properties, at + 2);
  if (propsLen > 0xffff) throw new RangeError(`properties of ${propsLen} bytes do not fit a packed entry`);
  putU16(out, propsLen, at);
  at += 2 + propsLen;
  putF64(out, e.expiresAt, at);
  at += 8;
  putU32(out, e.body.length, at);
  at += 4;
  out.set(e.body, at);
  return at + e.body.length;
}

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Stores (a typed array keeps the low 8 bits of each) big-endian, as the format says. */
function putU16(out: Buffer, value: number, at: number): void {
  out[at] = value >>> 8;
  out[at + 1] = value;
}

function putU32(out: Buffer, value: number, at: number): void {
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
}

function putF64(out: Buffer, value: number, at: number): void {
  F64[0] = value;
  if (!LITTLE_ENDIAN) return out.set(F64_BYTES, at);
  for (let i = 0; i < 8; i++) out[at + i] = F64_BYTES[7 - i]!;
}

/*
 * A packed record's fields, read in place from its length fields alone (nothing decoded, nothing
 * checked: for records this process packed or already checked). Each takes the offset of the field
 * before it, so a reader walks only as far as the field it needs:
 *   sequenceAt(record) -> propertiesAt(sequence) -> deadlineAt(properties) -> recordEnd(deadline)
 */

/** Where the record's f64 sequence is. */
export function sequenceAt(frame: Buffer, record: number): number {
  return record + 2 + frame.readUInt16BE(record);
}

/** Where the record's u16 properties length is, from where its sequence is. */
export function propertiesAt(frame: Buffer, sequence: number): number {
  return sequence + 9 + frame[sequence + 8]!;
}

/** Where the record's f64 deadline is (its u32 body length follows), from where its properties are. */
export function deadlineAt(frame: Buffer, properties: number): number {
  return properties + 2 + frame.readUInt16BE(properties);
}

/** The length of the record's body, from where its deadline is. */
export function bodyLengthAt(frame: Buffer, deadline: number): number {
  return frame.readUInt32BE(deadline + 8);
}

/** Where the record ends, from where its deadline is. */
export function recordEnd(frame: Buffer, deadline: number): number {
  return deadline + 12 + bodyLengthAt(frame, deadline);
}

/** Where the packed record at `at` ends. */
export function packedEntryEnd(frame: Buffer, at: number): number {
  return recordEnd(frame, deadlineAt(frame, propertiesAt(frame, sequenceAt(frame, at))));
}

/** Whether the key of the packed entry at `at` begins with these bytes (a UTF-8 prefix), read in place. */
export function packedKeyStartsWith(frame: Buffer, at: number, prefix: Uint8Array): boolean {
  const length = prefix.length;
  if (frame.readUInt16BE(at) < length) return false;
  const key = at + 2;
  for (let i = 0; i < length; i++) if (frame[key + i] !== prefix[i]) return false;
  return true;
}

/** Writes `text` as UTF-8 at `at`, returns its byte length: ASCII byte by byte, else `write`. */
function writeShortUtf8(out: Buffer, text: string, at: number): number {
  const length = text.length;
  if (length > 64) return out.write(text, at);
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) return out.write(text, at);
    out[at + i] = code;
  }
  return length;
}

/**
 * Unpacks a batch. Bodies are copied out so that one retained value does not pin the whole
 * batch buffer in memory (a copy of a small body lands in Node's shared 8 KiB pool, like any small
 * Buffer). More than `maxEntries` entries throw 'batch-too-large' as soon as the next one starts,
 * before anything more is decoded.
 */
export function unpackBatch(
  frame: Buffer,
  limits: Limits = DEFAULT_LIMITS,
  maxEntries = Infinity,
): PackedEntry[] {
  const entries: PackedEntry[] = [];
  const cursor = { at: 0 };
  while (cursor.at < frame.length) {
    if (entries.length >= maxEntries)
      throw new KvMsgError('batch-too-large', `batch holds more than ${maxEntries} entries`);
    entries.push(unpackEntry(frame, cursor, limits));
  }
  return entries;
}

/**
 * Reads the packed entry at `cursor.at` and moves the cursor past it; the one reader of the format.
 * With `limits`, it checks what it reads as decodeKvMsg does (same errors; an expiresAt that is
 * not finite reads as 0). Without, it reads back bytes this process packed itself (the replay
 * log) as they were written, unchecked. The body is copied out, as `unpackBatch` says.
 *
 * The hot loop of a snapshot's client (a million entries): fields are read in place, without a
 * view per field; a key of ASCII bytes (the usual case) is valid UTF-8 and reads the same as
 * latin1, so only a key with other bytes takes the full UTF-8 check.
 */
export function unpackEntry(frame: Buffer, cursor: { at: number }, limits?: Limits): PackedEntry {
  let at = cursor.at;
  need(frame, at, 2);
  const keyLen = frame.readUInt16BE(at);
  at += 2;
  need(frame, at, keyLen);
  const key = batchKey(frame, at, keyLen, limits);
  at += keyLen;
  need(frame, at, 9);
  const sequence = frame.readDoubleBE(at);
  if (limits !== undefined && !isCounter(sequence)) {
    throw new KvMsgError('sequence-range', `sequence ${sequence} is out of range`);
  }
  const uuidLen = frame[at + 8]!;
  at += 9;
  need(frame, at, uuidLen + 2);
  const uuid = uuidLen === 0 ? '' : frame.toString('latin1', at, at + uuidLen);
  at += uuidLen;
  const propsLen = frame.readUInt16BE(at);
  at += 2;
  need(frame, at, propsLen + 12);
  let properties = '';
  if (propsLen > 0) {
    const text = frame.subarray(at, at + propsLen);
    properties = limits === undefined ? text.toString('utf8') : decodeProperties(text, limits);
  }
  at += propsLen;
  const expiresAt = frame.readDoubleBE(at);
  const bodyLen = frame.readUInt32BE(at + 8);
  at += 12;
  need(frame, at, bodyLen);
  if (limits !== undefined && bodyLen > limits.maxValueBytes) {
    throw new KvMsgError('body-too-large', `body is ${bodyLen} bytes, limit ${limits.maxValueBytes}`);
  }
  let body = EMPTY;
  if (bodyLen > 0) {
    body = Buffer.allocUnsafe(bodyLen);
    frame.copy(body, 0, at, at + bodyLen);
  }
  cursor.at = at + bodyLen;
  const deadline = limits === undefined || Number.isFinite(expiresAt) ? expiresAt : 0;
  return { key, sequence, uuid, properties, body, expiresAt: deadline };
}

function need(frame: Buffer, at: number, n: number): void {
  if (at + n > frame.length)
    throw new KvMsgError('batch-truncated', `batch ends inside an entry at byte ${at}`);
}

/** A packed entry's key, checked as `decodeKey` checks a key frame (given limits). */
function batchKey(frame: Buffer, at: number, length: number, limits: Limits | undefined): string {
  const end = at + length;
  if (limits === undefined) return frame.toString('utf8', at, end);
  return asciiKey(frame, at, length, limits)
    ? frame.toString('latin1', at, end)
    : decodeKey(frame.subarray(at, end), limits);
}

/**
 * Whether a packed key is plain ASCII (valid UTF-8 that reads the same as latin1); one that is
 * empty or over the limit throws as `decodeKey` does. The check both readers of a key share.
 */
function asciiKey(frame: Buffer, at: number, length: number, limits: Limits): boolean {
  if (length === 0 || length > limits.maxKeyBytes) decodeKey(frame.subarray(at, at + length), limits);
  for (let i = at; i < at + length; i++) if (frame[i]! >= 0x80) return false;
  return true;
}

/**
 * Checks the packed entry at `at` as `unpackEntry` with `limits` checks it (the same errors, in the
 * same order), without decoding anything but what a check needs (a non-ASCII key, properties);
 * returns where the entry ends.
 */
export function checkEntry(frame: Buffer, at: number, limits: Limits): number {
  need(frame, at, 2);
  const keyLen = frame.readUInt16BE(at);
  at += 2;
  need(frame, at, keyLen);
  if (!asciiKey(frame, at, keyLen, limits)) decodeKey(frame.subarray(at, at + keyLen), limits);
  at += keyLen;
  need(frame, at, 9);
  const sequence = frame.readDoubleBE(at);
  if (!isCounter(sequence)) throw new KvMsgError('sequence-range', `sequence ${sequence} is out of range`);
  const uuidLen = frame[at + 8]!;
  at += 9;
  need(frame, at, uuidLen + 2);
  at += uuidLen;
  const propsLen = frame.readUInt16BE(at);
  at += 2;
  need(frame, at, propsLen + 12);
  if (propsLen > 0) decodeProperties(frame.subarray(at, at + propsLen), limits);
  at += propsLen;
  const bodyLen = frame.readUInt32BE(at + 8);
  at += 12;
  need(frame, at, bodyLen);
  if (bodyLen > limits.maxValueBytes) {
    throw new KvMsgError('body-too-large', `body is ${bodyLen} bytes, limit ${limits.maxValueBytes}`);
  }
  return at + bodyLen;
}

/**
 * Whether the checked entry at `at` reads the same unchecked as checked: the checked reader turns a
 * properties frame of a lone '\n' into '' and a deadline that is not finite into 0; the unchecked
 * one (and a copy of the record) would keep them.
 */
export function isCanonicalEntry(frame: Buffer, at: number): boolean {
  const properties = propertiesAt(frame, sequenceAt(frame, at));
  if (frame.readUInt16BE(properties) === 1 && frame[properties + 2] === 0x0a) return false;
  return Number.isFinite(frame.readDoubleBE(deadlineAt(frame, properties)));
}

/**
 * A packed batch as a client received it: checked entry by entry when it arrived, as
 * `unpackBatch(frame, limits)` checks it, so that it can be decoded later (`entries`) or its records
 * copied as they are (the client's packed replica, kv/snapshot-load.ts) without a second check. A
 * malformed batch is refused whole by `checked`, before anything uses it.
 */
export class PackedBatch {
  private constructor(
    readonly frame: Buffer,
    /** its entries */
    readonly count: number,
    /** every entry reads the same unchecked (`isCanonicalEntry`): its records can be copied as they are */
    readonly canonical: boolean,
    private readonly limits: Limits | undefined,
  ) {}

  /** The batch of these entries, packed and checked (a test's server); throws as `checked` does. */
  static of(entries: readonly PackedEntry[]): PackedBatch {
    return PackedBatch.checked(packBatch(entries));
  }

  /** A received frame, checked; throws `KvMsgError` as `unpackBatch` would. */
  static checked(frame: Buffer, limits: Limits = DEFAULT_LIMITS, maxEntries = Infinity): PackedBatch {
    let count = 0;
    let canonical = true;
    for (let at = 0; at < frame.length; count++) {
      if (count >= maxEntries)
        throw new KvMsgError('batch-too-large', `batch holds more than ${maxEntries} entries`);
      const end = checkEntry(frame, at, limits);
      if (canonical && !isCanonicalEntry(frame, at)) canonical = false;
      at = end;
    }
    return new PackedBatch(frame, count, canonical, canonical ? undefined : limits);
  }

  /** The entries, decoded: the same as `unpackBatch(frame, limits)` gave when it was checked. */
  entries(): PackedEntry[] {
    return unpackBatch(this.frame, this.limits);
  }
}
