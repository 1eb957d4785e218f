/**
 * The backup file format of `twinstar snapshot` (src/cli/snapshot-file.ts): what is encoded comes
 * back field for field, and every damage a file can take on disk or in transfer (a flipped byte
 * anywhere, a cut anywhere, bytes appended, another format version, another kind of file) is
 * refused with a reason, never decoded into a wrong map.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  SNAPSHOT_VERSION,
  SnapshotFileError,
  decodeSnapshot,
  encodeSnapshot,
  inspectSnapshot,
  withoutDeadline,
  type Snapshot,
} from '../../../src/cli/snapshot-file.js';
import type { Entry } from '../../../src/kv/index.js';

const uuid = (n: number) => Buffer.alloc(16, n).toString('latin1');

const ENTRIES: Entry[] = [
  { key: '/a', sequence: 3, uuid: uuid(0xfe), properties: '', body: Buffer.from('one'), expiresAt: 0 },
  {
    key: '/ttl/ü',
    sequence: 7,
    uuid: uuid(1),
    properties: 'ttl=30\nowner=x\n',
    body: Buffer.from([0, 255, 10, 13]),
    expiresAt: 1_800_000_030_000,
  },
  { key: '/chp', sequence: 9, uuid: '', properties: '', body: Buffer.alloc(300, 7), expiresAt: 0 },
];

const SNAPSHOT: Snapshot = {
  sequence: 12,
  term: 'a1b2c3d4e5f6',
  savedAt: 1_800_000_000_123,
  entries: ENTRIES,
};

const bytes = (s: Snapshot = SNAPSHOT) => Buffer.concat(encodeSnapshot(s));

function refusal(file: Buffer): SnapshotFileError {
  try {
    decodeSnapshot(file);
  } catch (error) {
    expect(error).to.be.instanceOf(SnapshotFileError);
    expect((error as Error).message, 'one line').to.not.match(/\n/);
    return error as SnapshotFileError;
  }
  throw new Error('the file was accepted');
}

/** The file with its trailing SHA-256 made right again: damage the checksum cannot see. */
function resealed(file: Buffer): Buffer {
  const body = file.subarray(0, file.length - 32);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

describe('snapshot file format', () => {
  it('gives back every field of every entry, the sequence, the term and the time', () => {
    const decoded = decodeSnapshot(bytes());
    expect(decoded.sequence).to.equal(12);
    expect(decoded.term).to.equal('a1b2c3d4e5f6');
    expect(decoded.savedAt).to.equal(1_800_000_000_123);
    expect(decoded.entries).to.deep.equal(ENTRIES);
  });

  it('status reports keys, sequence, term, size and the checksum it verified', () => {
    const file = bytes();
    const info = inspectSnapshot(file);
    const hash = createHash('sha256')
      .update(file.subarray(0, file.length - 32))
      .digest('hex');
    expect(info).to.deep.equal({
      version: SNAPSHOT_VERSION,
      sequence: 12,
      term: 'a1b2c3d4e5f6',
      savedAt: 1_800_000_000_123,
      keys: 3,
      bytes: file.length,
      hash,
    });
  });

  it('an empty map and an unknown term round-trip too', () => {
    const empty = { sequence: 0, term: '', savedAt: 5, entries: [] };
    expect(decodeSnapshot(bytes(empty))).to.deep.include(empty);
  });

  it('refuses to encode what it could not decode (a deleted key, an oversized uuid)', () => {
    const deleted = { ...ENTRIES[0]!, body: Buffer.alloc(0) };
    expect(() => encodeSnapshot({ ...SNAPSHOT, entries: [deleted] })).to.throw(RangeError, /empty body/);
    const long = { ...ENTRIES[0]!, uuid: 'x'.repeat(256) };
    expect(() => encodeSnapshot({ ...SNAPSHOT, entries: [long] })).to.throw(RangeError, /uuid/);
  });

  it('a flipped byte anywhere is refused (each offset of the file tried)', () => {
    const file = bytes();
    const reasons = new Set<string>();
    for (let at = 0; at < file.length; at++) {
      const damaged = Buffer.from(file);
      damaged[at]! ^= 0x20;
      const error = refusal(damaged);
      reasons.add(error.reason);
      if (at >= 18) expect(error.reason, `byte ${at}`).to.equal('corrupt');
    }
    // the magic, the version and the length field have their own words; the rest is the checksum
    expect([...reasons].sort()).to.deep.equal(['corrupt', 'foreign', 'truncated', 'version']);
    const flipped = Buffer.from(file);
    flipped[60]! ^= 1;
    expect(refusal(flipped).message).to.match(/checksum mismatch/);
  });

  it('a file cut short at any length is refused as truncated, never read as a smaller map', () => {
    const file = bytes();
    for (let length = 1; length < file.length; length++) {
      const error = refusal(file.subarray(0, length));
      expect(error.reason, `cut at ${length}`).to.equal('truncated');
    }
    expect(refusal(file.subarray(0, 100)).message).to.match(/100 bytes of the \d+ it should have/);
  });

  it('an empty file is not a snapshot', () => {
    expect(refusal(Buffer.alloc(0)).reason).to.equal('foreign');
  });

  it('bytes appended after the checksum are refused', () => {
    const error = refusal(Buffer.concat([bytes(), Buffer.from('x')]));
    expect(error.reason).to.equal('corrupt');
    expect(error.message).to.match(/1 more than/);
  });

  it('another format version is refused by number, before its layout is read', () => {
    const file = bytes();
    file.writeUInt16BE(SNAPSHOT_VERSION + 1, 8);
    const error = refusal(resealed(file));
    expect(error.reason).to.equal('version');
    expect(error.message).to.equal(
      `format version ${SNAPSHOT_VERSION + 1}, this build reads version ${SNAPSHOT_VERSION}`,
    );
  });

  it('another kind of file (an lmdb data file, a text file) is not a snapshot', () => {
    expect(refusal(Buffer.from('{"sequence": 12}\n')).reason).to.equal('foreign');
    expect(refusal(Buffer.alloc(8192)).message).to.match(/not a twinstar snapshot/);
  });

  it('counts the keys with a ttl whose deadline the client did not see (live updates carry none)', () => {
    const live = { ...ENTRIES[1]!, key: '/live', expiresAt: 0 };
    const odd = { ...ENTRIES[0]!, key: '/odd', properties: 'ttl=abc\n' };
    expect(withoutDeadline(SNAPSHOT)).to.equal(0);
    expect(withoutDeadline({ ...SNAPSHOT, entries: [...ENTRIES, live, odd] })).to.equal(1);
  });

  describe('damage behind a valid checksum (a bug in a writer) is still refused', () => {
    it('an entry count larger than the entries', () => {
      const file = bytes();
      file.writeUInt32BE(4, 34);
      expect(refusal(resealed(file)).message).to.match(/entry 4 runs past the end/);
    });

    it('an entry count smaller than the entries', () => {
      const file = bytes();
      file.writeUInt32BE(2, 34);
      expect(refusal(resealed(file)).message).to.match(/bytes after the last of 2 entries/);
    });

    it('an entry sequence above the snapshot sequence', () => {
      const file = bytes({ ...SNAPSHOT, sequence: 9 });
      file.writeDoubleBE(8, 18);
      expect(refusal(resealed(file)).message).to.match(/sequence 9, outside 1\.\.8/);
    });

    it('a key twice', () => {
      const twice = { ...SNAPSHOT, entries: [ENTRIES[0]!, { ...ENTRIES[0]!, sequence: 4 }] };
      expect(refusal(bytes(twice)).message).to.match(/repeats the key "\/a"/);
    });
  });
});
