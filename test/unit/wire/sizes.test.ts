/**
 * Sizes derived from the limits (src/wire/sizes.ts): byte-bounded chunking and the frame limits
 * every socket gets as its ZeroMQ maxMessageSize.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  chunkBytes,
  chunked,
  FRAME_SLACK_BYTES,
  maxEntryBytes,
  packedSize,
  socketFrameLimits,
} from '../../../src/wire/sizes.js';
import { DEFAULT_LIMITS } from '../../../src/wire/chp.js';
import {
  bodyLengthAt,
  deadlineAt,
  packBatch,
  packedEntryEnd,
  propertiesAt,
  sequenceAt,
  type PackedEntry,
} from '../../../src/wire/packed.js';

const entry = (key: string, bytes: number): PackedEntry => ({
  key,
  sequence: 1,
  uuid: 'u'.repeat(16),
  properties: 'a=1\n',
  body: Buffer.alloc(bytes),
  expiresAt: 0,
});

describe('sizes', () => {
  it('packedSize is the exact size packBatch gives an entry', () => {
    const e = entry('/k/é', 123);
    expect(packedSize(e)).to.equal(packBatch([e]).length);
  });

  it('the field readers find each field of each record in place, and packedEntryEnd where it ends', () => {
    const entries = [
      entry('/a', 0),
      { ...entry('/日本', 300), uuid: '', properties: 'é=1\n', sequence: 7, expiresAt: 1.5e12 },
      { ...entry('/c', 70_000), properties: '', sequence: 2 ** 40, expiresAt: 99 },
    ];
    const batch = packBatch(entries);
    let at = 0;
    for (const e of entries) {
      const sequence = sequenceAt(batch, at);
      const properties = propertiesAt(batch, sequence);
      const deadline = deadlineAt(batch, properties);
      expect(batch.readDoubleBE(sequence)).to.equal(e.sequence);
      expect(batch.toString('utf8', properties + 2, deadline)).to.equal(e.properties);
      expect(batch.readDoubleBE(deadline)).to.equal(e.expiresAt);
      expect(bodyLengthAt(batch, deadline)).to.equal(e.body.length);
      const end = packedEntryEnd(batch, at);
      expect(end - at).to.equal(packedSize(e));
      at = end;
    }
    expect(at).to.equal(batch.length);
  });

  it('chunked keeps order, covers every entry once, and respects both bounds', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 20_000 }),
        (sizes, maxEntries, maxBytes) => {
          const entries = sizes.map((n, i) => entry(`/k${i}`, n));
          const chunks = [...chunked(entries, maxEntries, maxBytes)];
          expect(chunks.flat()).to.deep.equal(entries);
          for (const chunk of chunks) {
            expect(chunk.length).to.be.within(1, maxEntries);
            const bytes = packBatch(chunk).length;
            // Only a chunk of one entry may exceed the byte budget (that entry alone is bigger).
            if (chunk.length > 1) expect(bytes).to.be.at.most(maxBytes);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a chunk of the largest entries the limits allow fits the peer and client socket limits', () => {
    const frames = socketFrameLimits(DEFAULT_LIMITS, 1024);
    const largest = {
      key: 'k'.repeat(DEFAULT_LIMITS.maxKeyBytes),
      sequence: 1,
      uuid: 'u'.repeat(255),
      properties: `a=${'x'.repeat(DEFAULT_LIMITS.maxPropertiesBytes - 3)}\n`,
      body: Buffer.alloc(DEFAULT_LIMITS.maxValueBytes),
      expiresAt: 0,
    };
    expect(packedSize(largest)).to.equal(maxEntryBytes(DEFAULT_LIMITS));
    for (const chunk of chunked(Array(5).fill(largest), 1000, chunkBytes(DEFAULT_LIMITS))) {
      expect(packBatch(chunk).length).to.be.at.most(frames.peer - FRAME_SLACK_BYTES);
      expect(packBatch(chunk).length).to.be.at.most(frames.clientDealer - FRAME_SLACK_BYTES);
    }
    expect(frames.collector).to.equal(DEFAULT_LIMITS.maxValueBytes + FRAME_SLACK_BYTES);
    expect(frames.publisher).to.equal(1024 + FRAME_SLACK_BYTES);
  });
});
