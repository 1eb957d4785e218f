/**
 * The consumer group machine (src/events/group.ts), one rule at a time on a fake clock: ack wait
 * redelivery, maxDeliver to a dead letter, nak with a delay, working, term, leave, a durable
 * group's backlog, stale acks, flow control, and the passive fed only the sequenced ops.
 */
import { expect } from 'chai';
import { GroupMachine } from '../../../src/events/group.js';
import type { GroupConfig, GroupOp, StreamView } from '../../../src/events/group-ops.js';

const T0 = 1_700_000_000_000;

const CONFIG: GroupConfig = {
  name: 'billing',
  ackWaitMs: 1_000,
  maxDeliver: 3,
  maxAckPending: 10,
  durable: true,
};

/** An active and a passive: every op the test or `decide` produces is applied to both, in order. */
class Pair {
  readonly active: GroupMachine;
  readonly passive: GroupMachine;
  now = T0;
  head = 0;
  readonly log: GroupOp[] = [];

  constructor(config: Partial<GroupConfig> = {}) {
    this.active = new GroupMachine({ ...CONFIG, ...config });
    this.passive = new GroupMachine({ ...CONFIG, ...config });
  }

  apply(op: GroupOp): string {
    this.log.push(op);
    const result = this.active.apply(op);
    expect(this.passive.apply(op)).to.equal(result);
    return result;
  }

  join(member: string): void {
    expect(this.apply({ type: 'join', member, at: this.now })).to.equal('applied');
  }

  publish(n: number): void {
    this.head += n;
  }

  /** Every stream event matches; the view covers the whole stream. */
  view(): StreamView {
    const candidates: number[] = [];
    for (let s = this.active.considered + 1; s <= this.head; s++) candidates.push(s);
    return { candidates, upTo: this.head };
  }

  /** Sequences what the active decides now; returns the deliveries as [event, member]. */
  step(advanceMs = 0): [number, string][] {
    this.now += advanceMs;
    const ops = this.active.decide(this.now, this.view());
    for (const op of ops) expect(this.apply(op)).to.equal('applied');
    expect(this.passive.toJSON()).to.deep.equal(this.active.toJSON());
    return ops.flatMap((op) => (op.type === 'deliver' ? [[op.event, op.member] as [number, string]] : []));
  }

  types(ops = this.log): string[] {
    return ops.map((op) => op.type);
  }
}

describe('GroupMachine', () => {
  it('gives each new event to one member, least loaded first, ties to the smallest id', () => {
    const g = new Pair();
    g.join('b');
    g.join('a');
    g.publish(4);
    expect(g.step()).to.deep.equal([
      [1, 'a'],
      [2, 'b'],
      [3, 'a'],
      [4, 'b'],
    ]);
    expect(g.active.stats(g.head)).to.deep.include({ lag: 0, pending: 4 });
  });

  it('redelivers an event not acked within ackWaitMs to another member, and ignores the late ack', () => {
    const g = new Pair({ maxAckPending: 1 });
    g.join('a');
    g.publish(1);
    expect(g.step()).to.deep.equal([[1, 'a']]);
    g.join('b');
    expect(g.step(999), 'not before the ack wait').to.deep.equal([]);
    expect(g.active.nextDeadline()).to.equal(T0 + 1_000);
    expect(g.step(1)).to.deep.equal([[1, 'b']]);
    expect(g.types().slice(-2)).to.deep.equal(['expire', 'deliver']);
    expect(g.apply({ type: 'ack', event: 1, member: 'a' }), 'a stale ack').to.equal('ignored');
    expect(g.active.stats(g.head)).to.deep.include({ pending: 1, acked: 0, redeliveries: 1, ignored: 1 });
    expect(g.apply({ type: 'ack', event: 1, member: 'b' })).to.equal('applied');
    expect(g.active.stats(g.head)).to.deep.include({ pending: 0, acked: 1 });
  });

  it('dead-letters an event after maxDeliver deliveries, and never delivers it again', () => {
    const g = new Pair({ maxDeliver: 2 });
    g.join('a');
    g.publish(1);
    expect(g.step()).to.deep.equal([[1, 'a']]);
    expect(g.step(1_000)).to.deep.equal([[1, 'a']]);
    expect(g.step(1_000)).to.deep.equal([]);
    expect(g.types().slice(-1)).to.deep.equal(['dead-letter']);
    expect(g.active.stats(g.head)).to.deep.include({
      pending: 0,
      waiting: 0,
      deadLetters: 1,
      redeliveries: 1,
    });
    expect(g.step(10_000)).to.deep.equal([]);
    expect(g.apply({ type: 'deliver', event: 1, member: 'a', deadline: g.now + 1 }), 'a done event').to.equal(
      'ignored',
    );
  });

  it('redelivers a nak with a delay after the delay, not before, to any member', () => {
    const g = new Pair();
    g.join('a');
    g.publish(1);
    g.step();
    g.apply({ type: 'nak', event: 1, member: 'a', notBefore: g.now + 500 });
    expect(g.active.stats(g.head)).to.deep.include({ pending: 0, waiting: 1 });
    expect(g.active.nextDeadline()).to.equal(T0 + 500);
    expect(g.step(499)).to.deep.equal([]);
    expect(g.step(1)).to.deep.equal([[1, 'a']]);
  });

  it('a nak on the last allowed delivery ends in a dead letter once its delay is over', () => {
    const g = new Pair({ maxDeliver: 1 });
    g.join('a');
    g.publish(1);
    g.step();
    g.apply({ type: 'nak', event: 1, member: 'a', notBefore: g.now + 500 });
    expect(g.step(499)).to.deep.equal([]);
    expect(g.active.stats(g.head).deadLetters).to.equal(0);
    g.step(1);
    expect(g.active.stats(g.head)).to.deep.include({ deadLetters: 1, waiting: 0 });
  });

  it('working moves the ack deadline', () => {
    const g = new Pair();
    g.join('a');
    g.publish(1);
    g.step();
    g.now += 900;
    g.apply({ type: 'working', event: 1, member: 'a', deadline: g.now + 1_000 });
    expect(g.active.nextDeadline()).to.equal(T0 + 1_900);
    expect(g.step(999)).to.deep.equal([]);
    expect(g.types()).to.not.include('expire');
    expect(g.step(1)).to.deep.equal([[1, 'a']]);
  });

  it('term ends an event for good: no redelivery, no dead letter', () => {
    const g = new Pair();
    g.join('a');
    g.publish(1);
    g.step();
    expect(g.apply({ type: 'term', event: 1, member: 'a' })).to.equal('applied');
    expect(g.step(10_000)).to.deep.equal([]);
    expect(g.active.stats(g.head)).to.deep.include({ termed: 1, deadLetters: 0, pending: 0, waiting: 0 });
  });

  it('leave releases what the member held to the others at once', () => {
    const g = new Pair();
    g.join('a');
    g.join('b');
    g.publish(2);
    expect(g.step()).to.deep.equal([
      [1, 'a'],
      [2, 'b'],
    ]);
    g.apply({ type: 'leave', member: 'a', at: g.now });
    expect(g.step(), 'before any ack wait').to.deep.equal([[1, 'b']]);
    expect(g.active.stats(g.head).members).to.deep.equal([{ id: 'b', inFlight: 2 }]);
  });

  it('a durable group with no member keeps its backlog, and a member that joins gets it in order', () => {
    const g = new Pair({ maxAckPending: 3 });
    g.publish(5);
    expect(g.step()).to.deep.equal([]);
    expect(g.active.abandoned()).to.equal(false);
    expect(g.active.stats(g.head).lag).to.equal(5);
    g.join('late');
    expect(g.step().map(([e]) => e)).to.deep.equal([1, 2, 3]);
    for (const e of [1, 2, 3]) g.apply({ type: 'ack', event: e, member: 'late' });
    expect(g.step().map(([e]) => e)).to.deep.equal([4, 5]);
    expect(g.active.stats(g.head)).to.deep.include({ lag: 0, acked: 3 });
  });

  it('a non-durable group with no member left is abandoned', () => {
    const g = new Pair({ durable: false });
    expect(g.active.abandoned()).to.equal(true);
    g.join('a');
    expect(g.active.abandoned()).to.equal(false);
    g.apply({ type: 'leave', member: 'a', at: g.now });
    expect(g.active.abandoned()).to.equal(true);
  });

  it('a full member gets no more and does not block the others', () => {
    const g = new Pair({ maxAckPending: 2 });
    g.join('slow');
    g.publish(2);
    g.step();
    g.join('fast');
    g.publish(3);
    expect(g.step()).to.deep.equal([
      [3, 'fast'],
      [4, 'fast'],
    ]);
    expect(g.step(), 'both full: event 5 waits, the cursor stops before it').to.deep.equal([]);
    expect(g.active.considered).to.equal(4);
    g.apply({ type: 'ack', event: 3, member: 'fast' });
    expect(g.step()).to.deep.equal([[5, 'fast']]);
    expect(
      g.apply({ type: 'deliver', event: 6, member: 'slow', deadline: g.now }),
      'over maxAckPending',
    ).to.equal('ignored');
  });

  it('advance moves the cursor past events that are not the group’s, so lag counts only what is left', () => {
    const g = new Pair();
    g.join('a');
    g.head = 10;
    const ops = g.active.decide(g.now, { candidates: [4, 7], upTo: 10 });
    expect(g.types(ops)).to.deep.equal(['deliver', 'deliver', 'advance']);
    for (const op of ops) g.apply(op);
    expect(g.active.stats(10).lag).to.equal(0);
    expect(g.apply({ type: 'advance', upTo: 9 }), 'the cursor never goes back').to.equal('ignored');
  });

  it('skips candidates at or below the cursor (a view computed before the last ops were applied)', () => {
    const g = new Pair();
    g.join('a');
    g.publish(2);
    g.step();
    const ops = g.active.decide(g.now, { candidates: [1, 2, 3], upTo: 3 });
    expect(ops).to.deep.equal([{ type: 'deliver', event: 3, member: 'a', deadline: g.now + 1_000 }]);
  });

  it('ignores ops from unknown members and for unknown events, without throwing', () => {
    const g = new Pair();
    g.join('a');
    const stale: GroupOp[] = [
      { type: 'join', member: 'a', at: g.now },
      { type: 'leave', member: 'x', at: g.now },
      { type: 'ack', event: 42, member: 'a' },
      { type: 'nak', event: 42, member: 'a', notBefore: g.now },
      { type: 'working', event: 42, member: 'a', deadline: g.now },
      { type: 'term', event: 42, member: 'a' },
      { type: 'expire', event: 42 },
      { type: 'dead-letter', event: 42 },
      { type: 'deliver', event: 1, member: 'x', deadline: g.now },
    ];
    for (const op of stale) expect(g.apply(op), op.type).to.equal('ignored');
    expect(g.active.stats(0).ignored).to.equal(stale.length);
  });

  it('three members, 10,000 events, each acked as delivered: every event is acked exactly once', () => {
    const g = new Pair({ maxAckPending: 64 });
    for (const m of ['a', 'b', 'c']) g.join(m);
    g.publish(10_000);
    const acks = new Array<number>(10_001).fill(0);
    for (let round = 0; round < 1_000 && g.active.stats(g.head).acked < 10_000; round++)
      for (const [event, member] of g.step(1)) {
        expect(g.apply({ type: 'ack', event, member })).to.equal('applied');
        acks[event]!++;
      }
    expect(acks.slice(1).every((n) => n === 1)).to.equal(true);
    expect(g.active.stats(g.head)).to.deep.include({ lag: 0, pending: 0, acked: 10_000, redeliveries: 0 });
  });

  it('max bounds the ops one decision returns', () => {
    const g = new Pair();
    g.join('a');
    g.publish(5);
    expect(g.active.decide(g.now, g.view(), 2)).to.have.length(2);
  });

  it('toJSON/fromJSON carry the whole state: the copy decides and applies as the original', () => {
    const g = new Pair({ maxAckPending: 2 });
    g.join('a');
    g.join('b');
    g.publish(6);
    g.step();
    g.apply({ type: 'nak', event: 2, member: 'b', notBefore: g.now + 50 });
    const copy = GroupMachine.fromJSON(JSON.parse(JSON.stringify(g.active.toJSON())));
    expect(copy.toJSON()).to.deep.equal(g.active.toJSON());
    const later = g.now + 2_000;
    expect(copy.decide(later, g.view())).to.deep.equal(g.active.decide(later, g.view()));
    expect(copy.nextDeadline()).to.equal(g.active.nextDeadline());
  });

  it('refuses a configuration it cannot run', () => {
    expect(() => new GroupMachine({ ...CONFIG, maxDeliver: 0 })).to.throw(/maxDeliver/);
    expect(() => new GroupMachine({ ...CONFIG, ackWaitMs: 1.5 })).to.throw(/ackWaitMs/);
  });
});
