/**
 * BatchSizer (src/client/batches.ts): how the native client cuts queued writes into TSET batches
 * that fit the server's maxBatchEntries and maxBatchBytes, and how it adapts when a server with
 * smaller limits refuses a batch as 'batch-too-large' (issue 13, B1).
 */
import { expect } from 'chai';
import { packBatch, packedSize } from '../../../src/wire/index.js';
import { BatchSizer } from '../../../src/client/batches.js';

const write = (i: number, bodyBytes = 10) => {
  const entry = { key: `/k/${i}`, uuid: 'u'.repeat(16), properties: '', body: Buffer.alloc(bodyBytes) };
  return { ...entry, size: packedSize(entry) };
};
const writes = (n: number, bodyBytes = 10) => Array.from({ length: n }, (_, i) => write(i, bodyBytes));
const bytesOf = (ws: ReturnType<typeof write>[]) =>
  packBatch(ws.map((w) => ({ ...w, sequence: 0, expiresAt: 0 }))).length;

describe('BatchSizer', () => {
  it('cuts by entry count: the smaller of its cap and maxBatchEntries', () => {
    expect(new BatchSizer({ maxBatchEntries: 10_000, maxBatchBytes: 1e9 }, 1000).next(writes(2500))).to.equal(
      1000,
    );
    expect(new BatchSizer({ maxBatchEntries: 300, maxBatchBytes: 1e9 }, 1000).next(writes(2500))).to.equal(
      300,
    );
    expect(new BatchSizer({ maxBatchEntries: 300, maxBatchBytes: 1e9 }).next(writes(20))).to.equal(20);
    expect(new BatchSizer({ maxBatchEntries: 300, maxBatchBytes: 1e9 }).next([])).to.equal(0);
  });

  it('cuts by packed bytes: the longest prefix whose batch fits maxBatchBytes', () => {
    const queue = writes(100, 1000);
    const one = packedSize(queue[0]!);
    const sizer = new BatchSizer({ maxBatchEntries: 10_000, maxBatchBytes: 10 * one + one - 1 });
    const n = sizer.next(queue);
    expect(n).to.equal(10);
    expect(bytesOf(queue.slice(0, n))).to.be.at.most(sizer.limits.bytes);
    expect(bytesOf(queue.slice(0, n + 1))).to.be.above(sizer.limits.bytes);
  });

  it('always takes at least one write, even one larger than the byte limit alone', () => {
    expect(new BatchSizer({ maxBatchEntries: 10, maxBatchBytes: 10 }).next(writes(3, 100))).to.equal(1);
  });

  it('adopts the limits a refusing server names, so the same writes then fit', () => {
    const sizer = new BatchSizer({ maxBatchEntries: 10_000, maxBatchBytes: 16 << 20 }, 1000);
    const refused = writes(1000);
    expect(sizer.refused(refused, { maxBatchEntries: 250, maxBatchBytes: 1 << 20 })).to.equal(true);
    expect(sizer.limits).to.deep.equal({ entries: 250, bytes: 1 << 20 });
    expect(sizer.next(refused)).to.equal(250);
  });

  it('halves the batch when the server names no limits, or limits the refused batch met', () => {
    const sizer = new BatchSizer({ maxBatchEntries: 10_000, maxBatchBytes: 16 << 20 }, 1000);
    expect(sizer.refused(writes(1000))).to.equal(true);
    expect(sizer.limits.entries).to.equal(500);
    expect(sizer.refused(writes(500), { maxBatchEntries: 5000, maxBatchBytes: 16 << 20 })).to.equal(true);
    expect(sizer.limits.entries).to.equal(250);
    // Repeated refusals shrink to single writes, never to zero.
    for (let n = 250; n > 1; n = sizer.limits.entries) sizer.refused(writes(n));
    expect(sizer.limits.entries).to.equal(1);
  });

  it('says a refused single write cannot be helped by splitting', () => {
    const sizer = new BatchSizer({ maxBatchEntries: 10, maxBatchBytes: 100 });
    expect(sizer.refused(writes(1, 1000), { maxBatchEntries: 10, maxBatchBytes: 100 })).to.equal(false);
  });
});
