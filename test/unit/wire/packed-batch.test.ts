/**
 * PackedBatch.checked: a received batch checked without being decoded must refuse exactly what
 * `unpackBatch(frame, limits)` refuses (same reason, same message), and what it accepts must decode
 * (`entries()`) to what `unpackBatch` gives. `canonical` must say whether the records read the same
 * unchecked, which is what lets the client's replica copy them as they are.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { DEFAULT_LIMITS, KvMsgError, MAX_SEQUENCE, type Limits } from '../../../src/wire/chp.js';
import {
  isCanonicalEntry,
  packBatch,
  PackedBatch,
  unpackBatch,
  type PackedEntry,
} from '../../../src/wire/packed.js';

const SMALL: Limits = {
  ...DEFAULT_LIMITS,
  maxKeyBytes: 8,
  maxValueBytes: 6,
  maxPropertiesBytes: 12,
  maxProperties: 2,
};

const entryArb = fc.record({
  key: fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 10 })),
  sequence: fc.oneof(fc.integer({ min: 0, max: MAX_SEQUENCE }), fc.constantFrom(-1, 0.5, MAX_SEQUENCE + 2)),
  uuid: fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b).toString('latin1')),
  properties: fc.constantFrom('', '\n', 'ttl=5\n', 'a=b\nc=d\n', 'a=b\nc=d\ne=f\n', 'nonsense'),
  body: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
  expiresAt: fc.oneof(fc.constant(0), fc.maxSafeNat(), fc.constantFrom(NaN, Infinity, -Infinity)),
});

/** One well-formed entry. */
const ONE: PackedEntry = {
  key: '/k',
  sequence: 1,
  uuid: '',
  properties: '',
  body: Buffer.from('v'),
  expiresAt: 0,
};

/** What unpackBatch does with the frame: its entries, or its error's reason and message. */
function reference(frame: Buffer, limits: Limits): PackedEntry[] | { reason: string; message: string } {
  try {
    return unpackBatch(frame, limits);
  } catch (error) {
    expect(error).to.be.instanceOf(KvMsgError);
    const { reason, message } = error as KvMsgError;
    return { reason, message };
  }
}

describe('PackedBatch.checked', () => {
  it('refuses what unpackBatch refuses, with the same error, and decodes what it accepts to the same entries', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 5 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: -1, max: 255 }),
        fc.constantFrom(SMALL, DEFAULT_LIMITS),
        (entries, cutSeed, flipSeed, flipByte, limits) => {
          const frame = Buffer.from(packBatch(entries));
          if (flipByte >= 0 && frame.length > 0) frame[flipSeed % frame.length] = flipByte;
          const cut = frame.subarray(
            0,
            frame.length - (cutSeed % 3 === 0 ? cutSeed % (frame.length + 1) : 0),
          );
          const expected = reference(cut, limits);
          let batch: PackedBatch | undefined;
          try {
            batch = PackedBatch.checked(cut, limits);
          } catch (error) {
            expect(error).to.be.instanceOf(KvMsgError);
            const { reason, message } = error as KvMsgError;
            expect({ reason, message }).to.deep.equal(expected);
            refused++;
            return;
          }
          expect(expected, 'unpackBatch refused what the check accepted').to.be.an('array');
          expect(batch.count).to.equal((expected as PackedEntry[]).length);
          expect(batch.entries()).to.deep.equal(expected);
          accepted++;
        },
      ),
      { numRuns: 2000 },
    );
    // both sides of the property were exercised
    expect(accepted).to.be.greaterThan(200);
    expect(refused).to.be.greaterThan(200);
  });

  it('is canonical exactly when every record reads the same unchecked as checked', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 5 }), (entries) => {
        const usable = entries.map((e) => ({
          ...e,
          sequence: Math.abs(Math.trunc(e.sequence)) % MAX_SEQUENCE,
        }));
        const frame = packBatch(
          usable.map((e) => ({ ...e, properties: e.properties === 'nonsense' ? '' : e.properties })),
        );
        let batch: PackedBatch;
        try {
          batch = PackedBatch.checked(frame, DEFAULT_LIMITS);
        } catch {
          return; // a key that is not UTF-8: refused, covered above
        }
        const same =
          JSON.stringify(unpackBatch(frame)) === JSON.stringify(unpackBatch(frame, DEFAULT_LIMITS));
        const lone = usable.some((e) => e.properties === '\n');
        const infinite = usable.some((e) => !Number.isFinite(e.expiresAt));
        expect(batch.canonical).to.equal(!lone && !infinite);
        if (batch.canonical) expect(same).to.equal(true);
      }),
      { numRuns: 500 },
    );
  });

  it('isCanonicalEntry reads one record: a lone newline of properties or a deadline that is not finite is not', () => {
    const base = ONE;
    expect(isCanonicalEntry(packBatch([base]), 0)).to.equal(true);
    expect(isCanonicalEntry(packBatch([{ ...base, properties: 'a=b\n' }]), 0)).to.equal(true);
    expect(isCanonicalEntry(packBatch([{ ...base, properties: '\n' }]), 0)).to.equal(false);
    expect(isCanonicalEntry(packBatch([{ ...base, expiresAt: NaN }]), 0)).to.equal(false);
  });

  it('refuses more than maxEntries entries as batch-too-large', () => {
    const e = ONE;
    expect(PackedBatch.checked(packBatch([e, e]), DEFAULT_LIMITS, 2).count).to.equal(2);
    expect(() => PackedBatch.checked(packBatch([e, e, e]), DEFAULT_LIMITS, 2))
      .to.throw(KvMsgError)
      .with.property('reason', 'batch-too-large');
  });
});

describe('packBatch: the numbers it stores byte by byte', () => {
  const entry = (over: Partial<PackedEntry>): PackedEntry => ({
    key: '/k',
    sequence: 1,
    uuid: 'u'.repeat(16),
    properties: '',
    body: Buffer.from('v'),
    expiresAt: 0,
    ...over,
  });

  it('reads back every length and number it wrote, big-endian as the format says', () => {
    const wide = entry({
      key: `/${'k'.repeat(300)}`, // a key length above 255: both bytes of the u16
      sequence: MAX_SEQUENCE,
      properties: `ttl=5\n${'p'.repeat(290)}=1\n`,
      expiresAt: 1_790_000_000_123.5,
      body: Buffer.alloc(70_000, 7), // a body length above 65,535: three bytes of the u32
    });
    const frame = packBatch([wide, entry({ sequence: 2 ** 40 + 3 })]);
    expect(frame.readUInt16BE(0)).to.equal(301);
    expect(frame.readDoubleBE(2 + 301)).to.equal(MAX_SEQUENCE);
    const [a, b] = unpackBatch(frame);
    expect(a).to.deep.equal(wide);
    expect(b!.sequence).to.equal(2 ** 40 + 3);
  });

  it('throws on what the format cannot hold, rather than writing a record that reads back wrong', () => {
    expect(() => packBatch([entry({ key: `/${'k'.repeat(65_535)}` })])).to.throw(RangeError, /key of 65536/);
    expect(() => packBatch([entry({ uuid: 'u'.repeat(256) })])).to.throw(RangeError, /uuid of 256/);
    expect(() => packBatch([entry({ properties: `a=${'p'.repeat(65_535)}\n` })])).to.throw(
      RangeError,
      /properties of 65538/,
    );
  });
});
