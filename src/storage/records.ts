/**
 * How LmdbStorage lays its records out, and how it checks a data file before and while reading it.
 * Pure byte work, no lmdb: every record is sealed with a CRC-32 over its key and its bytes, so a
 * flipped byte in a stored key or value is found at load instead of being served. LMDB itself has
 * no page checksums; `checkHeader` reads its meta pages with plain file reads before the file is
 * mapped, because reading a page past the end of a truncated file through the map kills the
 * process with SIGBUS (measured: lmdb 3.5.6 on Node 20).
 *
 * entry record := u32 crc | f64 sequence | f64 expiresAt | u8 uuidLen | uuid (latin1)
 *                 | u16 propsLen | properties (utf8) | body (the rest)
 * log record   := u16 keyLen | key (utf8) | entry record      (the replay window, by sequence)
 * ttl record   := u32 crc | f64 expiresAt | f64 sequence        (the keys with a TTL, by key)
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { Entry, Written } from '../kv/index.js';

/** Raised inside this module; LmdbStorage turns it into a StorageError naming the file. */
export class RecordError extends Error {
  constructor(
    readonly reason: 'corrupt' | 'truncated',
    message: string,
  ) {
    super(message);
  }
}

const CRC_BYTES = 4;
const HEAD_BYTES = 8 + 8 + 1;

function checksum(key: string, bytes: Uint8Array): number {
  return crc32(bytes, crc32(key));
}

/** `payload` with a CRC-32 of `key` and itself in front. */
export function seal(key: string, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(CRC_BYTES + payload.length);
  payload.copy(out, CRC_BYTES);
  out.writeUInt32BE(checksum(key, payload), 0);
  return out;
}

/** The payload of a sealed record, or a RecordError if it was changed since `seal`. */
export function unseal(key: string, sealed: Uint8Array | undefined, what: string): Buffer {
  if (sealed === undefined || sealed.length < CRC_BYTES) {
    throw new RecordError('corrupt', `${what} ${JSON.stringify(key)} is cut short`);
  }
  const buf = Buffer.isBuffer(sealed) ? sealed : Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
  const payload = buf.subarray(CRC_BYTES);
  if (buf.readUInt32BE(0) !== checksum(key, payload)) {
    throw new RecordError('corrupt', `${what} ${JSON.stringify(key)} fails its checksum`);
  }
  return payload;
}

export function encodeEntry(entry: Entry): Buffer {
  const props = Buffer.from(entry.properties);
  const payload = Buffer.allocUnsafe(HEAD_BYTES + entry.uuid.length + 2 + props.length + entry.body.length);
  let at = payload.writeDoubleBE(entry.sequence, 0);
  at = payload.writeDoubleBE(entry.expiresAt, at);
  at = payload.writeUInt8(entry.uuid.length, at);
  at += payload.write(entry.uuid, at, 'latin1');
  at = payload.writeUInt16BE(props.length, at);
  at += props.copy(payload, at);
  entry.body.copy(payload, at);
  return seal(entry.key, payload);
}

/** Throws a RecordError unless the entry record is intact; returns its payload. */
export function checkEntry(key: string, sealed: Uint8Array | undefined): Buffer {
  const p = unseal(key, sealed, 'entry');
  const cut = () => new RecordError('corrupt', `entry ${JSON.stringify(key)} has a bad layout`);
  if (p.length < HEAD_BYTES) throw cut();
  const uuidEnd = HEAD_BYTES + p.readUInt8(16);
  if (uuidEnd + 2 > p.length || uuidEnd + 2 + p.readUInt16BE(uuidEnd) > p.length) throw cut();
  return p;
}

/** An entry from its sealed record; the body is copied out of lmdb's reused read buffer. */
export function decodeEntry(key: string, sealed: Uint8Array | undefined): Entry {
  const p = checkEntry(key, sealed);
  const sequence = p.readDoubleBE(0);
  const expiresAt = p.readDoubleBE(8);
  const uuidLen = p.readUInt8(16);
  let at = HEAD_BYTES;
  const uuid = p.toString('latin1', at, at + uuidLen);
  at += uuidLen;
  const propsLen = p.readUInt16BE(at);
  at += 2;
  const properties = p.toString('utf8', at, at + propsLen);
  at += propsLen;
  const body = Buffer.allocUnsafe(p.length - at); // a copy: lmdb reuses the buffer it read into
  p.copy(body, 0, at);
  return { key, sequence, uuid, properties, body, expiresAt };
}

/** The uuid and sequence of an entry record, checked as `decodeEntry` checks it; the body stays. */
export function decodeWrite(key: string, sealed: Uint8Array | undefined): Written {
  const p = checkEntry(key, sealed);
  return {
    uuid: p.toString('latin1', HEAD_BYTES, HEAD_BYTES + p.readUInt8(16)),
    sequence: p.readDoubleBE(0),
  };
}

/** A key's TTL deadline and the sequence of the entry it belongs to (the TTL index). */
export function encodeTtl(key: string, expiresAt: number, sequence: number): Buffer {
  const payload = Buffer.allocUnsafe(16);
  payload.writeDoubleBE(expiresAt, 0);
  payload.writeDoubleBE(sequence, 8);
  return seal(key, payload);
}

export function decodeTtl(key: string, sealed: Uint8Array | undefined): { at: number; sequence: number } {
  const p = unseal(key, sealed, 'ttl');
  if (p.length !== 16) throw new RecordError('corrupt', `ttl ${JSON.stringify(key)} has a bad layout`);
  return { at: p.readDoubleBE(0), sequence: p.readDoubleBE(8) };
}

/** A change of the replay window: its key, then its entry record (whose CRC covers the key). */
export function encodeLogRecord(key: string, entryRecord: Buffer): Buffer {
  const keyBytes = Buffer.from(key);
  const out = Buffer.allocUnsafe(2 + keyBytes.length + entryRecord.length);
  out.writeUInt16BE(keyBytes.length, 0);
  keyBytes.copy(out, 2);
  entryRecord.copy(out, 2 + keyBytes.length);
  return out;
}

export function decodeLogRecord(sequence: number, raw: Uint8Array | undefined): Entry {
  const buf = raw === undefined ? Buffer.alloc(0) : Buffer.from(raw.buffer, raw.byteOffset, raw.length);
  const keyLength = buf.length >= 2 ? buf.readUInt16BE(0) : Infinity;
  if (2 + keyLength > buf.length) throw new RecordError('corrupt', `log record ${sequence} is cut short`);
  const key = buf.toString('utf8', 2, 2 + keyLength);
  const entry = decodeEntry(key, buf.subarray(2 + keyLength));
  if (entry.sequence !== sequence) {
    throw new RecordError('corrupt', `log record ${sequence} holds sequence ${entry.sequence}`);
  }
  return entry;
}

/** A JSON value sealed under its key (the meta records: format, pair, sequence, timeline). */
export function encodeJson(key: string, value: unknown): Buffer {
  return seal(key, Buffer.from(JSON.stringify(value)));
}

export function decodeJson(key: string, sealed: Uint8Array | undefined): unknown {
  const payload = unseal(key, sealed, 'meta record');
  try {
    return JSON.parse(payload.toString('utf8')) as unknown;
  } catch {
    throw new RecordError('corrupt', `meta record ${JSON.stringify(key)} is not JSON`);
  }
}

// LMDB's meta pages (pages 0 and 1) as lmdb-js 3.x writes them: a 24-byte page header, then the
// magic, the format version, the page size (in the free-space tree's pad field), the last page
// used and the transaction id. Checked against files written by lmdb 3.5.6.
const MAGIC = 0xbeefc0de;
const PAGE_HEADER = 24;
const META = { magic: 0, version: 4, pageSize: 24, lastPage: 120, txnId: 128 } as const;
const META_BYTES = 136;

interface Meta {
  pageSize: number;
  lastPage: number;
  txnId: number;
}

function readMeta(fd: number, offset: number): Meta | undefined {
  const buf = Buffer.alloc(PAGE_HEADER + META_BYTES);
  if (readSync(fd, buf, 0, buf.length, offset) < buf.length) return undefined;
  const m = buf.subarray(PAGE_HEADER);
  if (m.readUInt32LE(META.magic) !== MAGIC) return undefined;
  return {
    pageSize: m.readUInt32LE(META.pageSize),
    lastPage: Number(m.readBigUInt64LE(META.lastPage)),
    txnId: Number(m.readBigUInt64LE(META.txnId)),
  };
}

/**
 * Checks an existing LMDB data file before it is mapped: it starts with a valid meta page, and it
 * is long enough to hold every page its newest meta page says is in use.
 */
export function checkHeader(file: string, size: number): void {
  if (size < PAGE_HEADER + META_BYTES) {
    throw new RecordError('truncated', `the file is only ${size} bytes, shorter than its header`);
  }
  const fd = openSync(file, 'r');
  try {
    const first = readMeta(fd, 0);
    if (first === undefined) {
      throw new RecordError(
        'corrupt',
        'no LMDB meta page at the start (not a data file, or its header is damaged)',
      );
    }
    const { pageSize } = first;
    if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
      throw new RecordError('corrupt', `the meta page gives an impossible page size ${pageSize}`);
    }
    const second = readMeta(fd, pageSize);
    const newest = second !== undefined && second.txnId > first.txnId ? second : first;
    const need = (newest.lastPage + 1) * pageSize;
    if (size < need) {
      throw new RecordError('truncated', `the file is ${size} bytes but its last page ends at byte ${need}`);
    }
  } finally {
    closeSync(fd);
  }
}
