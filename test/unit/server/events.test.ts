/**
 * The event bus on the server (src/server/dispatcher.ts, handlers/events.ts) through the router,
 * on a fake context around a real Store: publish, fan-out, consumer groups, acks, nak delays,
 * dead letters, member timeouts, and that events stay out of what key-value clients see.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { eventKey } from '../../../src/events/index.js';
import type { EventAck, NativeReply } from '../../../src/wire/native.js';
import type { PackedEntry } from '../../../src/wire/packed.js';
import { harness, turn, write } from './router-harness.js';
import { waitFor } from '../../support/wait.js';

const A = Buffer.from('client-a');
const B = Buffer.from('client-b');
const P = Buffer.from('publisher');

const event = (topic: string, data: string, properties = ''): PackedEntry => ({
  key: topic,
  sequence: 0,
  uuid: randomBytes(16).toString('latin1'),
  properties,
  body: Buffer.from(data),
  expiresAt: 0,
});

type Evt = Extract<NativeReply, { command: 'TEVT' }>;
const delivered = (
  replies: NativeReply[],
): { sequence: number; topic: string; data: string; count: number }[] =>
  replies
    .filter((r): r is Evt => r.command === 'TEVT')
    .flatMap((r) =>
      r.events.map((e, i) => ({
        sequence: e.sequence,
        topic: e.key,
        data: e.body.toString(),
        count: r.counts[i]!,
      })),
    );

function bus(options: Parameters<typeof harness>[0] = {}) {
  const h = harness(options);
  h.dispatcher.start();
  let reqId = 100;
  const publish = (...events: PackedEntry[]) => h.send({ command: 'TEPUB', reqId: reqId++, events }, P);
  const subscribe = (identity: Buffer, subId: number, pattern: string, options: Record<string, string>) =>
    h.send({ command: 'TESUB', reqId: reqId++, subId, pattern, options }, identity);
  const ack = (identity: Buffer, subId: number, acks: EventAck[]) =>
    h.send({ command: 'TEACK', reqId: reqId++, subId, acks }, identity);
  const ok = (identity: Buffer) => h.repliesTo(identity).filter((r) => r.command === 'TEOK').length;
  return { ...h, publish, subscribe, ack, ok };
}

describe('server: the event bus through the router (fake context, real store)', function () {
  this.timeout(10_000);
  const open: { dispatcher: { stop(): void } }[] = [];
  afterEach(() => {
    for (const h of open.splice(0)) h.dispatcher.stop();
  });
  const make = (options: Parameters<typeof harness>[0] = {}) => {
    const h = bus(options);
    open.push(h);
    return h;
  };

  it('TEPUB is acknowledged with one sequence per event; events are not keys a client sees', async () => {
    const h = make();
    h.send({ command: 'TSET', reqId: 1, writes: [write('/k')] }, P);
    h.publish(event('orders.created', 'one'), event('orders.paid', 'two', 'source=web\n'));
    await waitFor(() => h.repliesTo(P).length === 2, 2000, 'two acks');
    const [, ack] = h.repliesTo(P);
    expect(ack).to.deep.equal({ command: 'TACK', reqId: 100, sequences: [2, 3], durability: 'single' });
    expect(h.store.map.get(eventKey(3))?.body.toString()).to.equal('two');
    expect(h.store.keyCount).to.equal(1);
    const { view } = h.store.keysView('');
    expect(view.next(100).map((e) => e.key)).to.deep.equal(['/k']);
    expect(h.store.keyChangesSince(0)!.map((e) => e.key)).to.deep.equal(['/k']);
    expect(h.store.keysView(eventKey(2)).view.next(10)).to.deep.equal([]);
  });

  it('the allow-list: a publish or subscription outside the client’s topic prefixes is refused access-denied', async () => {
    const { Principal } = await import('../../../src/security/index.js');
    const limited = new Principal('limited', 'KEY', [], [], ['orders'], ['orders']);
    const h = make({
      guard: new Map([
        [P.toString(), limited],
        [A.toString(), limited],
      ]),
    });
    h.publish(event('orders.created', 'ok'));
    h.publish(event('orders.created', 'ok'), event('billing.paid', 'no'));
    h.subscribe(A, 1, '>', { member: 'a:1' });
    h.subscribe(A, 2, 'orders.*', { member: 'a:2' });
    await waitFor(() => h.repliesTo(P).length === 2 && h.repliesTo(A).length === 2, 2000, 'four answers');
    // a refusal is answered at once, an acknowledgement once durable: find each by its request id
    const byId = new Map(h.repliesTo(P).map((r) => [(r as { reqId: number }).reqId, r]));
    expect(byId.get(100)!.command).to.equal('TACK');
    expect(byId.get(101)).to.deep.include({ command: 'TERROR', reason: 'access-denied', refused: [1] });
    expect(h.repliesTo(A).map((r) => (r as { reason?: string }).reason ?? r.command)).to.deep.equal([
      'access-denied',
      'TEOK',
    ]);
    expect(h.store.bus.index.size, 'only the allowed publish was stored').to.equal(1);
  });

  it('a bad topic refuses the whole TEPUB, and a TSET may not write the reserved namespace', async () => {
    const h = make();
    h.publish(event('orders.created', 'ok'), event('orders.*', 'bad'));
    h.send({ command: 'TSET', reqId: 1, writes: [write('/ok'), write(eventKey(1))] }, P);
    await waitFor(() => h.repliesTo(P).length === 2, 2000, 'two refusals');
    const [pub, set] = h.repliesTo(P) as { reason?: string }[];
    expect(pub).to.include({ command: 'TERROR', reason: 'invalid-topic' });
    expect(set).to.include({ command: 'TERROR', reason: 'reserved-key' });
    expect(h.store.sequence).to.equal(0);
  });

  it('a group of two: each event goes to exactly one member; acks empty the group', async () => {
    const h = make();
    h.subscribe(A, 1, 'orders.>', { member: 'a:1', group: 'billing' });
    h.subscribe(B, 1, 'orders.>', { member: 'b:1', group: 'billing' });
    await waitFor(() => h.ok(A) === 1 && h.ok(B) === 1, 2000, 'both subscribed');
    for (let i = 0; i < 20; i++) h.publish(event(i % 2 ? 'orders.created' : 'orders.paid.eu', `e${i}`));
    h.publish(event('other.topic', 'not theirs'));
    const got = () => [...delivered(h.repliesTo(A)), ...delivered(h.repliesTo(B))];
    await waitFor(() => got().length === 20, 3000, 'twenty deliveries');
    const sequences = got().map((e) => e.sequence);
    expect(new Set(sequences).size, 'no event twice').to.equal(20);
    expect(delivered(h.repliesTo(A)).length, 'member a had work').to.be.greaterThan(0);
    expect(delivered(h.repliesTo(B)).length, 'member b had work').to.be.greaterThan(0);
    for (const [who, sub] of [
      [A, 1],
      [B, 1],
    ] as const)
      h.ack(
        who,
        sub,
        delivered(h.repliesTo(who)).map((e) => ({ sequence: e.sequence, kind: 'ack', delayMs: 0 })),
      );
    const group = () => h.store.bus.groups.get('billing')!;
    // the last event was not the group's: the cursor moves past it once there is nothing to do
    await waitFor(() => group().stats(h.store.bus.index.last()!).lag === 0, 2000, 'the cursor at the head');
    await waitFor(() => group().stats(h.store.bus.index.last()!).acked === 20, 2000, 'all acked');
    const stats = group().stats(h.store.bus.index.last()!);
    expect([stats.pending, stats.waiting, stats.lag]).to.deep.equal([0, 0, 0]);
  });

  it('fan-out: every subscriber gets every matching event, at most its window unseen at a time', async () => {
    const h = make();
    h.subscribe(A, 1, 'orders.*', { member: 'a:1', maxAckPending: '3' });
    h.subscribe(B, 2, '>', { member: 'b:2' });
    await waitFor(() => h.ok(A) === 1 && h.ok(B) === 1, 2000, 'both subscribed');
    for (let i = 0; i < 5; i++) h.publish(event('orders.created', `e${i}`));
    h.publish(event('orders.paid.eu', 'deep'));
    await waitFor(() => delivered(h.repliesTo(B)).length === 6, 2000, 'b gets all six');
    await waitFor(() => delivered(h.repliesTo(A)).length === 3, 2000, 'a gets its window');
    expect(delivered(h.repliesTo(A)).map((e) => e.data)).to.deep.equal(['e0', 'e1', 'e2']);
    const third = delivered(h.repliesTo(A))[2]!.sequence;
    h.ack(A, 1, [{ sequence: third, kind: 'seen', delayMs: 0 }]);
    await waitFor(() => delivered(h.repliesTo(A)).length === 5, 2000, 'a gets the rest once it has seen');
    expect(delivered(h.repliesTo(A)).map((e) => e.data)).to.deep.equal(['e0', 'e1', 'e2', 'e3', 'e4']);
  });

  it('fan-out: no TEVT goes out before the subscription’s TEOK, though events come while it is made durable', async () => {
    // The client drops the TEVTs it gets between a gap and its new TEOK (they were sent under the
    // subscription it replaced, and come again): a TEVT of the new subscription sent before its
    // TEOK would be dropped too, and never come again (a bench run lost every event of 4 clients).
    const waiting: (() => void)[] = [];
    const h = make({ durable: () => new Promise((resolve) => waiting.push(() => resolve('single'))) });
    h.subscribe(A, 1, 'orders.*', { member: 'a:1' });
    await waitFor(() => waiting.length === 1, 2000, 'the subscription waits to be durable');
    h.publish(event('orders.created', 'e0'));
    h.publish(event('orders.created', 'e1'));
    await waitFor(() => h.store.sequence >= 2, 2000, 'both events in the log');
    await turn();
    await turn();
    expect(h.ok(A), 'TEOK not sent yet').to.equal(0);
    expect(delivered(h.repliesTo(A)), 'no TEVT before the TEOK').to.deep.equal([]);
    for (const resolve of waiting.splice(0)) resolve();
    await waitFor(() => delivered(h.repliesTo(A)).length === 2, 2000, 'both events, after the TEOK');
    const commands = h.repliesTo(A).map((r) => r.command);
    expect(commands.indexOf('TEOK')).to.be.below(commands.indexOf('TEVT'));
    expect(delivered(h.repliesTo(A)).map((e) => e.data)).to.deep.equal(['e0', 'e1']);
  });

  it('a member that joins with other settings than the group has is refused (group-mismatch)', async () => {
    const h = make();
    h.subscribe(A, 1, 'orders.>', { member: 'a:1', group: 'g', ackWaitMs: '1000' });
    h.subscribe(B, 1, 'orders.>', { member: 'b:1', group: 'g', ackWaitMs: '2000' });
    h.subscribe(B, 2, 'other.>', { member: 'b:2', group: 'g' });
    h.subscribe(B, 3, 'orders.>', { member: 'b:3', grup: 'typo' });
    await waitFor(() => h.repliesTo(B).length === 3, 2000, 'three answers');
    // the refusal of bad options is synchronous, the others come after the group is looked up
    const reasons = h
      .repliesTo(B)
      .map((r) => [(r as { reqId: number }).reqId, (r as { reason?: string }).reason]);
    expect(reasons.sort()).to.deep.equal([
      [101, 'group-mismatch'],
      [102, 'group-mismatch'],
      [103, 'invalid-options'],
    ]);
  });

  it('nak with a delay: redelivered (count 2) once the delay has passed on the clock, not before', async () => {
    const h = make();
    h.subscribe(A, 1, 'jobs', { member: 'a:1', group: 'workers' });
    await waitFor(() => h.ok(A) === 1, 2000, 'subscribed');
    h.publish(event('jobs', 'j'));
    await waitFor(() => delivered(h.repliesTo(A)).length === 1, 2000, 'first delivery');
    const [first] = delivered(h.repliesTo(A));
    h.ack(A, 1, [{ sequence: first!.sequence, kind: 'nak', delayMs: 5_000 }]);
    await waitFor(() => h.ok(A) === 2, 2000, 'the nak answered');
    // The dispatcher runs (proved by the nak's TEOK and later by the redelivery); the clock has
    // not reached the delay, so several passes deliver nothing.
    h.publish(event('jobs.other', 'x')); // a pass of the pump after the nak
    await waitFor(() => h.repliesTo(P).length === 2, 2000, 'the second publish acked');
    expect(delivered(h.repliesTo(A))).to.have.length(1);
    h.state.now += 5_000;
    await waitFor(() => delivered(h.repliesTo(A)).length === 2, 2000, 'the redelivery');
    expect(delivered(h.repliesTo(A))[1]).to.include({ sequence: first!.sequence, count: 2 });
  });

  it('maxDeliver: an event that ran out of deliveries is published on $dlq.<group> with where it came from', async () => {
    const h = make();
    h.subscribe(A, 1, 'jobs', { member: 'a:1', group: 'w', maxDeliver: '2', ackWaitMs: '1000' });
    h.subscribe(B, 9, '$dlq.w', { member: 'b:9' });
    await waitFor(() => h.ok(A) === 1 && h.ok(B) === 1, 2000, 'subscribed');
    h.publish(event('jobs', 'poison'));
    await waitFor(() => delivered(h.repliesTo(A)).length === 1, 2000, 'delivery 1');
    h.state.now += 1_001;
    await waitFor(() => delivered(h.repliesTo(A)).length === 2, 2000, 'delivery 2 after the ack wait');
    h.state.now += 1_001;
    await waitFor(() => delivered(h.repliesTo(B)).length === 1, 2000, 'the dead letter');
    const [dead] = h.repliesTo(B).filter((r): r is Evt => r.command === 'TEVT')[0]!.events;
    expect(dead!.key).to.equal('$dlq.w');
    expect(dead!.body.toString()).to.equal('poison');
    expect(dead!.properties).to.equal(
      `dlq-topic=jobs\ndlq-sequence=${delivered(h.repliesTo(A))[0]!.sequence}\ndlq-deliveries=2\n`,
    );
    expect(h.store.bus.groups.get('w')!.stats(0).deadLetters).to.equal(1);
  });

  it('a TEVT that does not go out (a full pipe): a group event comes again at once, a fan-out one too', async () => {
    let failures = 1; // the next TEVT fails
    const h = make({ deliverFails: () => failures-- > 0 });
    h.subscribe(A, 1, 'jobs', { member: 'a:1', group: 'w' });
    await waitFor(() => h.ok(A) === 1, 2000, 'a subscribed');
    h.publish(event('jobs', 'one'));
    await waitFor(() => delivered(h.repliesTo(A)).length === 1, 2000, 'the event, sent again');
    // The clock has not moved: not the ack wait (30 s) but the failed send gave it back.
    expect(delivered(h.repliesTo(A))[0]).to.include({ data: 'one', count: 2 });
    failures = 1;
    h.subscribe(B, 2, 'jobs', { member: 'b:2', from: 'first' });
    await waitFor(() => delivered(h.repliesTo(B)).length === 1, 2000, 'the fan-out event, sent again');
    expect(delivered(h.repliesTo(B))[0]).to.include({ data: 'one', count: 1 });
    expect(failures, 'the send failed once').to.be.below(0);
  });

  it('an ack for an event the member no longer holds is refused not-held (only that one); the others take', async () => {
    const h = make();
    h.subscribe(A, 1, 'jobs', { member: 'a:1', group: 'w', maxAckPending: '2' });
    h.subscribe(B, 1, 'jobs', { member: 'b:1', group: 'w', maxAckPending: '2' });
    await waitFor(() => h.ok(A) === 1 && h.ok(B) === 1, 2000, 'subscribed');
    h.publish(event('jobs', 'x'), event('jobs', 'y'), event('jobs', 'z'));
    await waitFor(
      () => delivered(h.repliesTo(A)).length + delivered(h.repliesTo(B)).length === 3,
      2000,
      'three out',
    );
    const held = delivered(h.repliesTo(A)).map((e) => e.sequence);
    expect(held.length, 'a holds two').to.equal(2);
    h.ack(A, 1, [
      { sequence: held[0]!, kind: 'ack', delayMs: 0 },
      { sequence: 999_999, kind: 'ack', delayMs: 0 }, // never delivered to a
    ]);
    await waitFor(() => h.repliesTo(A).some((r) => r.command === 'TERROR'), 2000, 'the answer');
    expect(h.repliesTo(A).find((r) => r.command === 'TERROR')).to.deep.include({
      reason: 'not-held',
      refused: [1],
    });
    expect(h.store.bus.groups.get('w')!.pendingOf(held[0]!), 'the held one was acked').to.equal(undefined);
  });

  it('an ack sent again after the first was recorded (its reply lost in a failover) is confirmed; a nak of a done event is refused', async () => {
    const h = make();
    h.subscribe(A, 1, 'jobs', { member: 'a:1', group: 'w' });
    await waitFor(() => h.ok(A) === 1, 2000, 'subscribed');
    h.publish(event('jobs', 'x'));
    await waitFor(() => delivered(h.repliesTo(A)).length === 1, 2000, 'delivered');
    const { sequence } = delivered(h.repliesTo(A))[0]!;
    h.ack(A, 1, [{ sequence, kind: 'ack', delayMs: 0 }]);
    await waitFor(() => h.ok(A) === 2, 2000, 'the first ack confirmed');
    expect(h.store.bus.groups.get('w')!.settled(sequence), 'the event is done').to.equal(true);
    // The client did not see that reply and sends the same ack again: it must be confirmed too,
    // or the member is told its handled event "will be delivered again" while it never will be.
    h.ack(A, 1, [{ sequence, kind: 'ack', delayMs: 0 }]);
    await waitFor(() => h.repliesTo(A).length >= 4, 2000, 'the second answer');
    expect(h.repliesTo(A).at(-1)).to.include({ command: 'TEOK' });
    // A nak asks for a redelivery that will never come: that one is refused.
    h.ack(A, 1, [{ sequence, kind: 'nak', delayMs: 0 }]);
    await waitFor(() => h.repliesTo(A).some((r) => r.command === 'TERROR'), 2000, 'the third answer');
    expect(h.repliesTo(A).find((r) => r.command === 'TERROR')).to.deep.include({
      reason: 'not-held',
      refused: [0],
    });
  });

  it('a member not heard for the member timeout leaves; what it held goes to the other member', async () => {
    const h = make({ memberTimeoutMs: 1_000 });
    h.subscribe(A, 1, 'jobs', { member: 'a:1', group: 'w', maxAckPending: '1' });
    await waitFor(() => h.ok(A) === 1, 2000, 'a subscribed');
    h.publish(event('jobs', 'held by a'));
    await waitFor(() => delivered(h.repliesTo(A)).length === 1, 2000, 'a holds it');
    h.state.now += 600;
    h.subscribe(B, 1, 'jobs', { member: 'b:1', group: 'w' });
    await waitFor(() => h.ok(B) === 1, 2000, 'b subscribed');
    expect(delivered(h.repliesTo(B))).to.deep.equal([]);
    h.state.now += 600; // a silent for 1.2 s, b for 0.6 s
    await waitFor(() => delivered(h.repliesTo(B)).length === 1, 3000, 'b gets what a held');
    expect(delivered(h.repliesTo(B))[0]).to.include({ data: 'held by a', count: 2 });
    expect(h.store.bus.groups.get('w')!.hasMember('a:1')).to.equal(false);
  });
});

describe('server: the bus state on a passive, after a resync and after a restart', function () {
  this.timeout(10_000);

  it('a passive fed the log, a store reset from a snapshot of the map, and one loaded from it hold the same stream and groups', async () => {
    const h = bus();
    try {
      h.subscribe(A, 1, 'orders.>', { member: 'a:1', group: 'billing', maxAckPending: '2' });
      h.subscribe(B, 1, 'orders.>', { member: 'b:1', group: 'billing', maxAckPending: '2' });
      await waitFor(() => h.ok(A) === 1 && h.ok(B) === 1, 2000, 'both subscribed');
      for (let i = 0; i < 8; i++) h.publish(event('orders.created', `e${i}`));
      await waitFor(
        () => delivered(h.repliesTo(A)).length + delivered(h.repliesTo(B)).length === 4,
        2000,
        'four in flight',
      );
      const first = delivered(h.repliesTo(A))[0]!;
      h.ack(A, 1, [{ sequence: first.sequence, kind: 'ack', delayMs: 0 }]);
      await waitFor(() => h.ok(A) === 2, 2000, 'acked');
      await waitFor(
        () => delivered(h.repliesTo(A)).length + delivered(h.repliesTo(B)).length === 5,
        2000,
        'one more out',
      );
      h.dispatcher.stop();
      const active = h.store;
      const shape = (store: typeof active) =>
        [...store.bus.groups].map(([name, g]) => {
          const { counters: _counters, ...rest } = g.toJSON();
          return { name, pattern: store.bus.patternOf(name), ...rest };
        });

      // A passive applies every entry in order.
      const { Store } = await import('../../../src/core/store.js');
      const options = { replayLogSize: 1000, dedupeSize: 100, dedupeMs: 60_000 };
      const passive = new Store(options);
      for (const entry of active.changesSince(0)!)
        expect(passive.replicate(entry, 1_000)).to.equal('applied');
      expect(shape(passive)).to.deep.equal(shape(active));
      expect(passive.bus.index.stats()).to.deep.equal(active.bus.index.stats());
      expect(passive.bus.groups.get('billing')!.toJSON()).to.deep.equal(
        active.bus.groups.get('billing')!.toJSON(),
      );

      // A resync: the map's entries streamed into a fresh state.
      const { entries } = await active.read('');
      const resynced = new Store(options);
      resynced.reset(entries, active.sequence, 1_000);
      expect(shape(resynced)).to.deep.equal(shape(active));
      expect(resynced.bus.index.stats()).to.deep.equal(active.bus.index.stats());
      expect(resynced.keyCount).to.equal(0);
      expect(resynced.bus.reservedKeys).to.equal(active.map.size);
    } finally {
      h.dispatcher.stop();
    }
  });
});
