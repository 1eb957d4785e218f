/**
 * The de-duplication window (src/core/uuid-window.ts) on a fake clock: the time passed to set()
 * is the only clock. Every uuid is remembered for at least horizonMs however many follow it; the
 * count cap is a memory bound, and forcing out a uuid younger than the horizon is counted.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { SEGMENT, UuidWindow, type UuidWindowOptions } from '../../../src/core/uuid-window.js';

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

/** How a model-based property runs: ids drawn, ops per run, the clock's steps, cap and horizon. */
interface ModelRun {
  ids: number;
  ops: { minLength: number; maxLength: number };
  advance: fc.Arbitrary<number>;
  cap: { min: number; max: number };
  horizon: { min: number; max: number };
  runs: number;
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

  it('a uuid get() missed is held once when set, whatever is set or forgotten in between', () => {
    const { w } = window({ horizonMs: 1000, maxSize: 2 });
    expect(w.get(id(1))).to.equal(undefined);
    w.set(id(1), 1, 0); // the commit's path: set right after the miss
    w.set(id(1), 2, 0); // set again with no get: it is found, not added twice
    expect([w.size, w.get(id(1))]).to.deep.equal([1, 2]);
    expect(w.get(id(3))).to.equal(undefined);
    w.set(id(2), 3, 0);
    w.set(id(4), 4, 0); // the cap forces out id(1) (held once: exactly one went)
    w.set(id(3), 5, 0); // the miss of id(3) is still a miss after others came and went
    expect([w.size, w.get(id(1)), w.get(id(2)), w.get(id(3)), w.get(id(4))]).to.deep.equal([
      2,
      undefined,
      undefined,
      5,
      4,
    ]);
    expect(w.evictedEarly).to.equal(2);
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
    expect(w.capacity).to.be.at.most(2 * SEGMENT, 'a segment or two kept, the rest given back');
  });

  it('a crowded index is rebuilt a few uuids per set, and finds or forgets each one meanwhile', () => {
    // Rebuilding it in one call took ~530 ms at 2M uuids: a node under full write load stalled
    // long enough for its peer to take it for dead (a false failover in the bench).
    const { w } = window({ horizonMs: 1000, maxSize: 1_000_000 });
    let n = 0;
    for (; w.rebuilding === 0 && n < 10_000; n++) w.set(id(n), n + 1, n / 2); // set at n / 2 ms
    expect(n, 'a new index was started').to.be.within(1000, 2000);
    expect(w.rebuilding, 'left for later sets').to.be.above(1000);
    for (let i = 0; i < n; i++) expect(w.get(id(i)), `uuid ${i}`).to.equal(i + 1);
    // At 1256 ms the uuids set at or before 256 ms (0 to 512) are past the horizon, most of them
    // not yet in the new index: forgotten all the same.
    w.set(id(n), n + 1, 1256);
    expect(w.rebuilding).to.be.above(0);
    for (let i = 0; i <= n; i++) expect(w.get(id(i)), `uuid ${i}`).to.equal(i <= 512 ? undefined : i + 1);
    let sets = 0;
    for (let i = n + 1; w.rebuilding > 0; i++, sets++) w.set(id(i), i + 1, 1256);
    expect(sets, 'a few per set').to.be.above(100);
    for (let i = 513; i <= n + sets; i++) expect(w.get(id(i)), `uuid ${i}`).to.equal(i + 1);
    expect(w.get(id(0))).to.equal(undefined);
  });

  it('wraps round its ring many times, finding what is live and nothing forgotten', () => {
    // 4096 at most: a ring of 8192 positions, gone round 7 times by 60,000 uuids
    const { w } = window({ horizonMs: 10, maxSize: 4096 });
    for (let batch = 0; batch < 60; batch++) {
      for (let i = 0; i < 1000; i++) w.set(id(batch * 1000 + i), batch * 1000 + i, batch * 5);
      // live: the batches set within 10 ms, this one and the one before (at most 2,000)
      expect(w.size).to.equal(Math.min(batch + 1, 2) * 1000);
      for (let i = Math.max(0, batch - 3) * 1000; i < (batch + 1) * 1000; i += 7)
        expect(w.get(id(i)), `uuid ${i} after batch ${batch}`).to.equal(
          i >= (batch - 1) * 1000 ? i : undefined,
        );
    }
    expect(w.capacity).to.be.at.most(2 * SEGMENT);
  });

  /** Runs random set()s against the window and a plain list model of the same rules. */
  function agreesWithModel(run: ModelRun): { largestRing: number; shrank: boolean } {
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

  it('fast-check: agrees with the model while the ring takes segments and gives them back', () => {
    // Bursts (up to one ms per write) that fill more than one segment of the ring, and now and
    // then a 10 s pause after which everything is forgotten and the segments are given back.
    const { largestRing, shrank } = agreesWithModel({
      ids: 12_000,
      ops: { minLength: 6000, maxLength: 10_000 },
      advance: fc.oneof(
        { arbitrary: fc.nat(1), weight: 4000 },
        { arbitrary: fc.constant(10_000), weight: 1 },
      ),
      cap: { min: SEGMENT + 1, max: 10_000 },
      horizon: { min: 3000, max: 10_000 },
      runs: 20,
    });
    expect(largestRing, 'some runs took more than one segment').to.be.above(SEGMENT);
    expect(shrank, 'some runs gave segments back').to.equal(true);
  });

  // ---- the packed layout: a ring of segments, an open-addressing index with tombstones ----

  /** A uuid from two bytes of `n` and 14 fixed bytes, the varying bytes first or last. */
  const packed = (n: number, layout: 'prefix' | 'suffix' | 'spread') => {
    const lo = String.fromCharCode(n & 0xff);
    const hi = String.fromCharCode((n >>> 8) & 0xff);
    if (layout === 'prefix') return '\xff\0\x80'.repeat(4) + '\0\xff' + hi + lo; // 14 shared bytes first
    if (layout === 'suffix') return lo + hi + '\0'.repeat(14); // 14 shared bytes last
    return `${lo}\0\0\0\0\0\0${hi}\xff\xff\xff\xff\xff\xff\xff${lo}`;
  };

  /** Strings the window cannot hold: the wrong length, or a char code above 255. */
  const unstorable = [
    '',
    'short',
    'x'.repeat(15),
    'x'.repeat(17),
    `\u0100${'x'.repeat(15)}`,
    `${'\0'.repeat(15)}\u20ac`,
  ];

  /** The rules of the window written plainly: a Map in insertion order. */
  class ModelWindow {
    readonly seen = new Map<string, { seq: number; at: number }>();
    readonly early: number[] = [];
    readonly maxSize: number;

    constructor(
      readonly horizonMs: number,
      maxSize: number,
    ) {
      this.maxSize = Math.max(1, maxSize);
    }

    get(uuid: string): number | undefined {
      return this.seen.get(uuid)?.seq;
    }

    set(uuid: string, seq: number, now: number): void {
      if (uuid.length !== 16 || [...uuid].some((c) => c.charCodeAt(0) > 255)) return;
      const known = this.seen.get(uuid);
      if (known) {
        known.seq = seq;
        return;
      }
      this.prune(now);
      if (this.seen.size === this.maxSize) {
        const [oldest, { at }] = this.seen.entries().next().value!;
        this.seen.delete(oldest);
        this.early.push(now - at);
      }
      this.seen.set(uuid, { seq, at: now });
    }

    prune(now: number): void {
      for (const [uuid, { at }] of this.seen) {
        if (at > now - this.horizonMs) break;
        this.seen.delete(uuid);
      }
    }
  }

  /** Random set/get/prune (and unstorable strings) on the window and the model, step by step. */
  function packedAgreesWithModel(
    run: ModelRun & {
      /** a pause (ms) once, 60-100% of the way through the ops, then a prune */
      pause?: number;
    },
  ): { largestRing: number; shrank: boolean; evicted: boolean } {
    const id = fc.nat(run.ids);
    const op = fc.oneof(
      { weight: 10, arbitrary: fc.record({ kind: fc.constant('set' as const), id, advance: run.advance }) },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('get' as const), id }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('prune' as const), advance: run.advance }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('bad' as const), bad: fc.constantFrom(...unstorable) }),
      },
    );
    const layout = fc.constantFrom('prefix' as const, 'suffix' as const, 'spread' as const);
    let largestRing = 0;
    let shrank = false;
    let evicted = false;
    fc.assert(
      fc.property(
        fc.array(op, run.ops),
        fc.integer(run.cap),
        fc.integer(run.horizon),
        layout,
        fc.integer({ min: 60, max: 100 }),
        (ops, maxSize, horizonMs, shape, pausePercent) => {
          const { w, early } = window({ horizonMs, maxSize });
          const model = new ModelWindow(horizonMs, maxSize);
          const pauseAt = Math.floor((ops.length * pausePercent) / 100);
          let now = 0;
          ops.forEach((o, seq) => {
            const ringBefore = w.capacity;
            if (seq === pauseAt && run.pause) {
              now += run.pause; // everything is forgotten: the ring halves if it had grown
              w.prune(now);
              model.prune(now);
            }
            if (o.kind === 'set') {
              now += o.advance;
              w.set(packed(o.id, shape), seq, now);
              model.set(packed(o.id, shape), seq, now);
            } else if (o.kind === 'get') {
              expect(w.get(packed(o.id, shape))).to.equal(model.get(packed(o.id, shape)));
            } else if (o.kind === 'prune') {
              now += o.advance;
              w.prune(now);
              model.prune(now);
            } else {
              w.set(o.bad, seq, now + 1_000_000); // ignored: it would prune everything otherwise
              expect(w.get(o.bad)).to.equal(undefined);
            }
            expect(w.size).to.equal(model.seen.size);
            // segments follow what is live: those it spans, and the next uuid's
            expect(w.capacity).to.be.within(w.size, (Math.ceil(w.size / SEGMENT) + 2) * SEGMENT);
            if (w.capacity < ringBefore) shrank = true;
            largestRing = Math.max(largestRing, w.capacity);
          });
          for (let n = 0; n <= run.ids; n++)
            expect(w.get(packed(n, shape))).to.equal(model.get(packed(n, shape)));
          expect(early).to.deep.equal(model.early);
          expect(w.evictedEarly).to.equal(model.early.length);
          if (model.early.length > 0) evicted = true;
        },
      ),
      { numRuns: run.runs, endOnFailure: true },
    );
    return { largestRing, shrank, evicted };
  }

  it('fast-check: set/get/prune on random bytes agree with a plain model, small cap and horizon', () => {
    const { evicted } = packedAgreesWithModel({
      ids: 60,
      ops: { minLength: 0, maxLength: 300 },
      advance: fc.oneof(fc.constant(0), fc.nat(30), fc.integer({ min: -50, max: 300 })),
      cap: { min: 1, max: 40 },
      horizon: { min: 1, max: 200 },
      runs: 300,
    });
    expect(evicted, 'some runs hit the cap').to.equal(true);
  });

  it('fast-check: set/get/prune agree with the model while the ring grows, halves and wraps', () => {
    const { largestRing, shrank, evicted } = packedAgreesWithModel({
      ids: 5000,
      ops: { minLength: 3000, maxLength: 5000 },
      advance: fc.oneof({ arbitrary: fc.nat(1), weight: 1000 }, { arbitrary: fc.constant(-20), weight: 1 }),
      cap: { min: 1025, max: 4000 },
      horizon: { min: 1000, max: 3000 },
      pause: 10_000,
      runs: 25,
    });
    expect(largestRing, 'some runs grew the ring past its initial 1024 slots').to.be.above(1024);
    expect(shrank, 'some runs halved the ring').to.equal(true);
    expect(evicted, 'some runs hit the cap').to.equal(true);
  });

  it('finds every one of many uuids that share their first (or last) 14 bytes', () => {
    for (const layout of ['prefix', 'suffix', 'spread'] as const) {
      const { w } = window({ horizonMs: 1000 });
      for (let n = 0; n < 65_536; n++) w.set(packed(n, layout), n + 1, n < 32_768 ? 0 : 500);
      expect(w.size).to.equal(65_536);
      for (let n = 0; n < 65_536; n++) expect(w.get(packed(n, layout))).to.equal(n + 1);
      expect(w.get('\x01'.repeat(16))).to.equal(undefined);
      // forgetting the older half deletes from the middle of every cluster: the rest still found
      w.prune(1000);
      expect(w.size).to.equal(32_768);
      for (let n = 0; n < 65_536; n++)
        expect(w.get(packed(n, layout))).to.equal(n < 32_768 ? undefined : n + 1);
    }
  });

  it('the index finds everything after the ring wraps, grows while wrapped and halves while wrapped', () => {
    const { w } = window({ horizonMs: 100 });
    const uuid = (group: string, n: number) => `${group}${String(n).padStart(15, '0')}`;
    const expectAll = (group: string, count: number, found: boolean) => {
      for (let n = 0; n < count; n++) expect(w.get(uuid(group, n))).to.equal(found ? n : undefined);
    };
    // the 1024-slot ring wraps: A (slots 0-799) is forgotten, C runs from slot 1000 round to 575
    for (let n = 0; n < 800; n++) w.set(uuid('A', n), n, 0);
    for (let n = 0; n < 200; n++) w.set(uuid('B', n), n, 50);
    for (let n = 0; n < 600; n++) w.set(uuid('C', n), n, 100);
    expect(w.size).to.equal(800);
    expectAll('A', 800, false);
    expectAll('B', 200, true);
    expectAll('C', 600, true);
    // it grows while wrapped (oldest at slot 800), then holds B, C and D from slot 0 in 2048
    for (let n = 0; n < 1000; n++) w.set(uuid('D', n), n, 100);
    expect(w.size).to.equal(1800);
    expectAll('B', 200, true);
    expectAll('C', 600, true);
    expectAll('D', 1000, true);
    // B goes, E wraps round the 2048 slots (1800 to 151); then C and D go, and it halves while wrapped
    w.prune(150);
    for (let n = 0; n < 400; n++) w.set(uuid('E', n), n, 160);
    expect(w.size).to.equal(2000);
    expectAll('E', 400, true);
    w.prune(200);
    expect(w.size).to.equal(400);
    for (const [group, count] of [
      ['B', 200],
      ['C', 600],
      ['D', 1000],
    ] as const)
      expectAll(group, count, false);
    expectAll('E', 400, true);
    // and it goes on working: more writes, the cap not reached, E forgotten in time
    for (let n = 0; n < 1000; n++) w.set(uuid('F', n), n, 230);
    expectAll('E', 400, true);
    expectAll('F', 1000, true);
    w.set(uuid('G', 0), 0, 260);
    expectAll('E', 400, false);
    expectAll('F', 1000, true);
    expect(w.size).to.equal(1001);
  });

  it('ignores strings it cannot hold: not 16 chars, or a char above 255', () => {
    const { w } = window({ horizonMs: 1000 });
    w.set(id(1), 1, 0);
    for (const bad of unstorable) {
      w.set(bad, 9, 5000); // not even a prune: id(1) stays
      expect(w.get(bad)).to.equal(undefined);
    }
    expect(w.size).to.equal(1);
    expect(w.get(id(1))).to.equal(1);
    const high = '\xff'.repeat(16);
    w.set(high, 2, 0);
    expect(w.get(high)).to.equal(2, 'every byte value 0-255 is held');
    expect(w.get(`${'\xff'.repeat(15)}\u01ff`)).to.equal(undefined, 'not the byte it truncates to');
  });
});
