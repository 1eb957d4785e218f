/**
 * The de-duplication window (src/core/uuid-window.ts) on a fake clock: the time passed to set()
 * is the only clock. Every uuid is remembered for at least horizonMs however many follow it; the
 * count cap is a memory bound, and forcing out a uuid younger than the horizon is counted.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { UuidWindow, type UuidWindowOptions } from '../../../src/core/uuid-window.js';

const id = (n: number) => `uuid-${String(n).padStart(11, '0')}`;

function window(options: Partial<UuidWindowOptions> = {}) {
  const early: number[] = [];
  const w = new UuidWindow({
    horizonMs: 1000,
    maxSize: 1_000_000,
    onEvictedEarly: (ageMs) => early.push(ageMs),
    ...options,
  });
  return { w, early };
}

describe('UuidWindow', () => {
  it('remembers every uuid for horizonMs, however many writes follow it', () => {
    const { w, early } = window({ horizonMs: 30_000, maxSize: 1_000_000 });
    w.set(id(0), 1, 0);
    // 200,000 more writes within one second: twice the old count-based window of 100,000
    for (let i = 1; i <= 200_000; i++) w.set(id(i), i + 1, Math.floor(i / 200));
    expect(w.get(id(0))).to.equal(1);
    expect(w.size).to.equal(200_001);
    expect(early).to.deep.equal([]);
    expect(w.evictedEarly).to.equal(0);
  });

  it('forgets a uuid once horizonMs has passed since it was set (at the next set)', () => {
    const { w, early } = window({ horizonMs: 1000 });
    w.set(id(1), 1, 0);
    w.set(id(2), 2, 500);
    w.set(id(3), 3, 999);
    expect([w.get(id(1)), w.get(id(2)), w.get(id(3))]).to.deep.equal([1, 2, 3]);
    w.set(id(4), 4, 1000); // id(1) is now 1000 ms old: remembered for the full horizon, no longer
    expect(w.get(id(1))).to.equal(undefined);
    expect([w.get(id(2)), w.get(id(3)), w.get(id(4))]).to.deep.equal([2, 3, 4]);
    w.set(id(5), 5, 1499);
    expect(w.get(id(2))).to.equal(2, '999 ms old: still remembered');
    w.set(id(6), 6, 1999);
    expect(w.get(id(2))).to.equal(undefined);
    expect(w.get(id(3))).to.equal(undefined);
    expect(w.size).to.equal(3);
    expect(early).to.deep.equal([], 'forgetting by time is not early');
  });

  it('prune(now) forgets what is past the horizon with no write coming, and gives the ring back', () => {
    const { w } = window({ horizonMs: 1000 });
    for (let i = 0; i < 100_000; i++) w.set(id(i), i + 1, i / 1000); // 100 ms of a burst
    const burst = w.capacity;
    expect(burst).to.be.at.least(100_000);
    w.prune(1050); // the first 50 ms of the burst are past the horizon
    expect(w.get(id(0))).to.equal(undefined);
    expect(w.get(id(50_000)), 'set at exactly the cutoff').to.equal(undefined);
    expect(w.get(id(50_001))).to.equal(50_002);
    for (let t = 1100; t < 1200; t += 10) w.prune(t);
    expect(w.size).to.equal(0);
    expect(w.capacity, 'halved on each prune once mostly empty').to.be.below(burst / 100);
  });

  it('the cap forces out the oldest uuid, and counts it when it is younger than horizonMs', () => {
    const { w, early } = window({ horizonMs: 1000, maxSize: 3 });
    w.set(id(1), 1, 0);
    w.set(id(2), 2, 10);
    w.set(id(3), 3, 20);
    expect(w.evictedEarly).to.equal(0);
    w.set(id(4), 4, 30);
    expect(w.get(id(1))).to.equal(undefined);
    expect([w.get(id(2)), w.get(id(3)), w.get(id(4))]).to.deep.equal([2, 3, 4]);
    expect(w.size).to.equal(3);
    expect(w.evictedEarly).to.equal(1);
    expect(early).to.deep.equal([30], 'the age of the uuid forced out');
    w.set(id(5), 5, 45);
    expect(w.get(id(2))).to.equal(undefined);
    expect(w.evictedEarly).to.equal(2);
    expect(early).to.deep.equal([30, 35]);
  });

  it('at the cap, uuids past horizonMs go first and are not counted', () => {
    const { w, early } = window({ horizonMs: 100, maxSize: 3 });
    w.set(id(1), 1, 0);
    w.set(id(2), 2, 0);
    w.set(id(3), 3, 50);
    w.set(id(4), 4, 100); // ids 1 and 2 are 100 ms old: forgotten by time, so the cap is not hit
    expect(w.evictedEarly).to.equal(0);
    expect(early).to.deep.equal([]);
    expect([w.get(id(1)), w.get(id(2)), w.get(id(3)), w.get(id(4))]).to.deep.equal([
      undefined,
      undefined,
      3,
      4,
    ]);
  });

  it('a uuid set again keeps its first time and takes the new sequence', () => {
    const { w } = window({ horizonMs: 1000 });
    w.set(id(1), 1, 0);
    w.set(id(1), 7, 900);
    expect(w.get(id(1))).to.equal(7);
    expect(w.size).to.equal(1);
    w.set(id(2), 2, 1000);
    expect(w.get(id(1))).to.equal(undefined, 'counted from when it was first set');
  });

  it('a clock that steps back forgets nothing early', () => {
    const { w } = window({ horizonMs: 1000 });
    w.set(id(1), 1, 5000);
    w.set(id(2), 2, 100); // wall clock stepped back
    w.set(id(3), 3, 5999);
    expect([w.get(id(1)), w.get(id(2)), w.get(id(3))]).to.deep.equal([1, 2, 3]);
  });

  it('grows past its initial ring and shrinks back as traffic falls, losing nothing in between', () => {
    const { w } = window({ horizonMs: 1000, maxSize: 1_000_000 });
    // a burst: 50,000 writes in one millisecond-ish span, far beyond the initial ring of 1024
    for (let i = 0; i < 50_000; i++) w.set(id(i), i, 0);
    for (let i = 0; i < 50_000; i += 997) expect(w.get(id(i))).to.equal(i);
    expect(w.capacity).to.be.at.least(50_000);
    // then a trickle, one write every 100 ms: the burst is forgotten, only the last 10 s remain
    for (let i = 0; i < 200; i++) w.set(id(100_000 + i), i, 1000 + 100 * i);
    expect(w.size).to.equal(10);
    for (let i = 190; i < 200; i++) expect(w.get(id(100_000 + i))).to.equal(i);
    expect(w.get(id(49_999))).to.equal(undefined);
    expect(w.capacity).to.equal(1024, 'back to the initial ring');
  });

  /** Runs random set()s against the window and a plain list model of the same rules. */
  function agreesWithModel(run: {
    ids: number;
    ops: { minLength: number; maxLength: number };
    advance: fc.Arbitrary<number>;
    cap: { min: number; max: number };
    horizon: { min: number; max: number };
    runs: number;
  }): { largestRing: number; shrank: boolean } {
    const { ids } = run;
    const op = fc.record({ uuid: fc.nat(ids), advance: run.advance });
    let largestRing = 0;
    let shrank = false;
    fc.assert(
      fc.property(
        fc.array(op, run.ops),
        fc.integer(run.cap),
        fc.integer(run.horizon),
        (ops, maxSize, horizonMs) => {
          const { w, early } = window({ horizonMs, maxSize });
          const model = new Map<string, { seq: number; at: number }>(); // in insertion order
          const modelEarly: number[] = [];
          let now = 0;
          ops.forEach((o, seq) => {
            const ringBefore = w.capacity;
            now += o.advance;
            const uuid = id(o.uuid);
            w.set(uuid, seq, now);
            const known = model.get(uuid);
            if (known) {
              known.seq = seq;
              return;
            }
            for (const [u, m] of model) {
              if (m.at > now - horizonMs) break;
              model.delete(u);
            }
            if (model.size === maxSize) {
              const [u, m] = model.entries().next().value!;
              model.delete(u);
              modelEarly.push(now - m.at);
            }
            model.set(uuid, { seq, at: now });
            if (w.capacity < ringBefore) shrank = true;
            largestRing = Math.max(largestRing, w.capacity);
          });
          expect(w.size).to.equal(model.size);
          for (let n = 0; n <= ids; n++) expect(w.get(id(n))).to.equal(model.get(id(n))?.seq);
          expect(early).to.deep.equal(modelEarly);
          expect(w.evictedEarly).to.equal(modelEarly.length);
        },
      ),
      // no shrinking: a counterexample of thousands of writes takes minutes to shrink
      { numRuns: run.runs, endOnFailure: true },
    );
    return { largestRing, shrank };
  }

  it('fast-check: agrees with a plain model under random time steps, repeats and small caps', () => {
    agreesWithModel({
      ids: 40,
      ops: { minLength: 0, maxLength: 300 },
      advance: fc.oneof(fc.constant(0), fc.nat(30), fc.nat(300)),
      cap: { min: 1, max: 50 },
      horizon: { min: 1, max: 200 },
      runs: 300,
    });
  });

  it('fast-check: agrees with the model while the ring grows past 1024 and shrinks back', () => {
    // Bursts (up to one ms per write) that fill the ring past its initial 1024 slots, and now
    // and then a 10 s pause after which everything is forgotten and the ring halves.
    const { largestRing, shrank } = agreesWithModel({
      ids: 6000,
      ops: { minLength: 2000, maxLength: 5000 },
      advance: fc.oneof(
        { arbitrary: fc.nat(1), weight: 2000 },
        { arbitrary: fc.constant(10_000), weight: 1 },
      ),
      cap: { min: 1025, max: 5000 },
      horizon: { min: 1500, max: 5000 },
      runs: 30,
    });
    expect(largestRing, 'some runs grew the ring past its initial 1024 slots').to.be.above(1024);
    expect(shrank, 'some runs shrank the ring').to.equal(true);
  });
});
