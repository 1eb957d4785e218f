/**
 * The backup file of `twinstar snapshot save` (issue 15, "backups like etcdctl"): a pair's map at
 * one sequence, in a small self-describing format that is versioned on its own, apart from the
 * wire (a backup must stay readable when the protocol moves on). Pure byte work, no I/O.
 *
 *   file    := magic (8) | u16 version | u64 fileBytes | f64 sequence | f64 savedAt (ms since
 *              the Unix epoch) | u32 entryCount | u16 termLen | term (utf8) | entry*
 *              | sha256 (32 bytes, of everything before it)
 *   entry   := u16 keyLen | key (utf8) | f64 sequence | u8 uuidLen | uuid (latin1)
 *              | u16 propsLen | properties (utf8) | f64 expiresAt (ms, 0 = never)
 *              | u32 bodyLen | body
 *
 * Big-endian throughout. The magic starts with a byte above 0x7f and holds CR LF (as PNG's does),
 * so that a transfer that strips the high bit or rewrites line ends is found at once. The file's
 * length is in the header, so a file cut short is told apart from one whose bytes were changed.
 */
import { createHash } from 'node:crypto';
import type { Entry } from '../kv/index.js';
import { ttlSeconds } from '../wire/index.js';

export const SNAPSHOT_MAGIC = Buffer.from([0x89, 0x54, 0x53, 0x4e, 0x41, 0x50, 0x0d, 0x0a]); // \x89TSNAP\r\n
/** Bumped whenever the layout changes; a file of another version is refused, never guessed at. */
export const SNAPSHOT_VERSION = 1;

const HEADER_FIXED = 8 + 2 + 8 + 8 + 8 + 4 + 2;
const HASH_BYTES = 32;
const ENTRY_FIXED = 2 + 8 + 1 + 2 + 8 + 4;

export interface Snapshot {
  /** the sequence the map is at: every entry's sequence is at most this */
  readonly sequence: number;
  /** the term of the history it was taken from ('' if unknown) */
  readonly term: string;
  /** when it was saved (ms since the Unix epoch) */
  readonly savedAt: number;
  /** live entries only (a non-empty body), each key once */
  readonly entries: readonly Entry[];
}

export interface SnapshotInfo {
  readonly version: number;
  readonly sequence: number;
  readonly term: string;
  readonly savedAt: number;
  readonly keys: number;
  readonly bytes: number;
  /** the SHA-256 the file carries (hex), checked */
  readonly hash: string;
}

/** What is wrong with a file, in words for one line after its name. */
export class SnapshotFileError extends Error {
  constructor(
    readonly reason: 'foreign' | 'version' | 'truncated' | 'corrupt',
    message: string,
  ) {
    super(message);
  }
}

/** The file's bytes, in pieces (the entries are not copied into one buffer here). */
export function encodeSnapshot(snapshot: Snapshot): Buffer[] {
  const term = Buffer.from(snapshot.term);
  if (term.length > 0xffff) throw new RangeError('a term of more than 65535 bytes');
  const pieces: Buffer[] = [];
  let total = HEADER_FIXED + term.length;
  for (const e of snapshot.entries) {
    const piece = encodeEntry(e);
    total += piece.length;
    pieces.push(piece);
  }
  total += HASH_BYTES;
  const header = Buffer.alloc(HEADER_FIXED + term.length);
  let at = SNAPSHOT_MAGIC.copy(header, 0);
  at = header.writeUInt16BE(SNAPSHOT_VERSION, at);
  at = header.writeBigUInt64BE(BigInt(total), at);
  at = header.writeDoubleBE(snapshot.sequence, at);
  at = header.writeDoubleBE(snapshot.savedAt, at);
  at = header.writeUInt32BE(snapshot.entries.length, at);
  at = header.writeUInt16BE(term.length, at);
  term.copy(header, at);
  const hash = createHash('sha256').update(header);
  for (const piece of pieces) hash.update(piece);
  return [header, ...pieces, hash.digest()];
}

function encodeEntry(e: Entry): Buffer {
  const key = Buffer.from(e.key);
  const props = Buffer.from(e.properties);
  if (key.length === 0 || key.length > 0xffff) throw new RangeError(`a key of ${key.length} bytes`);
  if (props.length > 0xffff) throw new RangeError(`properties of ${props.length} bytes under ${e.key}`);
  if (e.uuid.length > 0xff) throw new RangeError(`a uuid of ${e.uuid.length} bytes under ${e.key}`);
  if (e.body.length === 0) throw new RangeError(`an empty body under ${e.key} (a snapshot holds live keys)`);
  const out = Buffer.allocUnsafe(ENTRY_FIXED + key.length + e.uuid.length + props.length + e.body.length);
  let at = out.writeUInt16BE(key.length, 0);
  at += key.copy(out, at);
  at = out.writeDoubleBE(e.sequence, at);
  at = out.writeUInt8(e.uuid.length, at);
  at += out.write(e.uuid, at, 'latin1');
  at = out.writeUInt16BE(props.length, at);
  at += props.copy(out, at);
  at = out.writeDoubleBE(e.expiresAt, at);
  at = out.writeUInt32BE(e.body.length, at);
  e.body.copy(out, at);
  return out;
}

/** Reads the fields in order; running past the end is a layout error (the checksum held). */
class Reader {
  at = 0;
  constructor(private readonly buf: Buffer) {}

  take(n: number, what: string): Buffer {
    if (this.at + n > this.buf.length) throw corrupt(`${what} runs past the end of the entries`);
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  u8 = (what: string) => this.take(1, what).readUInt8(0);
  u16 = (what: string) => this.take(2, what).readUInt16BE(0);
  u32 = (what: string) => this.take(4, what).readUInt32BE(0);
  f64 = (what: string) => this.take(8, what).readDoubleBE(0);
}

const corrupt = (message: string) => new SnapshotFileError('corrupt', message);

/** Checks the magic, the version, the length and the checksum: what `status` reports. */
export function inspectSnapshot(file: Buffer): SnapshotInfo {
  if (file.length < SNAPSHOT_MAGIC.length || !file.subarray(0, 8).equals(SNAPSHOT_MAGIC)) {
    const looksCut =
      file.length < SNAPSHOT_MAGIC.length && SNAPSHOT_MAGIC.subarray(0, file.length).equals(file);
    if (looksCut && file.length > 0)
      throw new SnapshotFileError('truncated', `only ${file.length} bytes, cut inside the magic`);
    throw new SnapshotFileError('foreign', 'not a twinstar snapshot (no snapshot magic at the start)');
  }
  if (file.length < 10)
    throw new SnapshotFileError('truncated', `only ${file.length} bytes, cut inside the header`);
  const version = file.readUInt16BE(8);
  if (version !== SNAPSHOT_VERSION)
    throw new SnapshotFileError(
      'version',
      `format version ${version}, this build reads version ${SNAPSHOT_VERSION}`,
    );
  if (file.length < HEADER_FIXED + HASH_BYTES)
    throw new SnapshotFileError('truncated', `only ${file.length} bytes, cut inside the header`);
  const declared = file.readBigUInt64BE(10);
  if (BigInt(file.length) < declared)
    throw new SnapshotFileError(
      'truncated',
      `${file.length} bytes of the ${declared} it should have (cut short)`,
    );
  if (BigInt(file.length) > declared)
    throw corrupt(
      `${file.length} bytes, ${BigInt(file.length) - declared} more than the ${declared} it should have`,
    );
  const body = file.subarray(0, file.length - HASH_BYTES);
  const stored = file.subarray(file.length - HASH_BYTES);
  const actual = createHash('sha256').update(body).digest();
  if (!actual.equals(stored)) throw corrupt('checksum mismatch (the file was changed or damaged)');
  const termLen = file.readUInt16BE(HEADER_FIXED - 2);
  if (HEADER_FIXED + termLen > body.length) throw corrupt('the term runs past the end of the file');
  return {
    version,
    bytes: file.length,
    sequence: file.readDoubleBE(18),
    savedAt: file.readDoubleBE(26),
    keys: file.readUInt32BE(34),
    term: file.toString('utf8', HEADER_FIXED, HEADER_FIXED + termLen),
    hash: stored.toString('hex'),
  };
}

/** The whole snapshot, checked: checksum first, then every entry's layout and value. */
export function decodeSnapshot(file: Buffer): Snapshot & { info: SnapshotInfo } {
  const info = inspectSnapshot(file);
  const { sequence } = info;
  if (!Number.isSafeInteger(sequence) || sequence < 0) throw corrupt(`a sequence of ${sequence}`);
  const headerBytes = HEADER_FIXED + Buffer.byteLength(info.term);
  const r = new Reader(file.subarray(headerBytes, file.length - HASH_BYTES));
  const entries: Entry[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < info.keys; i++) {
    const what = `entry ${i + 1}`;
    const key = r.take(r.u16(what), what).toString('utf8');
    const seq = r.f64(what);
    const uuid = r.take(r.u8(what), what).toString('latin1');
    const properties = r.take(r.u16(what), what).toString('utf8');
    const expiresAt = r.f64(what);
    const body = Buffer.from(r.take(r.u32(what), what)); // a copy: the file buffer is let go
    if (key.length === 0) throw corrupt(`${what} has an empty key`);
    if (seen.has(key)) throw corrupt(`${what} repeats the key ${JSON.stringify(key)}`);
    if (!Number.isSafeInteger(seq) || seq < 1 || seq > sequence)
      throw corrupt(`${what} (${JSON.stringify(key)}) has sequence ${seq}, outside 1..${sequence}`);
    if (!Number.isFinite(expiresAt) || expiresAt < 0)
      throw corrupt(`${what} (${JSON.stringify(key)}) has a TTL deadline of ${expiresAt}`);
    if (body.length === 0) throw corrupt(`${what} (${JSON.stringify(key)}) has an empty value`);
    seen.add(key);
    entries.push({ key, sequence: seq, uuid, properties, body, expiresAt });
  }
  if (r.at !== file.length - HASH_BYTES - headerBytes)
    throw corrupt(
      `${file.length - HASH_BYTES - headerBytes - r.at} bytes after the last of ${info.keys} entries`,
    );
  return { sequence, term: info.term, savedAt: info.savedAt, entries, info };
}

/** Entries that carry a `ttl=` property but no deadline: the client saw them only live. */
export function withoutDeadline(snapshot: Snapshot): number {
  let n = 0;
  for (const e of snapshot.entries) {
    if (e.expiresAt !== 0 || !e.properties.includes('ttl=')) continue;
    try {
      if (ttlSeconds(e.properties) > 0) n++;
    } catch {
      // a property the server would have refused: not a TTL
    }
  }
  return n;
}
