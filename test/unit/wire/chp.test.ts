/**
 * The CHP codec (src/wire/chp.ts): byte-exact vectors of every frame layout DESIGN.md fixes,
 * round trips over arbitrary messages, and one test per refusal reason.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  decodeKvMsg,
  decodeSequence,
  DEFAULT_LIMITS,
  MAX_SEQUENCE,
  encodeHugz,
  encodeIcanhaz,
  encodeKthxbai,
  encodeKvMsg,
  encodeSequence,
  KvMsgError,
  type DecodeReason,
  type KvMsg,
  type Limits,
} from '../../../src/wire/chp.js';
import {
  packBatch,
  packEntry,
  packedKeyStartsWith,
  unpackBatch,
  unpackEntry,
  type PackedEntry,
} from '../../../src/wire/packed.js';
import { parseProperties, ttlSeconds } from '../../../src/wire/properties.js';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const latin1 = (b: Buffer) => b.toString('latin1');

/** 16 known uuid bytes, including some above 0x7f to prove the latin1 mapping is byte-exact. */
const UUID_HEX = '00112233445566778899aabbccddeeff';
const UUID = latin1(hex(UUID_HEX));

function framesOk(frames: readonly Buffer[]): KvMsg {
  return decodeKvMsg(frames);
}

function reasonOf(fn: () => unknown): DecodeReason {
  try {
    fn();
  } catch (error) {
    expect(error, `threw ${String(error)}`).to.be.instanceOf(KvMsgError);
    expect((error as KvMsgError).code).to.equal('ERR_KVMSG_MALFORMED');
    return (error as KvMsgError).reason;
  }
  expect.fail('expected a KvMsgError, nothing was thrown');
}

/** A valid 5-frame message to break one frame at a time. */
function valid(): Buffer[] {
  return [Buffer.from('/k'), encodeSequence(1), hex(UUID_HEX), Buffer.from('a=b\n'), Buffer.from('v')];
}

function withFrame(index: number, frame: Buffer): Buffer[] {
  const frames = valid();
  frames[index] = frame;
  return frames;
}

const TINY: Limits = {
  ...DEFAULT_LIMITS,
  maxKeyBytes: 8,
  maxValueBytes: 4,
  maxPropertiesBytes: 8,
  maxProperties: 2,
};

describe('kvmsg codec', () => {
  describe('byte vectors', () => {
    it('encodes a KVSET as exactly five frames: key | 8-byte BE sequence | 16-byte uuid | properties | body', () => {
      const frames = encodeKvMsg({
        key: '/a/b',
        sequence: 0,
        uuid: UUID,
        properties: 'ttl=30\n',
        body: Buffer.from('hi'),
      });
      expect(frames).to.have.length(5);
      expect(frames[0]!.equals(Buffer.from([0x2f, 0x61, 0x2f, 0x62]))).to.equal(true, 'key');
      expect(frames[1]!.equals(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]))).to.equal(true, 'sequence');
      expect(frames[2]!.equals(hex('00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff'))).to.equal(
        true,
        'uuid',
      );
      expect(frames[2]!).to.have.length(16);
      expect(frames[3]!.equals(Buffer.from([0x74, 0x74, 0x6c, 0x3d, 0x33, 0x30, 0x0a]))).to.equal(
        true,
        'properties',
      );
      expect(frames[4]!.equals(Buffer.from([0x68, 0x69]))).to.equal(true, 'body');
    });

    it('decodes the KVSET vector back to the same message', () => {
      const msg = framesOk([
        Buffer.from([0x2f, 0x61, 0x2f, 0x62]),
        Buffer.alloc(8),
        hex(UUID_HEX),
        Buffer.from([0x74, 0x74, 0x6c, 0x3d, 0x33, 0x30, 0x0a]),
        Buffer.from([0x68, 0x69]),
      ]);
      expect(msg.key).to.equal('/a/b');
      expect(msg.sequence).to.equal(0);
      expect(msg.uuid).to.equal(UUID);
      expect(msg.uuid).to.have.length(16);
      expect(msg.properties).to.equal('ttl=30\n');
      expect(msg.body.toString('hex')).to.equal('6869');
    });

    it('encodes HUGZ as key HUGZ, sequence 42 big-endian and three empty frames', () => {
      const frames = encodeHugz(42);
      expect(frames.map((f) => f.toString('hex'))).to.deep.equal([
        '4855475a', // HUGZ
        '000000000000002a',
        '',
        '',
        '',
      ]);
    });

    it('encodes KTHXBAI with the server sequence and the subtree as body', () => {
      const frames = encodeKthxbai(7, '/orders/');
      expect(frames.map((f) => f.toString('hex'))).to.deep.equal([
        '4b544858424149', // KTHXBAI
        '0000000000000007',
        '',
        '',
        Buffer.from([0x2f, 0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0x2f]).toString('hex'), // /orders/
      ]);
      expect(frames[0]!.equals(Buffer.from([0x4b, 0x54, 0x48, 0x58, 0x42, 0x41, 0x49]))).to.equal(true);
    });

    it('encodes ICANHAZ? with an empty subtree as two frames, the second present and empty', () => {
      const frames = encodeIcanhaz('');
      expect(frames).to.have.length(2);
      expect(frames[0]!.equals(Buffer.from([0x49, 0x43, 0x41, 0x4e, 0x48, 0x41, 0x5a, 0x3f]))).to.equal(true);
      expect(frames[1]!).to.have.length(0);
    });

    it('encodes ICANHAZ? with a subtree as its UTF-8 bytes', () => {
      const frames = encodeIcanhaz('/orders/');
      expect(frames.map((f) => f.toString('hex'))).to.deep.equal(['4943414e48415a3f', '2f6f72646572732f']);
    });

    it('encodes large sequences (2^40 + 5) as signed 64-bit big-endian', () => {
      expect(encodeSequence(2 ** 40 + 5).equals(hex('00 00 01 00 00 00 00 05'))).to.equal(true);
      expect(decodeSequence(hex('00 00 01 00 00 00 00 05'))).to.equal(2 ** 40 + 5);
      expect(encodeSequence(Number.MAX_SAFE_INTEGER).equals(hex('00 1f ff ff ff ff ff ff'))).to.equal(true);
      expect(decodeSequence(hex('00 10 00 00 00 00 00 00'))).to.equal(MAX_SEQUENCE);
      expect(encodeSequence(1).equals(hex('00 00 00 00 00 00 00 01'))).to.equal(true);
    });

    it('rejects a negative sequence as sequence-range', () => {
      expect(reasonOf(() => decodeSequence(hex('ff ff ff ff ff ff ff ff')))).to.equal('sequence-range');
      expect(reasonOf(() => decodeSequence(hex('80 00 00 00 00 00 00 00')))).to.equal('sequence-range');
    });

    it('rejects a sequence above 2^52 as sequence-range, so that the next one is still exact', () => {
      expect(MAX_SEQUENCE).to.equal(2 ** 52);
      expect(reasonOf(() => decodeSequence(hex('00 10 00 00 00 00 00 01')))).to.equal('sequence-range');
      expect(reasonOf(() => decodeSequence(hex('00 1f ff ff ff ff ff ff')))).to.equal('sequence-range');
      expect(reasonOf(() => decodeSequence(hex('00 20 00 00 00 00 00 00')))).to.equal('sequence-range');
      expect(reasonOf(() => decodeSequence(hex('7f ff ff ff ff ff ff ff')))).to.equal('sequence-range');
    });

    it('rejects a uuid frame longer than a packed batch can carry as uuid-too-long', () => {
      const frames = (uuid: Buffer) => [
        Buffer.from('/x'),
        encodeSequence(0),
        uuid,
        Buffer.alloc(0),
        Buffer.from('v'),
      ];
      expect(decodeKvMsg(frames(Buffer.alloc(255, 1))).uuid).to.have.length(255);
      expect(reasonOf(() => decodeKvMsg(frames(Buffer.alloc(256, 1))))).to.equal('uuid-too-long');
    });

    it('rejects a sequence frame that is not 8 bytes as sequence-size', () => {
      for (const size of [0, 1, 4, 7, 9, 16]) {
        expect(
          reasonOf(() => decodeSequence(Buffer.alloc(size))),
          `${size} bytes`,
        ).to.equal('sequence-size');
      }
    });
  });

  describe('round trips', () => {
    const keyArb = fc
      .string({ unit: 'binary', minLength: 1, maxLength: 64 })
      .filter((k) => Buffer.byteLength(k) <= DEFAULT_LIMITS.maxKeyBytes);
    const nameArb = fc
      .string({ unit: 'binary', minLength: 1, maxLength: 12 })
      .filter((s) => !s.includes('=') && !s.includes('\n'));
    const valueArb = fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !s.includes('\n'));
    const propsArb = fc
      .array(fc.tuple(nameArb, valueArb), { maxLength: 5 })
      .map((pairs) => pairs.map(([n, v]) => `${n}=${v}\n`).join(''));
    const uuidArb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => latin1(Buffer.from(b)));
    const bodyArb = fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b));
    const msgArb = fc.record({
      key: keyArb,
      sequence: fc.integer({ min: 0, max: MAX_SEQUENCE }),
      uuid: uuidArb,
      properties: propsArb,
      body: bodyArb,
    });

    function same(a: KvMsg, b: KvMsg): void {
      expect(a.key).to.equal(b.key);
      expect(a.sequence).to.equal(b.sequence);
      expect(a.uuid).to.equal(b.uuid);
      expect(a.properties).to.equal(b.properties);
      expect(a.body.toString('hex')).to.equal(b.body.toString('hex'));
    }

    it('decodeKvMsg(encodeKvMsg(m)) equals m for arbitrary messages', () => {
      fc.assert(
        fc.property(msgArb, (msg) => {
          const frames = encodeKvMsg(msg);
          expect(frames).to.have.length(5);
          expect(frames[2]!).to.have.length(16);
          same(decodeKvMsg(frames), msg);
        }),
        { numRuns: 300 },
      );
    });

    it('parseProperties reads back every generated name=value pair (last one wins)', () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(nameArb, valueArb), { maxLength: 6 }), (pairs) => {
          const text = pairs.map(([n, v]) => `${n}=${v}\n`).join('');
          const expected = new Map(pairs);
          expect([...parseProperties(text)]).to.deep.equal([...expected]);
        }),
        { numRuns: 200 },
      );
    });

    const packedArb = fc.record({
      key: keyArb,
      sequence: fc.integer({ min: 0, max: MAX_SEQUENCE }),
      uuid: fc.oneof(uuidArb, fc.constant('')),
      properties: propsArb,
      body: bodyArb,
      expiresAt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 45 })),
    });

    it('unpackBatch(packBatch(entries)) equals entries, expiresAt included', () => {
      fc.assert(
        fc.property(fc.array(packedArb, { maxLength: 12 }), (entries) => {
          const back = unpackBatch(packBatch(entries));
          expect(back).to.have.length(entries.length);
          back.forEach((e, i) => {
            same(e, entries[i]!);
            expect(e.expiresAt).to.equal(entries[i]!.expiresAt);
          });
        }),
        { numRuns: 200 },
      );
    });

    /** The packed entry format written out field by field with Buffer's own writers: the spec. */
    function referencePack(entries: readonly PackedEntry[]): Buffer {
      const parts: Buffer[] = [];
      for (const e of entries) {
        const key = Buffer.from(e.key, 'utf8');
        const props = Buffer.from(e.properties, 'utf8');
        const head = Buffer.alloc(2 + key.length + 8 + 1);
        head.writeUInt16BE(key.length, 0);
        key.copy(head, 2);
        head.writeDoubleBE(e.sequence, 2 + key.length);
        head.writeUInt8(e.uuid.length, 2 + key.length + 8);
        const mid = Buffer.alloc(2);
        mid.writeUInt16BE(props.length, 0);
        const tail = Buffer.alloc(12);
        tail.writeDoubleBE(e.expiresAt, 0);
        tail.writeUInt32BE(e.body.length, 8);
        parts.push(head, Buffer.from(e.uuid, 'latin1'), mid, props, tail, e.body);
      }
      return Buffer.concat(parts);
    }

    it('packBatch writes exactly the documented bytes (ASCII, non-ASCII and long keys, any uuid)', () => {
      const anyKey = fc.oneof(
        keyArb,
        fc.string({ unit: fc.constantFrom('a', '/', '0', 'é', '€', '😀'), minLength: 1, maxLength: 80 }),
      );
      const arb = packedArb.chain((e) => anyKey.map((key) => ({ ...e, key })));
      fc.assert(
        fc.property(fc.array(arb, { maxLength: 12 }), (entries) => {
          expect(packBatch(entries).toString('hex')).to.equal(referencePack(entries).toString('hex'));
        }),
        { numRuns: 300 },
      );
    });

    it("packEntry writes packBatch's bytes at any offset; unpackEntry reads them back from there", () => {
      fc.assert(
        fc.property(packedArb, fc.nat({ max: 9 }), fc.nat({ max: 9 }), (e, before, after) => {
          const packed = packBatch([e]);
          const out = Buffer.alloc(before + packed.length + after, 0xee);
          expect(packEntry(out, e, before)).to.equal(before + packed.length);
          expect(out.subarray(before, before + packed.length).toString('hex')).to.equal(
            packed.toString('hex'),
          );
          for (const limits of [DEFAULT_LIMITS, undefined]) {
            const cursor = { at: before };
            const back = unpackEntry(out, cursor, limits);
            expect(cursor.at).to.equal(before + packed.length);
            same(back, e);
            expect(back.expiresAt).to.equal(e.expiresAt);
          }
        }),
        { numRuns: 200 },
      );
    });

    it('unpackEntry without limits reads back what the checks would refuse, exactly as it was written', () => {
      const odd = {
        key: '',
        sequence: -1.5,
        uuid: 'x'.repeat(40),
        properties: 'not a property',
        body: Buffer.alloc(10),
        expiresAt: Infinity,
      };
      for (const e of [odd, { ...odd, key: '/\n', properties: '\n', expiresAt: -0, sequence: 2 ** 60 }]) {
        const back = unpackEntry(packBatch([e]), { at: 0 });
        expect({ ...back, body: back.body.toString('hex') }).to.deep.equal({
          ...e,
          body: e.body.toString('hex'),
        });
        expect(() => unpackEntry(packBatch([e]), { at: 0 }, TINY)).to.throw(KvMsgError);
      }
    });

    it('packedKeyStartsWith is key.startsWith for a well-formed prefix, on the UTF-8 bytes in place', () => {
      const unit = fc.constantFrom('a', '/', 'é', '€', '😀');
      fc.assert(
        fc.property(
          fc.string({ unit, maxLength: 8 }),
          fc.string({ unit, maxLength: 4 }),
          fc.nat({ max: 5 }),
          (key, prefix, at) => {
            const batch = Buffer.concat([
              Buffer.alloc(at),
              packBatch([
                { key, sequence: 1, uuid: '', properties: '', body: Buffer.from(prefix), expiresAt: 0 },
              ]),
            ]);
            for (const p of [prefix, [...key].slice(0, [...prefix].length).join('')]) {
              expect(packedKeyStartsWith(batch, at, Buffer.from(p))).to.equal(key.startsWith(p));
            }
          },
        ),
        { numRuns: 300 },
      );
    });

    it('unpackBatch copies bodies out of the batch buffer', () => {
      const batch = packBatch([
        { key: '/k', sequence: 1, uuid: UUID, properties: '', body: Buffer.from('abc'), expiresAt: 0 },
      ]);
      const [entry] = unpackBatch(batch);
      batch.fill(0);
      expect(entry!.body.toString()).to.equal('abc');
    });

    it('unpackBatch reads a key with non-ASCII bytes as UTF-8, and refuses a packed key that is empty or not UTF-8 as decodeKvMsg does', () => {
      const entry = {
        key: '/é/ü',
        sequence: 1,
        uuid: UUID,
        properties: '',
        body: Buffer.from('v'),
        expiresAt: 0,
      };
      expect(unpackBatch(packBatch([entry]))[0]!.key).to.equal('/é/ü');
      // The same entry with its key bytes replaced: a lone continuation byte, then no key at all.
      const batch = packBatch([{ ...entry, key: '/abc' }]);
      const invalid = Buffer.from(batch);
      invalid[3] = 0x80;
      expect(reasonOf(() => unpackBatch(invalid))).to.equal('key-encoding');
      const empty = Buffer.concat([Buffer.from([0, 0]), batch.subarray(2 + 4)]);
      expect(reasonOf(() => unpackBatch(empty))).to.equal('empty-key');
      const long = packBatch([{ ...entry, key: `/${'k'.repeat(DEFAULT_LIMITS.maxKeyBytes)}` }]);
      expect(reasonOf(() => unpackBatch(long))).to.equal('key-too-long');
    });

    it('unpackBatch of an empty buffer is an empty list', () => {
      expect(unpackBatch(Buffer.alloc(0))).to.deep.equal([]);
    });

    it('unpackBatch refuses a batch of more than maxEntries entries as batch-too-large, and accepts one of exactly that many', () => {
      const entry = {
        key: '/k',
        sequence: 0,
        uuid: UUID,
        properties: '',
        body: Buffer.from('v'),
        expiresAt: 0,
      };
      const batch = packBatch([entry, entry, entry]);
      expect(unpackBatch(batch, DEFAULT_LIMITS, 3)).to.have.length(3);
      expect(reasonOf(() => unpackBatch(batch, DEFAULT_LIMITS, 2))).to.equal('batch-too-large');
    });
  });

  describe('refusals', () => {
    it('refuses every frame count but 5 as frame-count', () => {
      for (const n of [0, 1, 2, 3, 4, 6, 7]) {
        const frames = Array.from({ length: n }, (_, i) => valid()[i % 5]!);
        expect(
          reasonOf(() => decodeKvMsg(frames)),
          `${n} frames`,
        ).to.equal('frame-count');
      }
    });

    it('refuses an empty key as empty-key', () => {
      expect(reasonOf(() => decodeKvMsg(withFrame(0, Buffer.alloc(0))))).to.equal('empty-key');
    });

    it('refuses a key that is not valid UTF-8 as key-encoding', () => {
      for (const bad of [hex('ff'), hex('c3'), hex('2f 80 61'), hex('ed a0 80'), hex('f8 88 80 80 80')]) {
        expect(
          reasonOf(() => decodeKvMsg(withFrame(0, bad))),
          bad.toString('hex'),
        ).to.equal('key-encoding');
      }
    });

    it('refuses a key above maxKeyBytes as key-too-long, and accepts one at the limit', () => {
      expect(reasonOf(() => decodeKvMsg(withFrame(0, Buffer.alloc(9, 0x61)), TINY))).to.equal('key-too-long');
      expect(
        decodeKvMsg(
          [Buffer.alloc(8, 0x61), encodeSequence(1), Buffer.alloc(0), Buffer.alloc(0), Buffer.from('v')],
          TINY,
        ).key,
      ).to.equal('aaaaaaaa');
      expect(reasonOf(() => decodeKvMsg(withFrame(0, Buffer.alloc(1025, 0x61))))).to.equal('key-too-long');
    });

    it('refuses a sequence frame of the wrong size as sequence-size', () => {
      expect(reasonOf(() => decodeKvMsg(withFrame(1, Buffer.alloc(4))))).to.equal('sequence-size');
      expect(reasonOf(() => decodeKvMsg(withFrame(1, Buffer.alloc(0))))).to.equal('sequence-size');
    });

    it('refuses a negative or unsafe sequence as sequence-range', () => {
      expect(reasonOf(() => decodeKvMsg(withFrame(1, hex('ff ff ff ff ff ff ff fe'))))).to.equal(
        'sequence-range',
      );
      expect(reasonOf(() => decodeKvMsg(withFrame(1, hex('00 20 00 00 00 00 00 01'))))).to.equal(
        'sequence-range',
      );
    });

    it('refuses properties without a trailing newline as properties-syntax', () => {
      expect(reasonOf(() => decodeKvMsg(withFrame(3, Buffer.from('ttl=30'))))).to.equal('properties-syntax');
      expect(reasonOf(() => decodeKvMsg(withFrame(3, Buffer.from('a=1\nb=2'))))).to.equal(
        'properties-syntax',
      );
    });

    it("refuses a property without '=' or with an empty name as properties-syntax", () => {
      for (const bad of ['novalue\n', 'a=1\nbad\n', '=x\n', '\n\n', 'a=1\n\n']) {
        expect(
          reasonOf(() => decodeKvMsg(withFrame(3, Buffer.from(bad)))),
          JSON.stringify(bad),
        ).to.equal('properties-syntax');
      }
    });

    it('refuses properties that are not valid UTF-8 as properties-syntax', () => {
      expect(reasonOf(() => decodeKvMsg(withFrame(3, hex('61 3d ff 0a'))))).to.equal('properties-syntax');
    });

    it('refuses properties above maxPropertiesBytes as properties-too-long', () => {
      expect(reasonOf(() => decodeKvMsg(withFrame(3, Buffer.from('abcd=123\n')), TINY))).to.equal(
        'properties-too-long',
      );
      expect(reasonOf(() => decodeKvMsg(withFrame(3, Buffer.from(`a=${'x'.repeat(5000)}\n`))))).to.equal(
        'properties-too-long',
      );
    });

    it('refuses a body above maxValueBytes as body-too-large, and accepts one at the limit', () => {
      const frames = (body: Buffer) => [
        Buffer.from('/k'),
        encodeSequence(1),
        Buffer.alloc(0),
        Buffer.alloc(0),
        body,
      ];
      expect(reasonOf(() => decodeKvMsg(frames(Buffer.alloc(5, 1)), TINY))).to.equal('body-too-large');
      expect(decodeKvMsg(frames(Buffer.alloc(4, 1)), TINY).body).to.have.length(4);
    });

    it('ttlSeconds refuses a non-numeric or negative ttl as ttl-invalid', () => {
      expect(reasonOf(() => ttlSeconds('ttl=abc\n'))).to.equal('ttl-invalid');
      expect(reasonOf(() => ttlSeconds('ttl=-5\n'))).to.equal('ttl-invalid');
      expect(reasonOf(() => ttlSeconds('a=b\nttl=Infinity\n'))).to.equal('ttl-invalid');
    });

    it('ttlSeconds reads a relative ttl, 0 or absent meaning none', () => {
      expect(ttlSeconds('ttl=30\n')).to.equal(30);
      expect(ttlSeconds('a=b\nttl=1.5\n')).to.equal(1.5);
      expect(ttlSeconds('ttl=0\n')).to.equal(0);
      expect(ttlSeconds('')).to.equal(0);
      expect(ttlSeconds('\n')).to.equal(0);
      expect(ttlSeconds('xttl=9\n')).to.equal(0);
    });

    it('a batch cut at any byte offset throws batch-truncated (or decodes a whole-entry prefix), never another error', () => {
      const entries: PackedEntry[] = [
        {
          key: '/a/é',
          sequence: 2 ** 40 + 5,
          uuid: UUID,
          properties: 'ttl=30\nx=y\n',
          body: Buffer.from('hello'),
          expiresAt: 1_700_000_000_000,
        },
        { key: '/b', sequence: 7, uuid: '', properties: '', body: Buffer.alloc(0), expiresAt: 0 },
        {
          key: '/c',
          sequence: 8,
          uuid: 'abc',
          properties: 'k=v\n',
          body: Buffer.alloc(300, 7),
          expiresAt: 12,
        },
      ];
      const batch = packBatch(entries);
      const boundaries = new Map<number, number>([[0, 0]]);
      for (let n = 1; n <= entries.length; n++) boundaries.set(packBatch(entries.slice(0, n)).length, n);
      expect(boundaries.get(batch.length)).to.equal(entries.length);
      let truncated = 0;
      for (let cut = 0; cut < batch.length; cut++) {
        const piece = batch.subarray(0, cut);
        const whole = boundaries.get(cut);
        if (whole !== undefined) {
          expect(
            unpackBatch(piece).map((e) => e.key),
            `cut ${cut}`,
          ).to.deep.equal(entries.slice(0, whole).map((e) => e.key));
        } else {
          expect(
            reasonOf(() => unpackBatch(piece)),
            `cut ${cut}`,
          ).to.equal('batch-truncated');
          truncated++;
        }
      }
      expect(truncated).to.equal(batch.length - (boundaries.size - 1));
    });

    it('random truncations and byte flips of random batches only ever throw KvMsgError', () => {
      const entryArb = fc.record({
        key: fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }),
        sequence: fc.integer({ min: 0, max: MAX_SEQUENCE }),
        uuid: fc.uint8Array({ minLength: 0, maxLength: 16 }).map((b) => latin1(Buffer.from(b))),
        properties: fc.constantFrom('', 'ttl=5\n', 'a=b\nc=d\n'),
        body: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
        expiresAt: fc.maxSafeNat(),
      });
      fc.assert(
        fc.property(
          fc.array(entryArb, { minLength: 1, maxLength: 5 }),
          fc.nat(),
          fc.nat(),
          fc.integer({ min: 0, max: 255 }),
          (entries, cutSeed, flipSeed, flipByte) => {
            const batch = Buffer.from(packBatch(entries));
            const cut = cutSeed % (batch.length + 1);
            batch[flipSeed % batch.length] = flipByte;
            try {
              unpackBatch(batch.subarray(0, cut), TINY);
            } catch (error) {
              expect(error).to.be.instanceOf(KvMsgError);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('lenient parts', () => {
    it('an empty properties frame and a lone newline both mean no properties', () => {
      expect(decodeKvMsg(withFrame(3, Buffer.alloc(0))).properties).to.equal('');
      expect(decodeKvMsg(withFrame(3, Buffer.from('\n'))).properties).to.equal('');
      expect(parseProperties('').size).to.equal(0);
      expect(parseProperties('\n').size).to.equal(0);
    });

    it('accepts uuids of other sizes (0, 5 bytes) as they are', () => {
      expect(decodeKvMsg(withFrame(2, Buffer.alloc(0))).uuid).to.equal('');
      const five = hex('01 02 03 ff 80');
      const msg = decodeKvMsg(withFrame(2, five));
      expect(msg.uuid).to.have.length(5);
      expect(Buffer.from(msg.uuid, 'latin1').equals(five)).to.equal(true);
      expect(encodeKvMsg(msg)[2]!.equals(five)).to.equal(true);
    });

    it('encodes an empty uuid and empty properties as empty frames', () => {
      const frames = encodeKvMsg({ key: '/k', sequence: 3, uuid: '', properties: '', body: Buffer.alloc(0) });
      expect(frames.map((f) => f.length)).to.deep.equal([2, 8, 0, 0, 0]);
    });
  });
});
