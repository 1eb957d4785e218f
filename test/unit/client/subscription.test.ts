/**
 * One subscription on its own (src/client/subscription.ts), with a recording control in place of
 * the manager: what the application takes and when, the bounded buffer, how it ends, and the
 * options as they go on the wire.
 */
import { expect } from 'chai';
import {
  eventOf,
  subscribeOptions,
  Subscription,
  type SubscriptionControl,
  type SubscriptionEvent,
} from '../../../src/client/subscription.js';
import { InvalidArgumentError, ServerRejectedError } from '../../../src/errors.js';

function setup(maxBuffered = 10) {
  const taken: number[] = [];
  const problems: string[] = [];
  const acks: [number, string, number][] = [];
  const control: SubscriptionControl = {
    taken: (_, e) => taken.push(e.sequence),
    unsubscribe: () => Promise.resolve(),
    ready: () => Promise.resolve(),
    problem: (message) => problems.push(message),
  };
  const sub = new Subscription(1, 'a.>', undefined, control, maxBuffered);
  const event = (sequence: number): SubscriptionEvent =>
    eventOf(
      {
        key: 'a.b',
        sequence,
        uuid: '',
        properties: 'k=v\n',
        body: Buffer.from(`d${sequence}`),
        expiresAt: 0,
      },
      1,
      (kind, delayMs) => {
        acks.push([sequence, kind, delayMs]);
        return Promise.resolve();
      },
    );
  return { sub, taken, problems, acks, event };
}

describe('Subscription (one subscription, without the client)', () => {
  it('with no loop open, an event is taken when it is emitted', () => {
    const s = setup();
    const heard: number[] = [];
    s.sub.on('event', (e) => heard.push(e.sequence));
    s.sub.deliver(s.event(1));
    s.sub.deliver(s.event(2));
    expect(heard).to.deep.equal([1, 2]);
    expect(s.taken).to.deep.equal([1, 2]);
    expect(s.sub.buffered).to.equal(0);
  });

  it('with a loop open, an event is taken when the loop gets it; what a loop leaves (break) waits for the next loop', async () => {
    const s = setup();
    const iterator = s.sub[Symbol.asyncIterator]();
    for (let i = 1; i <= 4; i++) s.sub.deliver(s.event(i));
    expect(s.taken, 'buffered, not taken').to.deep.equal([]);
    expect((await iterator.next()).value!.sequence).to.equal(1);
    expect(s.taken).to.deep.equal([1]);
    await iterator.return!();
    expect((await iterator.next()).done).to.equal(true);
    expect(s.taken, 'not taken by the loop that ended').to.deep.equal([1]);
    expect(s.sub.buffered).to.equal(3);
    const next: number[] = [];
    for await (const e of s.sub) {
      next.push(e.sequence);
      if (next.length === 3) break;
    }
    expect(next).to.deep.equal([2, 3, 4]);
    expect(s.taken).to.deep.equal([1, 2, 3, 4]);
  });

  it('with no loop and no listener yet, events wait in the buffer for a loop started later', async () => {
    const s = setup();
    s.sub.deliver(s.event(1));
    s.sub.deliver(s.event(2));
    expect(s.taken).to.deep.equal([]);
    expect(s.sub.buffered).to.equal(2);
    const got: number[] = [];
    for await (const e of s.sub) {
      got.push(e.sequence);
      if (got.length === 2) break;
    }
    expect(got).to.deep.equal([1, 2]);
    expect(s.taken).to.deep.equal([1, 2]);
  });

  it('a loop that ends while it waits finishes; another loop still gets the next event', async () => {
    const s = setup();
    const first = s.sub[Symbol.asyncIterator]();
    const second = s.sub[Symbol.asyncIterator]();
    const waiting = first.next();
    const other = second.next();
    await first.return!();
    expect((await waiting).done).to.equal(true);
    s.sub.deliver(s.event(5));
    expect((await other).value!.sequence).to.equal(5);
  });

  it('a loop waiting for the next event gets it at once; ending the subscription finishes the loop', async () => {
    const s = setup();
    const got: number[] = [];
    const loop = (async () => {
      for await (const e of s.sub) got.push(e.sequence);
      return 'done';
    })();
    await new Promise((resolve) => setImmediate(resolve));
    s.sub.deliver(s.event(7));
    await new Promise((resolve) => setImmediate(resolve));
    expect(got).to.deep.equal([7]);
    s.sub.end();
    expect(await loop).to.equal('done');
    expect(s.sub.closed).to.equal(true);
  });

  it('ended with an error: the loop rejects with it, error is emitted only to a listener, ready() rejects', async () => {
    const s = setup();
    const error = new ServerRejectedError('group-mismatch', 'no');
    s.sub.failed(error);
    expect(() => s.sub.end(error), 'no error listener: nothing thrown').to.not.throw();
    let caught: unknown;
    try {
      for await (const _ of s.sub) void _;
    } catch (e) {
      caught = e;
    }
    expect(caught).to.equal(error);
    expect(await s.sub.ready().catch((e: unknown) => e)).to.equal(error);
    const t = setup();
    const heard: Error[] = [];
    t.sub.on('error', (e) => heard.push(e));
    t.sub.end(error);
    expect(heard).to.deep.equal([error]);
  });

  it('holds at most maxBuffered events for a loop: beyond, the oldest are dropped and said', async () => {
    const s = setup(3);
    const iterator = s.sub[Symbol.asyncIterator]();
    for (let i = 1; i <= 5; i++) s.sub.deliver(s.event(i));
    expect(s.sub.buffered).to.equal(3);
    expect(s.problems).to.have.length(2);
    expect((await iterator.next()).value!.sequence).to.equal(3);
  });

  it('a listener that throws does not stop delivery, and is reported', () => {
    const s = setup();
    s.sub.on('event', () => {
      throw new Error('bug');
    });
    s.sub.deliver(s.event(1));
    s.sub.deliver(s.event(2));
    expect(s.taken).to.deep.equal([1, 2]);
    expect(s.problems).to.have.length(2);
  });

  it('an event carries its fields and its four acknowledgements', async () => {
    const s = setup();
    const e = s.event(9);
    expect([e.topic, e.data.toString(), e.headers, e.sequence, e.deliveryCount]).to.deep.equal([
      'a.b',
      'd9',
      { k: 'v' },
      9,
      1,
    ]);
    await Promise.all([e.ack(), e.nak(), e.nak(250), e.working(), e.term()]);
    expect(s.acks).to.deep.equal([
      [9, 'ack', 0],
      [9, 'nak', 0],
      [9, 'nak', 250],
      [9, 'working', 0],
      [9, 'term', 0],
    ]);
  });

  it('subscribeOptions: the options as TESUB name=value pairs', () => {
    expect(subscribeOptions('a.*', undefined)).to.deep.equal({});
    expect(subscribeOptions('a.*', { from: 'first', maxAckPending: 5 })).to.deep.equal({
      from: 'first',
      maxAckPending: '5',
    });
    expect(subscribeOptions('>', { from: { sequence: 1 } })).to.deep.equal({ from: '1' });
    // sequences start at 1: the server refuses from=0
    expect(() => subscribeOptions('>', { from: { sequence: 0 } })).to.throw(InvalidArgumentError);
    expect(
      subscribeOptions('a', { group: 'g-1', from: 'new', ackWaitMs: 10, maxDeliver: 2, durable: true }),
    ).to.deep.equal({ group: 'g-1', from: 'new', ackWaitMs: '10', maxDeliver: '2', durable: '1' });
    expect(() => subscribeOptions('a', { group: 'g', from: 'soon' })).to.throw(InvalidArgumentError);
    expect(() => subscribeOptions('a', { maxAckPending: 2 ** 32 })).to.throw(InvalidArgumentError);
    expect(() => subscribeOptions('a', { durable: false })).to.throw(InvalidArgumentError);
  });
});
