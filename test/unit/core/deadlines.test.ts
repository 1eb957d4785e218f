/**
 * The deadline scheduler (src/core/deadlines.ts): earliest-first order on a fake clock, lazy
 * invalidation through the owner's `isLive`, the `max` bound, and compaction of dead items.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Deadlines } from '../../../src/core/deadlines.js';

interface Timer {
  readonly at: number;
  readonly id: string;
  readonly version: number;
}

/** An owner that cancels and re-schedules by bumping a version, as the KV machine and the bus do. */
function owner() {
  const live = new Map<string, number>();
  let version = 0;
  const deadlines = new Deadlines<Timer>({
    isLive: (t) => live.get(t.id) === t.version,
    liveBound: () => live.size,
  });
  return {
    deadlines,
    set(id: string, at: number): void {
      live.set(id, ++version);
      deadlines.schedule({ at, id, version });
    },
    cancel(id: string): void {
      live.delete(id);
    },
    due(now: number, max?: number): string[] {
      return deadlines.due(now, max).map((t) => {
        live.delete(t.id);
        return t.id;
      });
    },
  };
}

/** A fake clock: time moves only when the test says so. */
class FakeClock {
  now = 1_700_000_000_000;
  advance(ms: number): number {
    return (this.now += ms);
  }
}

describe('Deadlines', () => {
  it('reports nothing before a deadline and the item once it is reached, earliest first', () => {
    const clock = new FakeClock();
    const o = owner();
    o.set('c', clock.now + 300);
    o.set('a', clock.now + 100);
    o.set('b', clock.now + 200);
    expect(o.due(clock.advance(99))).to.deep.equal([]);
    expect(o.due(clock.advance(1))).to.deep.equal(['a']);
    expect(o.due(clock.advance(1_000))).to.deep.equal(['b', 'c']);
    expect(o.due(clock.advance(1_000))).to.deep.equal([], 'each item is reported once');
  });

  it('next() and delay(now) give the earliest live deadline for a timer', () => {
    const clock = new FakeClock();
    const o = owner();
    expect(o.deadlines.next()).to.equal(undefined);
    expect(o.deadlines.delay(clock.now)).to.equal(undefined);
    o.set('a', clock.now + 500);
    o.set('b', clock.now + 200);
    expect(o.deadlines.next()).to.equal(clock.now + 200);
    expect(o.deadlines.delay(clock.now)).to.equal(200);
    o.cancel('b');
    expect(o.deadlines.delay(clock.now), 'a cancelled item no longer counts').to.equal(500);
    expect(o.deadlines.delay(clock.advance(900)), 'overdue is 0, never negative').to.equal(0);
  });

  it('a re-scheduled item fires at its new deadline only; a cancelled one never', () => {
    const clock = new FakeClock();
    const o = owner();
    o.set('later', clock.now + 100);
    o.set('later', clock.now + 500);
    o.set('gone', clock.now + 50);
    o.cancel('gone');
    expect(o.due(clock.advance(499))).to.deep.equal([]);
    expect(o.due(clock.advance(1))).to.deep.equal(['later']);
  });

  it('due(now, max) returns at most max items and leaves the rest for the next call', () => {
    const clock = new FakeClock();
    const o = owner();
    for (let i = 0; i < 5; i++) o.set(`k${i}`, clock.now + i);
    clock.advance(10);
    expect(o.due(clock.now, 2)).to.deep.equal(['k0', 'k1']);
    expect(o.due(clock.now)).to.deep.equal(['k2', 'k3', 'k4']);
  });

  it('clear() forgets everything', () => {
    const o = owner();
    o.set('a', 1);
    o.deadlines.clear();
    expect(o.deadlines.held).to.equal(0);
    expect(o.due(1e15)).to.deep.equal([]);
  });

  it('dead items are compacted: an owner that never asks what is due keeps the heap bounded', () => {
    const o = owner();
    for (let i = 0; i < 100_000; i++) o.set(`k${i % 4}`, 1_000 + i);
    expect(o.deadlines.held).to.be.at.most(2 * 4 + 1024 + 1);
    expect(o.due(1e15)).to.deep.equal(['k0', 'k1', 'k2', 'k3']);
  });

  it('a few hot items on an owner of many entries: swept as the heap grows, never piled up to its bound', () => {
    // The bound is the owner's entry count (a map of 300k keys), not what is scheduled: 10 keys
    // whose TTL is renewed at full speed piled 600k dead items, then one rebuild took 352 ms.
    const live = new Map<string, number>();
    let version = 0;
    let checks = 0;
    const deadlines = new Deadlines<Timer>({
      isLive: (t) => {
        checks++;
        return live.get(t.id) === t.version;
      },
      liveBound: () => 300_000,
    });
    let largest = 0;
    for (let i = 0; i < 200_000; i++) {
      const id = `k${i % 10}`;
      live.set(id, ++version);
      deadlines.schedule({ at: 1_000 + i, id, version });
      largest = Math.max(largest, deadlines.held);
    }
    expect(largest, 'the heap never held much more than the sweep allows').to.be.at.most(2 * 10 + 1024 + 1);
    expect(checks / 200_000, 'liveness checks per schedule').to.be.at.most(2);
    expect(
      deadlines
        .due(1e15)
        .map((t) => t.id)
        .sort(),
    ).to.deep.equal(Array.from({ length: 10 }, (_, i) => `k${i}`).sort());
  });

  it('fast-check: agrees with a naive model under random sets, cancels and clock advances', () => {
    type Op =
      { kind: 'set'; id: number; in: number } | { kind: 'cancel'; id: number } | { kind: 'tick'; by: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), id: fc.nat(5), in: fc.nat(50) }),
      fc.record({ kind: fc.constant('cancel' as const), id: fc.nat(5) }),
      fc.record({ kind: fc.constant('tick' as const), by: fc.nat(30) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.integer({ min: 1, max: 4 }), (ops, max) => {
        const clock = new FakeClock();
        const o = owner();
        const model = new Map<string, number>();
        for (const step of ops) {
          if (step.kind === 'set') {
            o.set(`t${step.id}`, clock.now + step.in);
            model.set(`t${step.id}`, clock.now + step.in);
          } else if (step.kind === 'cancel') {
            o.cancel(`t${step.id}`);
            model.delete(`t${step.id}`);
          } else {
            clock.advance(step.by);
            const ready = [...model].filter(([, at]) => at <= clock.now).sort((a, b) => a[1] - b[1]);
            const got = o.due(clock.now, max);
            expect(got).to.have.length(Math.min(max, ready.length));
            const ats = got.map((id) => model.get(id)!);
            expect(ats).to.deep.equal(
              ready.slice(0, got.length).map(([, at]) => at),
              'earliest first',
            );
            for (const id of got) model.delete(id);
          }
          const next = Math.min(...model.values());
          expect(o.deadlines.next()).to.equal(model.size === 0 ? undefined : next);
        }
      }),
      { numRuns: 200 },
    );
  });
});
