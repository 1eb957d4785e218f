/**
 * The bounded replay log (src/core/replay-log.ts): a ring of contiguous sequenced changes that
 * answers "what came after n" only while it still holds n + 1.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ReplayLog } from '../../../src/core/replay-log.js';
import type { Entry } from '../../../src/kv/kvmap.js';
import { footprint } from '../../../src/wire/sizes.js';

function entry(sequence: number, key = `/k${sequence}`): Entry {
  return { key, sequence, uuid: '', properties: '', body: Buffer.from(`v${sequence}`), expiresAt: 0 };
}
const seqs = (entries: readonly Entry[] | undefined) => entries?.map((e) => e.sequence);

function filled(capacity: number, from: number, to: number): ReplayLog {
  const log = new ReplayLog(capacity);
  for (let s = from; s <= to; s++) log.append(entry(s));
  return log;
}

describe('ReplayLog', () => {
  it('an empty log covers nothing and answers nothing', () => {
    const log = new ReplayLog(4);
    expect(log.firstSequence).to.equal(undefined);
    expect(log.lastSequence).to.equal(undefined);
    expect(log.covers(0)).to.equal(false);
    expect(log.since(0)).to.equal(undefined);
  });

  it('keeps the newest `capacity` entries across many wrap-arounds, oldest first', () => {
    const log = filled(4, 1, 11);
    expect(log.firstSequence).to.equal(8);
    expect(log.lastSequence).to.equal(11);
    expect(seqs(log.since(7))).to.deep.equal([8, 9, 10, 11]);
    log.append(entry(12));
    expect(log.firstSequence).to.equal(9);
    expect(seqs(log.since(8))).to.deep.equal([9, 10, 11, 12]);
  });

  it('covers(n) holds exactly for first - 1 <= n <= last', () => {
    const log = filled(4, 1, 11); // holds 8..11
    expect(log.covers(6)).to.equal(false);
    expect(log.covers(7)).to.equal(true);
    expect(log.covers(9)).to.equal(true);
    expect(log.covers(11)).to.equal(true);
    expect(log.covers(12)).to.equal(false);
  });

  it('since() boundaries: first-1 gives all, last gives [], outside gives undefined', () => {
    const log = filled(4, 1, 11);
    expect(seqs(log.since(7))).to.deep.equal([8, 9, 10, 11]);
    expect(seqs(log.since(10))).to.deep.equal([11]);
    expect(log.since(11)).to.deep.equal([]);
    expect(log.since(6)).to.equal(undefined);
    expect(log.since(12)).to.equal(undefined);
  });

  it('since(n, prefix) filters by key prefix but keeps the order', () => {
    const log = new ReplayLog(10);
    log.append(entry(1, '/a/1'));
    log.append(entry(2, '/b/1'));
    log.append(entry(3, '/a/2'));
    log.append(entry(4, '/b/2'));
    expect(seqs(log.since(0, '/a/'))).to.deep.equal([1, 3]);
    expect(seqs(log.since(2, '/b/'))).to.deep.equal([4]);
    expect(log.since(3, '/c/')).to.deep.equal([]);
  });

  it('a non-contiguous append clears the log so it never holds a gap', () => {
    const log = filled(8, 1, 5);
    log.append(entry(7));
    expect(log.firstSequence).to.equal(7);
    expect(log.lastSequence).to.equal(7);
    expect(log.since(4)).to.equal(undefined, 'the change at 6 is unknown');
    expect(log.since(5)).to.equal(undefined);
    expect(seqs(log.since(6))).to.deep.equal([7]);
  });

  it('a repeated or older append also clears (the log never goes backwards)', () => {
    const log = filled(8, 1, 5);
    log.append(entry(3));
    expect(log.firstSequence).to.equal(3);
    expect(log.lastSequence).to.equal(3);
  });

  it('clear() empties the log', () => {
    const log = filled(4, 1, 3);
    log.clear();
    expect(log.covers(3)).to.equal(false);
    expect(log.since(3)).to.equal(undefined);
    log.append(entry(10));
    expect(seqs(log.since(9))).to.deep.equal([10]);
  });

  it('fast-check: since(n) equals the model for any capacity, length and n', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: -2, max: 45 }),
        (cap, start, count, n) => {
          const log = filled(cap, start + 1, start + count);
          const held = Array.from(
            { length: Math.min(cap, count) },
            (_, i) => start + count - Math.min(cap, count) + 1 + i,
          );
          const first = held[0];
          const last = held[held.length - 1];
          const covered = first !== undefined && last !== undefined && n >= first - 1 && n <= last;
          expect(log.covers(n)).to.equal(covered);
          expect(seqs(log.since(n))).to.deep.equal(covered ? held.filter((s) => s > n) : undefined);
        },
      ),
      { numRuns: 300 },
    );
  });

  describe('byte budget', () => {
    const big = (sequence: number) => ({ ...entry(sequence, '/one'), body: Buffer.alloc(1000) });

    it('one key overwritten with big values holds no more than the budget, newest kept', () => {
      const budget = 10 * footprint(big(1));
      const log = new ReplayLog(100_000, budget);
      for (let s = 1; s <= 1000; s++) log.append(big(s));
      expect(log.bytes).to.be.at.most(budget);
      expect(log.size).to.equal(10);
      expect(log.lastSequence).to.equal(1000);
      expect(log.firstSequence).to.equal(991);
      expect(log.evictedForBytes).to.equal(990);
    });

    it('a resume from before the oldest held entry is refused (the caller sends a snapshot)', () => {
      const log = new ReplayLog(100, 5 * footprint(big(1)));
      for (let s = 1; s <= 20; s++) log.append(big(s));
      expect(log.since(10)).to.equal(undefined);
      expect(seqs(log.since(16))).to.deep.equal([17, 18, 19, 20]);
    });

    it('an entry bigger than the whole budget is still held alone, as the newest', () => {
      const log = new ReplayLog(100, 10);
      log.append(big(1));
      log.append(big(2));
      expect(log.size).to.equal(1);
      expect(seqs(log.since(1))).to.deep.equal([2]);
    });

    it('bytes go back to zero on clear and follow evictions by count', () => {
      const log = new ReplayLog(3, Infinity);
      for (let s = 1; s <= 10; s++) log.append(big(s));
      expect(log.bytes).to.equal(3 * footprint(big(1)));
      log.clear();
      expect(log.bytes).to.equal(0);
    });
  });
});
