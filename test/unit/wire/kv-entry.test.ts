/**
 * decodeKvEntry (src/wire/chp.ts), the client's receive path for published updates: the same
 * checks as decodeKvMsg, in the same order (so a message with several faults is counted under the
 * same reason), and an entry of the shape unpackBatch gives, with no deadline.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  decodeKvEntry,
  decodeKvMsg,
  DEFAULT_LIMITS,
  encodeKvMsg,
  KvMsgError,
  type Limits,
} from '../../../src/wire/chp.js';
import { packBatch, unpackBatch } from '../../../src/wire/packed.js';

const TINY: Limits = { ...DEFAULT_LIMITS, maxKeyBytes: 8, maxValueBytes: 4, maxPropertiesBytes: 8 };

function outcome(decode: () => object): unknown {
  try {
    return { ok: decode() };
  } catch (error) {
    expect(error).to.be.instanceOf(KvMsgError);
    return { reason: (error as KvMsgError).reason };
  }
}

describe('decodeKvEntry', () => {
  it('decodes a KVPUB to the fields decodeKvMsg gives, with expiresAt 0', () => {
    const body = Buffer.from('value');
    const frames = encodeKvMsg({
      key: '/w/1',
      sequence: 2 ** 40 + 7,
      uuid: 'u'.repeat(16),
      properties: 'a=b\n',
      body,
    });
    const entry = decodeKvEntry(frames);
    expect(entry).to.deep.equal({ ...decodeKvMsg(frames), expiresAt: 0 });
  });

  it('copies a small body into the shared pool, and keeps a large one as it came', () => {
    const small = encodeKvMsg({
      key: '/k',
      sequence: 1,
      uuid: '',
      properties: '',
      body: Buffer.alloc(100, 1),
    });
    const body = decodeKvEntry(small).body;
    expect(body).to.not.equal(small[4]);
    expect(body.equals(small[4]!)).to.equal(true);
    expect(body.buffer.byteLength, 'a slice of the pool').to.equal(Buffer.poolSize);
    const large = encodeKvMsg({
      key: '/k',
      sequence: 1,
      uuid: '',
      properties: '',
      body: Buffer.alloc(5000, 1),
    });
    expect(decodeKvEntry(large).body).to.equal(large[4]);
  });

  it('builds the entry in the field order of unpackBatch, so the replica holds one shape', () => {
    const frames = encodeKvMsg({ key: '/k', sequence: 3, uuid: '', properties: '', body: Buffer.from('v') });
    const [packed] = unpackBatch(packBatch([{ ...decodeKvMsg(frames), expiresAt: 0 }]));
    expect(Object.keys(decodeKvEntry(frames))).to.deep.equal(Object.keys(packed!));
  });

  it('accepts and refuses exactly what decodeKvMsg does, with the same reason (arbitrary frames)', () => {
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b)),
      fc.constantFrom(
        Buffer.from('/k'),
        Buffer.from('a=b\n'),
        Buffer.from('ttl=1\n'),
        Buffer.from('00000000000000ff', 'hex'),
        Buffer.from('8000000000000000', 'hex'),
        Buffer.alloc(0),
      ),
    );
    fc.assert(
      fc.property(fc.array(frame, { minLength: 4, maxLength: 6 }), fc.boolean(), (frames, tiny) => {
        const limits = tiny ? TINY : DEFAULT_LIMITS;
        const expected = outcome(() => decodeKvMsg(frames, limits));
        const got = outcome(() => decodeKvEntry(frames, limits));
        if ('ok' in (expected as object))
          expect(got).to.deep.equal({ ok: { ...(expected as { ok: object }).ok, expiresAt: 0 } });
        else expect(got).to.deep.equal(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
