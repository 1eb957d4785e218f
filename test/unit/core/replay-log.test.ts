/**
 * The bounded replay log (src/core/replay-log.ts): a ring of contiguous sequenced changes that
 * answers "what came after n" only while it still holds n + 1.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ReplayLog } from '../../../src/core/replay-log.js';
import type { Entry } from '../../../src/kv/kvmap.js';
import { footprint, packedSize } from '../../../src/wire/sizes.js';
import { packBatch } from '../../../src/wire/packed.js';

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

  describe('packed', () => {
    /** The log as it was: an array of the appended entries, under the same two budgets. */
    class ModelLog {
      entries: Entry[] = [];
      held = 0;
      evictedForBytes = 0;
      constructor(
        readonly capacity: number,
        readonly maxBytes: number,
      ) {}
      append(e: Entry): void {
        const last = this.entries[this.entries.length - 1];
        if (last !== undefined && e.sequence !== last.sequence + 1) {
          this.entries = [];
          this.held = 0;
        }
        if (this.entries.length === Math.max(1, this.capacity)) this.drop();
        this.entries.push(e);
        this.held += footprint(e);
        while (this.held > this.maxBytes && this.entries.length > 1) {
          this.drop();
          this.evictedForBytes++;
        }
      }
      private drop(): void {
        this.held -= footprint(this.entries.shift()!);
      }
      since(n: number, prefix: string): Entry[] | undefined {
        const first = this.entries[0]?.sequence;
        const last = this.entries[this.entries.length - 1]?.sequence;
        if (first === undefined || last === undefined || n + 1 < first || n > last) return undefined;
        return this.entries.filter((e) => e.sequence > n && e.key.startsWith(prefix));
      }
    }

    /** Entries as plain data, every field compared (the body by its bytes). */
    const plain = (entries: readonly Entry[] | undefined) =>
      entries?.map((e) => ({ ...e, body: e.body.toString('hex') }));

    // Keys mix ASCII, 2-, 3- and 4-byte UTF-8 ('😀' is a surrogate pair), so that prefixes often match.
    const alphabet = fc.constantFrom('a', 'b', '/', 'é', '€', '中', '😀');
    const keyArb = fc.oneof(
      { weight: 9, arbitrary: fc.string({ unit: alphabet, minLength: 1, maxLength: 12 }) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
    );
    const uuidArb = fc.oneof(
      fc.constant(''),
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    const propertiesArb = fc.oneof(
      fc.constant(''),
      fc.constant('ttl=5\n'),
      fc.constant('\n'),
      fc.string({ unit: 'binary', maxLength: 40 }),
    );
    const bodyArb = fc.oneof(
      { weight: 12, arbitrary: fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)) },
      // now and then one big enough for a chunk of its own
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.integer({ min: 30_000, max: 40_000 }), fc.integer({ min: 0, max: 255 }))
          .map(([n, b]) => Buffer.alloc(n, b).fill(b ^ 0xff, n - 3)),
      },
    );
    const expiresAtArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 45 }), fc.double());
    const stepArb = fc.oneof(
      { weight: 20, arbitrary: fc.constant(1) },
      { weight: 1, arbitrary: fc.integer({ min: 2, max: 5 }) }, // a gap
      { weight: 1, arbitrary: fc.integer({ min: -3, max: 0 }) }, // a repeat or older
    );
    const appendArb = fc.record({
      kind: fc.constant('append' as const),
      step: stepArb,
      key: keyArb,
      uuid: uuidArb,
      properties: propertiesArb,
      body: bodyArb,
      expiresAt: expiresAtArb,
    });
    const sinceArb = fc.record({
      kind: fc.constant('since' as const),
      back: fc.integer({ min: -2, max: 40 }), // how far below the newest
      inside: fc.boolean(), // taken modulo what is held + 1, so that most calls are answered
      prefix: fc.oneof(
        fc.constant(''),
        fc.string({ unit: alphabet, maxLength: 3 }),
        // a prefix that cuts a surrogate pair (never from the wire, still answered as startsWith)
        fc.string({ unit: alphabet, maxLength: 2 }).map((p) => `${p}\uD83D`),
      ),
      // or instead the start of a held key, cut at any UTF-16 unit (inside a surrogate pair too)
      cut: fc.option(fc.tuple(fc.nat(), fc.nat())),
    });

    it('fast-check: behaves as the model log (entries, sequences, prefixes, both budgets)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 30 }),
          fc.oneof(
            fc.constant(Infinity),
            fc.integer({ min: 200, max: 60_000 }),
            fc.integer({ min: 60_000, max: 400_000 }),
          ),
          fc.integer({ min: 0, max: 2 ** 40 }),
          fc.array(fc.oneof({ weight: 3, arbitrary: appendArb }, sinceArb), { maxLength: 80, size: 'max' }),
          (capacity, maxBytes, start, ops) => {
            const log = new ReplayLog(capacity, maxBytes);
            const model = new ModelLog(capacity, maxBytes);
            let sequence = start;
            for (const op of ops) {
              if (op.kind === 'append') {
                sequence = Math.max(0, sequence + op.step);
                const { key, uuid, properties, body, expiresAt } = op;
                const e: Entry = { key, sequence, uuid, properties, body, expiresAt };
                log.append(e);
                model.append(e);
              } else {
                const held = model.entries;
                const n = sequence - (op.inside ? Math.abs(op.back) % (held.length + 1) : op.back);
                let { prefix } = op;
                if (op.cut !== null && held.length > 0) {
                  const { key } = held[op.cut[0] % held.length]!;
                  prefix = key.slice(0, op.cut[1] % (key.length + 1));
                }
                expect(log.covers(n)).to.equal(model.since(n, '') !== undefined);
                expect(plain(log.since(n, prefix))).to.deep.equal(plain(model.since(n, prefix)));
                // packed(a, b): packBatch's bytes of a..b when all are held, else undefined
                const last = log.lastSequence;
                if (last !== undefined && n + 1 <= last) {
                  const b = Math.min(last, n + 1 + (Math.abs(op.back) % 5));
                  const want = model.since(n, '')?.filter((e) => e.sequence <= b);
                  expect(log.packed(n + 1, b)?.toString('hex')).to.equal(
                    want === undefined ? undefined : packBatch(want).toString('hex'),
                  );
                }
              }
              expect(log.size).to.equal(model.entries.length);
              expect(log.bytes).to.equal(model.held);
              expect(log.evictedForBytes).to.equal(model.evictedForBytes);
              expect(log.firstSequence).to.equal(model.entries[0]?.sequence);
              expect(log.lastSequence).to.equal(model.entries[model.entries.length - 1]?.sequence);
            }
            const first = log.firstSequence;
            if (first !== undefined) {
              expect(plain(log.since(first - 1))).to.deep.equal(plain(model.entries));
            }
          },
        ),
        { numRuns: 150 },
      );
    });

    it('returns new entries whose bodies are copies: later appends never change them', () => {
      const log = new ReplayLog(2);
      log.append({ ...entry(1), body: Buffer.from('one') });
      const [held] = log.since(0)!;
      for (let s = 2; s <= 50; s++) log.append({ ...entry(s), body: Buffer.alloc(3, s) });
      log.clear();
      log.append({ ...entry(1), body: Buffer.from('xyz') }); // written over the same chunk bytes
      expect(held!.body.toString()).to.equal('one');
    });

    describe('memory', () => {
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      /** heap and ArrayBuffer bytes in use after a full collection */
      const used = () => {
        gc();
        gc();
        const { heapUsed, external } = process.memoryUsage();
        return heapUsed + external;
      };

      it('stays at about the packed bytes held while 100 times the capacity goes through', () => {
        const body = Buffer.alloc(3000, 7);
        const at = (s: number) => ({
          ...entry(s, `/key/${s % 977}`),
          body: body.subarray(0, (s * 7919) % 3000),
        });
        const before = used();
        const log = new ReplayLog(1000);
        let packed = 0;
        for (let s = 1; s <= 1000; s++) packed += packedSize(at(s));
        for (let s = 1; s <= 1000; s++) log.append(at(s));
        const filled = used();
        for (let s = 1001; s <= 100_000; s++) log.append(at(s));
        const after = used();
        expect(log.size).to.equal(1000);
        // the records (~1.5 MB), their chunks' unused tails and the slot arrays
        expect(filled - before).to.be.below(1.5 * packed + 512 * 1024);
        // ~150 MB went through it
        expect(after - filled).to.be.below(1024 * 1024);
      });

      it('records bigger than a chunk are freed as they go under the byte budget', () => {
        const body = Buffer.alloc(40_000, 1);
        const log = new ReplayLog(100_000, 1024 * 1024);
        for (let s = 1; s <= 100; s++) log.append({ ...entry(s), body });
        const filled = used();
        for (let s = 101; s <= 3000; s++) log.append({ ...entry(s), body });
        const after = used();
        expect(log.size).to.equal(Math.floor((1024 * 1024) / footprint({ ...entry(1), body })));
        expect(after - filled).to.be.below(1024 * 1024); // 120 MB went through it
      });
    });
  });
});
