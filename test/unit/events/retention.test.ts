/**
 * Retention (src/events/retention.ts): which rule owns a topic, each limit alone and together,
 * isolation between prefixes, age read from the time passed in, reading after a sequence with
 * patterns, `covers` at its edges, and a property against a plain-array model.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  StreamIndex,
  checkRules,
  matches,
  ruleFor,
  type RetentionRule,
  type StreamEvent,
} from '../../../src/events/index.js';
import { TwinstarError } from '../../../src/errors.js';

const ev = (sequence: number, topic: string, bytes = 1, time = 0): StreamEvent => ({
  sequence,
  topic,
  bytes,
  time,
});
const seqs = (events: readonly StreamEvent[]) => events.map((e) => e.sequence);

describe('events/retention', () => {
  describe('ruleFor and checkRules', () => {
    const rules: RetentionRule[] = [
      { prefix: '', maxEvents: 10 },
      { prefix: 'orders', maxEvents: 20 },
      { prefix: 'orders.eu', maxEvents: 30 },
    ];

    it('picks the longest prefix the topic lies under, token-aligned', () => {
      expect(ruleFor(rules, 'orders.eu.created')?.prefix).to.equal('orders.eu');
      expect(ruleFor(rules, 'orders.eu')?.prefix).to.equal('orders.eu');
      expect(ruleFor(rules, 'orders.us')?.prefix).to.equal('orders');
      expect(ruleFor(rules, 'orders')?.prefix).to.equal('orders');
      expect(ruleFor(rules, 'ordersx')?.prefix).to.equal('');
      expect(ruleFor(rules, 'orders.eux')?.prefix).to.equal('orders');
    });

    it('finds no rule when none covers the topic', () => {
      expect(ruleFor([{ prefix: 'orders' }], 'payments.x')).to.equal(undefined);
    });

    it('accepts sound rules and names the problem of unsound ones', () => {
      expect(checkRules(rules)).to.equal(undefined);
      expect(checkRules([{ prefix: 'a' }, { prefix: 'a' }])).to.match(/two rules/);
      expect(checkRules([{ prefix: 'a.*' }])).to.match(/wildcard/);
      expect(checkRules([{ prefix: 'a.' }])).to.match(/empty token/);
      expect(checkRules([{ prefix: '', maxEvents: 0 }])).to.match(/maxEvents/);
      expect(checkRules([{ prefix: '', maxEvents: 1.5 }])).to.match(/maxEvents/);
      expect(checkRules([{ prefix: '', maxBytes: -1 }])).to.match(/maxBytes/);
      expect(checkRules([{ prefix: '', maxAgeMs: Number.NaN }])).to.match(/maxAgeMs/);
      expect(() => new StreamIndex([{ prefix: 'a' }, { prefix: 'a' }])).to.throw(TwinstarError, /two rules/);
    });
  });

  describe('StreamIndex limits', () => {
    it('maxEvents alone: keeps the newest, drops the oldest at append', () => {
      const index = new StreamIndex([{ prefix: '', maxEvents: 2 }]);
      expect(index.append(ev(1, 'a'))).to.deep.equal([]);
      expect(index.append(ev(2, 'a'))).to.deep.equal([]);
      expect(index.append(ev(3, 'a'))).to.deep.equal([1]);
      expect(index.first()).to.equal(2);
      expect(index.last()).to.equal(3);
      expect(index.size).to.equal(2);
    });

    it('maxBytes alone: drops until within, but keeps the newest event even when it is alone too big', () => {
      const index = new StreamIndex([{ prefix: '', maxBytes: 10 }]);
      index.append(ev(1, 'a', 4));
      index.append(ev(2, 'a', 4));
      expect(index.append(ev(3, 'a', 4))).to.deep.equal([1]);
      expect(index.stats().bytes).to.equal(8);
      expect(index.append(ev(4, 'a', 50))).to.deep.equal([2, 3]);
      expect(index.stats()).to.include({
        events: 1,
        bytes: 50,
        firstSequence: 4,
        lastSequence: 4,
        dropped: 3,
      });
    });

    it('maxAgeMs alone: drops at expire(now) by the time passed in, strictly older than the limit', () => {
      const index = new StreamIndex([{ prefix: '', maxAgeMs: 100 }]);
      index.append(ev(1, 'a', 1, 1000));
      index.append(ev(2, 'a', 1, 1050));
      expect(index.expire(1100)).to.deep.equal([]); // age 100 is still within
      expect(index.expire(1101)).to.deep.equal([1]);
      expect(index.expire(1150)).to.deep.equal([]);
      expect(index.expire(1151)).to.deep.equal([2]);
      expect(index.first()).to.equal(undefined);
      // A clock that jumps far ahead and back: the index only ever trusts what it is told.
      index.append(ev(3, 'a', 1, 5000));
      expect(index.expire(4000)).to.deep.equal([]);
    });

    it('age is read at the head: an event stamped earlier than its elder waits for it', () => {
      const index = new StreamIndex([{ prefix: '', maxAgeMs: 10 }]);
      index.append(ev(1, 'a', 1, 100));
      index.append(ev(2, 'a', 1, 50)); // clock stepped back
      expect(index.expire(105)).to.deep.equal([]);
      expect(index.expire(111)).to.deep.equal([1, 2]);
    });

    it('all three limits together: whichever binds drops', () => {
      const index = new StreamIndex([{ prefix: '', maxEvents: 3, maxBytes: 10, maxAgeMs: 100 }]);
      index.append(ev(1, 'a', 2, 0));
      index.append(ev(2, 'a', 2, 10));
      index.append(ev(3, 'a', 2, 20));
      expect(index.append(ev(4, 'a', 2, 30))).to.deep.equal([1]); // count
      // Over the count, drop 2; then 3, 4, 5 hold 2 + 2 + 7 = 11 bytes, over 10: drop 3.
      expect(index.append(ev(5, 'a', 7, 40))).to.deep.equal([2, 3]);
      expect(seqs(index.after(0, '>', 10))).to.deep.equal([4, 5]);
      expect(index.expire(131)).to.deep.equal([4]); // age
      expect(seqs(index.after(0, '>', 10))).to.deep.equal([5]);
    });

    it('stays right across many drops (the queue compacts its dropped head)', () => {
      const index = new StreamIndex([{ prefix: '', maxEvents: 10 }]);
      const dropped: number[] = [];
      for (let s = 1; s <= 5000; s++) dropped.push(...index.append(ev(2 * s, 'a.b')));
      expect(dropped).to.deep.equal(Array.from({ length: 4990 }, (_, i) => 2 * (i + 1)));
      expect(seqs(index.after(9981, 'a.*', 100))).to.deep.equal([
        9982, 9984, 9986, 9988, 9990, 9992, 9994, 9996, 9998, 10000,
      ]);
      expect(seqs(index.after(9995, '>', 2))).to.deep.equal([9996, 9998]);
      expect(index.stats()).to.include({
        events: 10,
        firstSequence: 9982,
        lastSequence: 10000,
        dropped: 4990,
      });
    });

    it('no rule at all keeps everything', () => {
      const index = new StreamIndex([]);
      for (let s = 1; s <= 100; s++) expect(index.append(ev(s, 'a', 1000, s))).to.deep.equal([]);
      expect(index.expire(1e12)).to.deep.equal([]);
      expect(index.stats('')).to.include({ events: 100, bytes: 100000 });
    });
  });

  describe('per-prefix isolation', () => {
    const rules: RetentionRule[] = [
      { prefix: '', maxEvents: 100 },
      { prefix: 'metrics', maxEvents: 2, maxAgeMs: 10 },
    ];

    it('a noisy prefix drops only its own events', () => {
      const index = new StreamIndex(rules);
      index.append(ev(1, 'orders.created', 1, 0));
      const dropped: number[] = [];
      for (let s = 2; s <= 50; s++) dropped.push(...index.append(ev(s, 'metrics.cpu', 1, 0)));
      expect(dropped).to.deep.equal(Array.from({ length: 47 }, (_, i) => i + 2));
      expect(index.expire(1000)).to.deep.equal([49, 50]);
      expect(seqs(index.after(0, '>', 100))).to.deep.equal([1]);
      expect(index.stats('metrics')).to.include({ events: 0, dropped: 49 });
      expect(index.stats('')).to.include({ events: 1, dropped: 0 });
    });

    it('limits are per bucket, not nested: the parent rule does not count the child prefix', () => {
      const index = new StreamIndex([
        { prefix: '', maxEvents: 1 },
        { prefix: 'orders', maxEvents: 5 },
      ]);
      for (let s = 1; s <= 4; s++) expect(index.append(ev(s, 'orders.x'))).to.deep.equal([]);
      expect(index.append(ev(5, 'other'))).to.deep.equal([]);
      expect(index.append(ev(6, 'other'))).to.deep.equal([5]);
      expect(index.size).to.equal(5);
    });

    it('stats by rule prefix, totals without one, and undefined for a prefix with no rule', () => {
      const index = new StreamIndex(rules);
      index.append(ev(3, 'orders.a', 7));
      index.append(ev(8, 'metrics.cpu', 5));
      index.append(ev(9, 'metrics.mem', 5));
      expect(index.stats()).to.deep.equal({
        events: 3,
        bytes: 17,
        firstSequence: 3,
        lastSequence: 9,
        dropped: 0,
      });
      expect(index.stats('metrics')).to.deep.equal({
        events: 2,
        bytes: 10,
        firstSequence: 8,
        lastSequence: 9,
        dropped: 0,
      });
      expect(index.stats('orders')).to.equal(undefined);
      expect(index.streams().map((s) => [s.rule.prefix, s.stats.events])).to.deep.equal([
        ['', 1],
        ['metrics', 2],
      ]);
    });
  });

  describe('reading', () => {
    const filled = () => {
      const index = new StreamIndex([{ prefix: 'metrics', maxEvents: 100 }]);
      const topics = ['orders.created', 'metrics.cpu', 'orders.paid.eu', 'payments.x', 'orders.created'];
      topics.forEach((topic, i) => index.append(ev(10 * (i + 1), topic)));
      return index;
    };

    it('after returns matching events above the sequence, in order, at most max', () => {
      const index = filled();
      expect(seqs(index.after(0, '>', 100))).to.deep.equal([10, 20, 30, 40, 50]);
      expect(seqs(index.after(10, '>', 100))).to.deep.equal([20, 30, 40, 50]);
      expect(seqs(index.after(15, '>', 2))).to.deep.equal([20, 30]);
      expect(seqs(index.after(0, 'orders.>', 100))).to.deep.equal([10, 30, 50]);
      expect(seqs(index.after(0, 'orders.*', 100))).to.deep.equal([10, 50]);
      expect(seqs(index.after(10, 'orders.created', 100))).to.deep.equal([50]);
      expect(seqs(index.after(0, '*.cpu', 100))).to.deep.equal([20]);
      expect(seqs(index.after(50, '>', 100))).to.deep.equal([]);
      expect(index.after(0, '>', 0)).to.deep.equal([]);
      expect(() => index.after(0, 'ord*', 1)).to.throw(TwinstarError);
    });

    it('first and last, with and without a pattern', () => {
      const index = filled();
      expect(index.first()).to.equal(10);
      expect(index.last()).to.equal(50);
      expect(index.first('metrics.>')).to.equal(20);
      expect(index.last('metrics.>')).to.equal(20);
      expect(index.first('orders.paid.*')).to.equal(30);
      expect(index.last('payments.*')).to.equal(40);
      expect(index.first('nothing.here')).to.equal(undefined);
      expect(index.last('nothing.here')).to.equal(undefined);
    });

    it('refuses an event out of order or malformed', () => {
      const index = filled();
      expect(() => index.append(ev(50, 'a'))).to.throw(TwinstarError, /not above/);
      expect(() => index.append(ev(60, 'a.*'))).to.throw(TwinstarError, /wildcard/);
      expect(() => index.append(ev(60, 'a', -1))).to.throw(TwinstarError, /size/);
      expect(() => index.append(ev(60, 'a', 1, Number.NaN))).to.throw(TwinstarError, /time/);
      expect(() => index.append(ev(60.5, 'a'))).to.throw(TwinstarError, /sequence/);
      expect(index.last()).to.equal(50);
    });
  });

  describe('covers', () => {
    it('is true until something above the sequence is dropped, then exactly from the newest dropped', () => {
      const index = new StreamIndex([{ prefix: '', maxEvents: 2 }]);
      expect(index.covers(0)).to.equal(true);
      index.append(ev(5, 'a'));
      index.append(ev(6, 'a'));
      expect(index.covers(0)).to.equal(true);
      index.append(ev(7, 'a')); // drops 5
      expect(index.covers(4)).to.equal(false);
      expect(index.covers(5)).to.equal(true); // the reader saw 5: nothing after it was lost
      expect(index.covers(6)).to.equal(true);
    });

    it('sees holes a noisy bucket leaves above a quiet one, and a pattern narrows it to the buckets it reaches', () => {
      const index = new StreamIndex([
        { prefix: '', maxEvents: 100 },
        { prefix: 'metrics', maxEvents: 1 },
      ]);
      index.append(ev(1, 'orders.a'));
      index.append(ev(2, 'metrics.cpu'));
      index.append(ev(3, 'metrics.cpu')); // drops 2, while 1 is still held
      expect(index.first()).to.equal(1);
      expect(index.covers(1)).to.equal(false);
      expect(index.covers(2)).to.equal(true);
      expect(index.covers(1, 'orders.>')).to.equal(true);
      expect(index.covers(1, 'metrics.*')).to.equal(false);
      expect(index.covers(1, '*.cpu')).to.equal(false);
    });
  });

  describe('against a plain-array model (property)', () => {
    const rules: RetentionRule[] = [
      { prefix: '', maxEvents: 6, maxBytes: 40 },
      { prefix: 'a', maxEvents: 3, maxAgeMs: 20 },
      { prefix: 'a.b', maxBytes: 12 },
      { prefix: 'c', maxAgeMs: 30 },
    ];
    const topic = fc
      .array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 })
      .map((t) => t.join('.'));
    const pattern = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', 'c', '*'), { minLength: 1, maxLength: 3 }), fc.boolean())
      .map(([tokens, rest]) => (rest ? [...tokens.slice(0, -1), '>'] : tokens).join('.'));
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('append' as const),
        gap: fc.integer({ min: 1, max: 3 }),
        topic,
        bytes: fc.integer({ min: 0, max: 15 }),
        dt: fc.integer({ min: -5, max: 15 }),
      }),
      fc.record({ kind: fc.constant('expire' as const), dt: fc.integer({ min: 0, max: 40 }) }),
      fc.record({
        kind: fc.constant('read' as const),
        pattern,
        back: fc.integer({ min: 0, max: 20 }),
        max: fc.integer({ min: 0, max: 8 }),
      }),
    );

    it('drops, reads, first/last, covers and stats agree with the model', () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
          const index = new StreamIndex(rules);
          let held: StreamEvent[] = [];
          const dropped: StreamEvent[] = [];
          let sequence = 0;
          let now = 0;
          const bucketOf = (t: string) => ruleFor(rules, t)!;
          // Drops from one rule's events, oldest first, while `over` says so; the model's reading of the doc.
          const dropWhile = (rule: RetentionRule, over: (mine: StreamEvent[]) => boolean) => {
            const out: number[] = [];
            for (;;) {
              const mine = held.filter((e) => bucketOf(e.topic) === rule);
              if (mine.length === 0 || !over(mine)) return out;
              held = held.filter((e) => e !== mine[0]);
              dropped.push(mine[0]!);
              out.push(mine[0]!.sequence);
            }
          };
          const overSize = (rule: RetentionRule) => (mine: StreamEvent[]) =>
            mine.length > 1 &&
            ((rule.maxEvents !== undefined && mine.length > rule.maxEvents) ||
              (rule.maxBytes !== undefined && mine.reduce((n, e) => n + e.bytes, 0) > rule.maxBytes));
          for (const o of ops) {
            if (o.kind === 'append') {
              sequence += o.gap;
              now += o.dt;
              const event = ev(sequence, o.topic, o.bytes, now);
              held.push(event);
              const rule = bucketOf(o.topic);
              expect(index.append(event)).to.deep.equal(dropWhile(rule, overSize(rule)));
            } else if (o.kind === 'expire') {
              now += o.dt;
              const expected = rules
                .flatMap((rule) =>
                  dropWhile(
                    rule,
                    (mine) => rule.maxAgeMs !== undefined && now - mine[0]!.time > rule.maxAgeMs,
                  ),
                )
                .sort((x, y) => x - y);
              expect(index.expire(now)).to.deep.equal(expected);
            } else {
              const from = sequence - o.back;
              const want = held.filter((e) => e.sequence > from && matches(o.pattern, e.topic));
              expect(seqs(index.after(from, o.pattern, o.max))).to.deep.equal(seqs(want.slice(0, o.max)));
              const matching = seqs(held.filter((e) => matches(o.pattern, e.topic)));
              expect(index.first(o.pattern)).to.equal(matching[0]);
              expect(index.last(o.pattern)).to.equal(matching[matching.length - 1]);
              const lost = dropped.some((e) => e.sequence > from);
              expect(index.covers(from)).to.equal(!lost);
              // With a pattern, covers may only be more cautious, never claim what was lost.
              if (dropped.some((e) => e.sequence > from && matches(o.pattern, e.topic)))
                expect(index.covers(from, o.pattern)).to.equal(false);
            }
            const all = seqs(held);
            expect(index.first()).to.equal(all[0]);
            expect(index.last()).to.equal(all[all.length - 1]);
            expect(index.stats()).to.deep.equal({
              events: held.length,
              bytes: held.reduce((n, e) => n + e.bytes, 0),
              firstSequence: all[0],
              lastSequence: all[all.length - 1],
              dropped: dropped.length,
            });
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
