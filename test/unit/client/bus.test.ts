/**
 * The client's event bus (src/client/publishing.ts, subscription.ts, subscriptions.ts, bus.ts)
 * against the fake pair (fake-server.ts, fake-events.ts): fake clock, fake transport, the real
 * codec. Publishing with acknowledgement and failover, subscriptions (ready, refusal, delivery to
 * the iterator and to 'event'), acks as TEACK frames, `seen` batching, re-subscribing after a
 * failover, pings while subscribed, and what is dropped.
 */
import { expect } from 'chai';
import { Client, type ClientOptions } from '../../../src/client/client.js';
import type { Subscription, SubscriptionEvent } from '../../../src/client/subscription.js';
import { SEEN_BATCH, SEEN_FLUSH_MS } from '../../../src/client/subscriptions.js';
import {
  decodeRequest,
  encodeReply,
  Native,
  type NativeRequest,
  type PackedEntry,
} from '../../../src/wire/index.js';
import {
  AccessDeniedError,
  ClosedError,
  InvalidArgumentError,
  ServerRejectedError,
} from '../../../src/errors.js';
import { FakeNetwork, type FakeServer, type FakeServerOptions } from './fake-server.js';
import { rejection } from './rejection.js';

const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';
const SERVER_TIMEOUT = 500;
const clients: Client[] = [];

async function readyOnA(options: Partial<ClientOptions> = {}, a: FakeServerOptions = {}) {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const sa = net.addServer(A, { state: 'ACTIVE', ...a });
  const sb = net.addServer(B, { state: 'PASSIVE' });
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: SERVER_TIMEOUT,
    mode: 'native',
    transport: net.transport,
    clock: net.clock,
    ...options,
  });
  clients.push(client);
  await net.settle();
  await client.ready(1000);
  await net.advance(200);
  expect(client.server).to.equal(A);
  return { net, a: sa, b: sb, client };
}

/** The event requests a server received, decoded. */
function sent<C extends NativeRequest['command']>(server: FakeServer, command: C) {
  return server
    .requestsOf(command)
    .map((r) => decodeRequest(r.frames) as Extract<NativeRequest, { command: C }>);
}

/** B takes over from A (which dies) and the client fails over to it. */
async function failover(h: { net: FakeNetwork; a: FakeServer; b: FakeServer; client: Client }) {
  h.b.copyFrom(h.a);
  h.a.setState('DEAD');
  h.b.promote();
  await h.net.advance(SERVER_TIMEOUT + 400);
  expect(h.client.server).to.equal(B);
}

/** Collects a subscription's events as the application takes them. */
function collect(sub: Subscription): SubscriptionEvent[] {
  const got: SubscriptionEvent[] = [];
  sub.on('event', (e) => got.push(e));
  return got;
}

describe('Client event bus (fake clock, fake transport)', function () {
  this.timeout(20_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  describe('publish', () => {
    it('resolves with the sequence the TACK gives; the TEPUB carries topic, data and headers', async () => {
      const h = await readyOnA();
      h.a.events.emit('other.topic', 'x'); // sequence 1
      const seq = await h.client.publish('orders.created', Buffer.from('{"id":1}'), {
        headers: { tenant: 'eu' },
      });
      expect(seq).to.equal(2);
      const [tepub] = sent(h.a, Native.EVENT_PUBLISH);
      expect(tepub!.events).to.have.length(1);
      const e = tepub!.events[0]!;
      expect([e.key, e.body.toString(), e.properties, e.sequence]).to.deep.equal([
        'orders.created',
        '{"id":1}',
        'tenant=eu\n',
        0,
      ]);
      expect(e.uuid).to.have.length(16);
      expect(await h.client.publish('orders.created', new Uint8Array([1, 2]))).to.equal(3);
      expect(await h.client.publish('orders.created', '')).to.equal(4);
    });

    it('a bad topic, data or header rejects with InvalidArgumentError (never a synchronous throw) and sends nothing', async () => {
      const h = await readyOnA();
      const bad: (() => Promise<unknown>)[] = [
        () => h.client.publish('', 'x'),
        () => h.client.publish('a..b', 'x'),
        () => h.client.publish('orders.*', 'x'),
        () => h.client.publish(42 as unknown as string, 'x'),
        () => h.client.publish('a', 42 as unknown as string),
        () => h.client.publish('a', 'x', { headers: { 'bad name': 'v' } }),
        () => h.client.publish('a', 'x', { headers: { h: 'two\nlines' } }),
        () => h.client.publish('a', 'x', null as unknown as object),
        () => h.client.publish('a', Buffer.alloc(1024 * 1024 + 1)),
      ];
      for (const call of bad) expect(await rejection(call)).to.be.instanceOf(InvalidArgumentError);
      await h.net.advance(100);
      expect(h.a.requestsOf(Native.EVENT_PUBLISH)).to.have.length(0);
      // the channel works: a good one goes out
      expect(await h.client.publish('a', 'x')).to.equal(1);
    });

    it('an event unanswered when the active dies is sent to the new active with the same uuid, and stored once', async () => {
      const h = await readyOnA();
      h.a.events.silent = true; // A takes the TEPUB and answers nothing
      let result: number | undefined;
      const publishing = h.client.publish('orders.created', 'once').then((s) => (result = s));
      await h.net.advance(50);
      const first = sent(h.a, Native.EVENT_PUBLISH);
      expect(first).to.have.length(1);
      expect(result).to.equal(undefined);
      await failover(h);
      await publishing;
      const again = sent(h.b, Native.EVENT_PUBLISH);
      expect(again.map((r) => r.events[0]!.uuid)).to.deep.equal([first[0]!.events[0]!.uuid]);
      expect(result).to.equal(1);
      expect(h.b.events.events.filter((e) => e.body.toString() === 'once')).to.have.length(1);
    });

    it('an event stored by the old active but unacknowledged is stored once on the new one (same uuid)', async () => {
      const h = await readyOnA();
      h.a.setState('SILENT'); // takes requests, answers nothing
      const publishing = h.client.publish('t', 'v');
      await h.net.advance(20);
      // A had stored it (and B mirrored it) before it froze
      const tepub = sent(h.a, Native.EVENT_PUBLISH)[0]!;
      h.a.events.events.push({ ...tepub.events[0]!, sequence: 1 });
      h.a.events.uuids.set(tepub.events[0]!.uuid, 1);
      h.a.events.sequence = 1;
      await failover(h);
      expect(await publishing).to.equal(1);
      expect(h.b.events.events).to.have.length(1);
    });

    it('a publish acknowledged by the active alone makes the client degraded, as a write does', async () => {
      const h = await readyOnA();
      const said: boolean[] = [];
      h.client.on('degraded', (d) => said.push(d));
      await h.client.publish('a', 'x');
      expect([h.client.degraded, said]).to.deep.equal([false, []]);
      h.a.durability = 'degraded';
      await h.client.publish('a', 'y');
      await h.net.settle();
      expect([h.client.degraded, said]).to.deep.equal([true, [true]]);
    });

    it('rejects with ServerRejectedError plain-chp when the server speaks plain CHP only', async () => {
      const h = await readyOnA({ mode: 'chp' }, { plainChp: true });
      const error = await rejection(() => h.client.publish('a', 'x'));
      expect(error).to.be.instanceOf(ServerRejectedError);
      expect((error as ServerRejectedError).reason).to.equal('plain-chp');
      expect((error as Error).message).to.contain('plain CHP');
    });
  });

  describe("'auto' mode against plain CHP servers", () => {
    it('a publish and a subscription made before the mode is known fail with plain-chp once it is, sending nothing native', async () => {
      const net = new FakeNetwork({ heartbeatMs: 100 });
      const a = net.addServer(A, { state: 'ACTIVE', plainChp: true });
      const b = net.addServer(B, { state: 'PASSIVE', plainChp: true, passiveHugz: true });
      const client = new Client({
        servers: [A, B],
        serverTimeoutMs: SERVER_TIMEOUT,
        mode: 'auto',
        transport: net.transport,
        clock: net.clock,
      });
      clients.push(client);
      const publishing = rejection(() => client.publish('a', 'x'));
      const sub = client.subscribe('a');
      const ready = rejection(() => sub.ready(5000));
      await net.advance(2 * SERVER_TIMEOUT + 200);
      expect(client.mode).to.equal('chp');
      for (const error of [await publishing, await ready]) {
        expect(error).to.be.instanceOf(ServerRejectedError);
        expect((error as ServerRejectedError).reason).to.equal('plain-chp');
      }
      expect(sub.closed).to.equal(true);
      const native = [...a.requests, ...b.requests].filter((r) => r.command.startsWith('T'));
      expect(native.map((r) => r.command)).to.deep.equal([]);
    });
  });

  describe('subscribe', () => {
    it('sends TESUB with the member id and options; ready() resolves on TEOK', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('orders.>', {
        group: 'billing',
        ackWaitMs: 5000,
        maxDeliver: 3,
        durable: false,
      });
      await sub.ready();
      const [tesub] = sent(h.a, Native.EVENT_SUBSCRIBE);
      expect(tesub!.pattern).to.equal('orders.>');
      expect(tesub!.subId).to.equal(sub.subId);
      expect(tesub!.options).to.include({
        group: 'billing',
        ackWaitMs: '5000',
        maxDeliver: '3',
        durable: '0',
      });
      expect(tesub!.options.member).to.match(new RegExp(`^[0-9a-f]{16}:${sub.subId}$`));
      const fan = h.client.subscribe('>', { from: { sequence: 5 }, maxAckPending: 10 });
      await fan.ready();
      expect(sent(h.a, Native.EVENT_SUBSCRIBE)[1]!.options).to.include({ from: '5', maxAckPending: '10' });
    });

    it('a subscription made before the client is ready goes out once it is', async () => {
      const net = new FakeNetwork({ heartbeatMs: 100 });
      const a = net.addServer(A, { state: 'ACTIVE' });
      net.addServer(B, { state: 'PASSIVE' });
      const client = new Client({
        servers: [A, B],
        mode: 'native',
        transport: net.transport,
        clock: net.clock,
      });
      clients.push(client);
      const sub = client.subscribe('a.*');
      expect(a.requestsOf(Native.EVENT_SUBSCRIBE)).to.have.length(0);
      await net.settle();
      await sub.ready();
      expect(a.requestsOf(Native.EVENT_SUBSCRIBE)).to.have.length(1);
    });

    it('a bad pattern or option throws InvalidArgumentError at once', async () => {
      const h = await readyOnA();
      const bad: [unknown, unknown][] = [
        ['', undefined],
        ['a.>.b', undefined],
        ['ord*', undefined],
        [7, undefined],
        ['a', { group: 'has space' }],
        ['a', { group: 'x'.repeat(65) }],
        ['a', { from: 'last' }],
        ['a', { from: { sequence: -1 } }],
        ['a', { from: { sequence: 0 } }],
        ['a', { ackWaitMs: 5 }], // group only
        ['a', { group: 'g', ackWaitMs: 0 }],
        ['a', { group: 'g', maxDeliver: 1.5 }],
        ['a', { maxAckPending: '10' }],
        ['a', { group: 'g', durable: 'yes' }],
        ['a', { colour: 'red' }],
        ['a', 'options'],
      ];
      for (const [pattern, options] of bad)
        expect(
          () => h.client.subscribe(pattern as string, options as object),
          JSON.stringify([pattern, options]),
        ).to.throw(InvalidArgumentError);
      await h.net.advance(50);
      expect(h.a.requestsOf(Native.EVENT_SUBSCRIBE)).to.have.length(0);
    });

    it('a refusal (TERROR) rejects ready() with a typed error, emits error and ends the iterator with it', async () => {
      const h = await readyOnA();
      h.a.events.refuseNext = 'group-mismatch';
      const sub = h.client.subscribe('a', { group: 'g' });
      const errors: Error[] = [];
      sub.on('error', (e) => errors.push(e));
      const iterating = (async () => {
        for await (const _ of sub) void _;
      })();
      const error = await rejection(() => sub.ready());
      expect(error).to.be.instanceOf(ServerRejectedError);
      expect((error as ServerRejectedError).reason).to.equal('group-mismatch');
      expect(await rejection(() => iterating)).to.equal(error);
      expect(errors).to.deep.equal([error]);
      expect(sub.closed).to.equal(true);
      expect(await rejection(() => sub.ready()), 'ready() after the refusal').to.equal(error);
      h.a.events.refuseNext = 'access-denied';
      expect(await rejection(() => h.client.subscribe('secret.>').ready())).to.be.instanceOf(
        AccessDeniedError,
      );
    });

    it('TEVT reaches the iterator and the event listeners, with topic, data, headers, sequence and delivery count', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('orders.*', { group: 'g' });
      const heard = collect(sub);
      await sub.ready();
      const [fake] = h.a.events.subsOf('orders.*');
      const e = (sequence: number, key = 'orders.created'): PackedEntry => ({
        key,
        sequence,
        uuid: 'u'.repeat(16),
        properties: 'h=1\n',
        body: Buffer.from(`d${sequence}`),
        expiresAt: 0,
      });
      h.a.events.send(fake!, [e(7), e(9, 'orders.paid')], [1, 3]);
      const got: SubscriptionEvent[] = [];
      for await (const event of sub) {
        got.push(event);
        if (got.length === 2) break;
      }
      const view = (x: SubscriptionEvent) => [
        x.topic,
        x.data.toString(),
        x.headers,
        x.sequence,
        x.deliveryCount,
      ];
      expect(got.map(view)).to.deep.equal([
        ['orders.created', 'd7', { h: '1' }, 7, 1],
        ['orders.paid', 'd9', { h: '1' }, 9, 3],
      ]);
      expect(heard.map(view)).to.deep.equal(got.map(view));
    });
  });

  describe('acks', () => {
    it('a group event ack/nak/working/term go out as TEACK frames (one request per turn) and resolve on TEOK', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('jobs', { group: 'w' });
      const got = collect(sub);
      await sub.ready();
      for (let i = 0; i < 4; i++) h.a.events.emit('jobs', `j${i}`);
      await h.net.advance(20);
      expect(got).to.have.length(4);
      await Promise.all([got[0]!.ack(), got[1]!.nak(1500), got[2]!.working(), got[3]!.term()]);
      const teacks = sent(h.a, Native.EVENT_ACK);
      expect(teacks).to.have.length(1);
      expect(teacks[0]!.subId).to.equal(sub.subId);
      expect(teacks[0]!.acks).to.deep.equal([
        { sequence: 1, kind: 'ack', delayMs: 0 },
        { sequence: 2, kind: 'nak', delayMs: 1500 },
        { sequence: 3, kind: 'working', delayMs: 0 },
        { sequence: 4, kind: 'term', delayMs: 0 },
      ]);
      expect(await rejection(() => got[0]!.nak(-1))).to.be.instanceOf(InvalidArgumentError);
    });

    it('an ack unanswered when the active dies is sent again to the new active', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('jobs', { group: 'w' });
      const got = collect(sub);
      await sub.ready();
      h.a.events.emit('jobs', 'j');
      await h.net.advance(20);
      h.a.events.silent = true;
      let acked = false;
      const acking = got[0]!.ack().then(() => (acked = true));
      await h.net.advance(20);
      expect(sent(h.a, Native.EVENT_ACK)).to.have.length(1);
      expect(acked).to.equal(false);
      await failover(h);
      await acking;
      const again = sent(h.b, Native.EVENT_ACK);
      expect(again.flatMap((r) => r.acks)).to.deep.equal([{ sequence: 1, kind: 'ack', delayMs: 0 }]);
      // the TESUB went before it on the same connection
      const order = h.b.requests.map((r) => r.command).filter((c) => c.startsWith('TE'));
      expect(order.slice(0, 2)).to.deep.equal([Native.EVENT_SUBSCRIBE, Native.EVENT_ACK]);
    });

    it("fan-out: ack() resolves at once; the client sends 'seen' itself, every 100 events taken or after 50 ms", async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('ticks');
      const got = collect(sub);
      await sub.ready();
      for (let i = 0; i < SEEN_BATCH + 30; i++) h.a.events.emit('ticks', `t${i}`);
      await h.net.settle();
      expect(got).to.have.length(SEEN_BATCH + 30);
      await got[0]!.ack();
      const seen = () => sent(h.a, Native.EVENT_ACK).flatMap((r) => r.acks);
      expect(seen()).to.deep.equal([{ sequence: SEEN_BATCH, kind: 'seen', delayMs: 0 }]);
      await h.net.advance(SEEN_FLUSH_MS + 10);
      expect(seen()).to.deep.equal([
        { sequence: SEEN_BATCH, kind: 'seen', delayMs: 0 },
        { sequence: SEEN_BATCH + 30, kind: 'seen', delayMs: 0 },
      ]);
    });

    it('a loop that does not keep up holds a bounded buffer: beyond it the oldest events are dropped', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('ticks', { maxAckPending: 1 });
      await sub.ready();
      const iterator = sub[Symbol.asyncIterator]();
      for (let i = 0; i < 3 * SEEN_BATCH; i++) h.a.events.emit('ticks', `t${i}`);
      await h.net.advance(20);
      expect(sub.buffered).to.equal(2 * 1 + SEEN_BATCH);
      const first = await iterator.next();
      expect(first.value!.sequence, 'the oldest were dropped').to.equal(
        3 * SEEN_BATCH - (2 + SEEN_BATCH) + 1,
      );
      await iterator.return!();
    });

    it("fan-out with a loop: events are seen only once the loop takes them (the server's flow control)", async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('ticks');
      await sub.ready();
      const iterator = sub[Symbol.asyncIterator]();
      for (let i = 0; i < 5; i++) h.a.events.emit('ticks', `t${i}`);
      await h.net.advance(200);
      expect(sub.buffered).to.equal(5);
      expect(sent(h.a, Native.EVENT_ACK), 'nothing taken, nothing seen').to.have.length(0);
      for (let i = 0; i < 3; i++) await iterator.next();
      await h.net.advance(SEEN_FLUSH_MS + 10);
      expect(sent(h.a, Native.EVENT_ACK).flatMap((r) => r.acks)).to.deep.equal([
        { sequence: 3, kind: 'seen', delayMs: 0 },
      ]);
      await iterator.return!();
    });
  });

  describe('failover', () => {
    it('re-subscribes on the new active: a fan-out one from the last event received + 1, a group one with the same member', async () => {
      const h = await readyOnA();
      const fan = h.client.subscribe('news.>');
      const group = h.client.subscribe('jobs', { group: 'w' });
      const news = collect(fan);
      await Promise.all([fan.ready(), group.ready()]);
      for (let i = 0; i < 3; i++) h.a.events.emit('news.eu', `n${i}`);
      await h.net.advance(20);
      expect(news.map((e) => e.sequence)).to.deep.equal([1, 2, 3]);
      const before = sent(h.a, Native.EVENT_SUBSCRIBE);
      await failover(h);
      const after = sent(h.b, Native.EVENT_SUBSCRIBE);
      expect(after.map((r) => r.pattern).sort()).to.deep.equal(['jobs', 'news.>']);
      const byPattern = (list: typeof after, p: string) => list.find((r) => r.pattern === p)!;
      expect(byPattern(after, 'news.>').options.from).to.equal('4');
      expect(byPattern(after, 'news.>').options.member).to.equal(byPattern(before, 'news.>').options.member);
      expect(byPattern(after, 'jobs').options.member).to.equal(byPattern(before, 'jobs').options.member);
      expect(byPattern(after, 'jobs').options.from).to.equal(undefined);
      // and the events keep coming from B, none twice
      h.b.events.emit('news.eu', 'n3');
      await h.net.advance(20);
      expect(news.map((e) => e.sequence)).to.deep.equal([1, 2, 3, 4]);
    });

    it('re-subscribes after a resync with the same server (its history no longer reaches back to the client)', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('a.>');
      await sub.ready();
      const resyncs: unknown[] = [];
      h.client.on('resync', (r) => resyncs.push(r));
      h.a.dropPublished(1);
      h.a.set('/lost', '1');
      h.a.forgetHistory();
      h.a.set('/next', '2'); // the gap: the client resumes, and gets a snapshot
      await h.net.advance(100);
      expect(resyncs).to.have.length(1);
      expect(sent(h.a, Native.EVENT_SUBSCRIBE).map((r) => r.subId)).to.deep.equal([sub.subId, sub.subId]);
    });

    it('a new connection to the server in use (a new identity there) subscribes again, from after the last event received', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('news.>');
      const news = collect(sub);
      await sub.ready();
      h.a.events.emit('news.eu', 'n1');
      await h.net.advance(20);
      expect(news).to.have.length(1);
      const link = h.net.links.find((l) => l.address.snapshot === A && !l.closed)!;
      link.handlers.connected!();
      await h.net.advance(20);
      const tesubs = sent(h.a, Native.EVENT_SUBSCRIBE);
      expect(tesubs.map((r) => r.options.from)).to.deep.equal([undefined, '2']);
      expect(tesubs[1]!.options.member).to.equal(tesubs[0]!.options.member);
    });

    it('an ack answered unknown-subscription subscribes again and sends the ack again', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('jobs', { group: 'w' });
      const got = collect(sub);
      await sub.ready();
      h.a.events.emit('jobs', 'j');
      await h.net.advance(20);
      h.a.events.subs.clear(); // the server forgot the member
      await got[0]!.ack();
      expect(sent(h.a, Native.EVENT_SUBSCRIBE)).to.have.length(2);
      expect(sent(h.a, Native.EVENT_ACK).map((r) => r.acks.length)).to.deep.equal([1, 1]);
      expect(h.a.events.acks).to.deep.equal([{ sequence: 1, kind: 'ack', delayMs: 0, subId: sub.subId }]);
    });

    it('an ack the server refuses not-held rejects with that reason; the acks sent with it resolve', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('jobs', { group: 'w' });
      const got = collect(sub);
      await sub.ready();
      h.a.events.emit('jobs', 'one');
      h.a.events.emit('jobs', 'two');
      await h.net.advance(20);
      h.a.events.notHeld.add(got[1]!.sequence);
      const [first, second] = await Promise.allSettled([got[0]!.ack(), got[1]!.ack()]);
      expect(
        sent(h.a, Native.EVENT_ACK).map((r) => r.acks.length),
        'one TEACK',
      ).to.deep.equal([2]);
      expect(first.status).to.equal('fulfilled');
      expect(second.status).to.equal('rejected');
      expect((second as PromiseRejectedResult).reason)
        .to.be.instanceOf(ServerRejectedError)
        .and.include({ reason: 'not-held' });
    });

    it('a fan-out TEVT dropped (from a server not in use) makes the subscription drop the next ones and subscribe again after the last received', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('news');
      const got = collect(sub);
      await sub.ready();
      h.a.events.emit('news', 'n1');
      await h.net.advance(20);
      expect(got.map((e) => e.data.toString())).to.deep.equal(['n1']);
      const link = h.net.links.filter((l) => l.server === h.b).at(-1)!;
      const event = {
        key: 'news',
        sequence: 2,
        uuid: '',
        properties: '',
        body: Buffer.from('n2'),
        expiresAt: 0,
      };
      h.b.reply(link, { command: 'TEVT', subId: sub.subId, events: [event], counts: [1] });
      await h.net.advance(20);
      const tesubs = sent(h.a, Native.EVENT_SUBSCRIBE);
      expect(tesubs, 'subscribed again at once').to.have.length(2);
      expect(tesubs[1]!.options.from, 'after the last event received').to.equal(String(got[0]!.sequence + 1));
    });

    it('a fan-out subscription from "new" that received nothing resumes after the start the server gave', async () => {
      const h = await readyOnA();
      h.a.events.emit('x', '1');
      h.a.events.emit('x', '2');
      const sub = h.client.subscribe('y');
      await sub.ready();
      await failover(h);
      expect(sent(h.b, Native.EVENT_SUBSCRIBE)[0]!.options.from).to.equal('3');
    });
  });

  describe('liveness and what is dropped', () => {
    it('sends TPING to the server in use at least every heartbeat while subscribed, and none before', async () => {
      const h = await readyOnA();
      const pings = () => h.a.requestsOf(Native.PING).filter((r) => r.at > start);
      const start = h.net.clock.now();
      await h.net.advance(1000);
      expect(pings(), 'no subscription, no pings').to.have.length(0);
      const sub = h.client.subscribe('a');
      await sub.ready();
      const from = h.net.clock.now();
      await h.net.advance(1000);
      const at = [from, ...pings().map((r) => r.at), h.net.clock.now()];
      expect(pings().length).to.be.greaterThan(5);
      for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).to.be.at.most(100); // hugz-ms
      await sub.unsubscribe();
      const stopped = h.net.clock.now();
      await h.net.advance(500);
      expect(h.a.requestsOf(Native.PING).filter((r) => r.at > stopped)).to.have.length(0);
    });

    it('a TEVT for an unknown subscription, and a malformed TEVT, are dropped and counted', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('a');
      const got = collect(sub);
      await sub.ready();
      const [fake] = h.a.events.subsOf('a');
      const event: PackedEntry = {
        key: 'a',
        sequence: 5,
        uuid: '',
        properties: '',
        body: Buffer.alloc(0),
        expiresAt: 0,
      };
      h.a.events.send({ ...fake!, subId: 999 }, [event]);
      await h.net.advance(20);
      expect(h.client.stats().dropped).to.deep.equal({ 'unknown-subscription': 1 });
      const frames = encodeReply({ command: 'TEVT', subId: sub.subId, events: [event], counts: [1] });
      h.a.reply(fake!.link, [frames[0]!, frames[1]!, frames[2]!, Buffer.alloc(3)]);
      await h.net.advance(20);
      expect(h.client.stats().dropped).to.deep.equal({ 'unknown-subscription': 1, 'field-invalid': 1 });
      expect(got).to.have.length(0);
      // a malformed reply quarantines the server for a while, as for any reply; once the client is
      // back on A (subscribed again), the channel works: a good TEVT arrives
      await h.net.advance(SERVER_TIMEOUT + 400);
      expect(h.client.server).to.equal(A);
      h.a.events.send(h.a.events.subsOf('a')[0]!, [event]);
      await h.net.advance(20);
      expect(got.map((e) => e.sequence)).to.deep.equal([5]);
    });

    it('unsubscribe() sends TEUNSUB, ends the iterator and resolves on TEOK; events after it are dropped', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('a');
      await sub.ready();
      const iterating = (async () => {
        let n = 0;
        for await (const _ of sub) n += _ ? 1 : 0;
        return n;
      })();
      await sub.unsubscribe();
      expect(sent(h.a, Native.EVENT_UNSUBSCRIBE).map((r) => r.subId)).to.deep.equal([sub.subId]);
      expect(await iterating).to.equal(0);
      expect(h.a.events.subsOf('a')).to.have.length(0);
    });

    it('an unsubscribe the server does not answer is done after requestTimeoutMs', async () => {
      const h = await readyOnA({ requestTimeoutMs: 1000 });
      const sub = h.client.subscribe('a');
      await sub.ready();
      h.a.events.silent = true;
      let done = false;
      const unsubscribing = sub.unsubscribe().then(() => (done = true));
      await h.net.advance(900);
      expect(sent(h.a, Native.EVENT_UNSUBSCRIBE)).to.have.length(1);
      expect(done, 'still waiting for the answer').to.equal(false);
      await h.net.advance(200);
      await unsubscribing;
      expect(done).to.equal(true);
    });

    it('close() ends subscriptions: iterators finish, ready() and acks reject with ClosedError', async () => {
      const h = await readyOnA();
      const sub = h.client.subscribe('jobs', { group: 'w' });
      const got = collect(sub);
      await sub.ready();
      h.a.events.emit('jobs', 'j');
      await h.net.advance(20);
      h.a.events.silent = true;
      const ack = rejection(() => got[0]!.ack());
      const pending = h.client.subscribe('later');
      const ready = rejection(() => pending.ready());
      const iterating = (async () => {
        for await (const _ of sub) void _;
        return 'ended';
      })();
      await h.client.close();
      expect(await ack).to.be.instanceOf(ClosedError);
      expect(await ready).to.be.instanceOf(ClosedError);
      expect(await iterating).to.equal('ended');
      expect(() => h.client.subscribe('after.close')).to.not.throw();
      expect(await rejection(() => h.client.subscribe('after.close').ready())).to.be.instanceOf(ClosedError);
      expect(await rejection(() => h.client.publish('a', 'x'))).to.be.instanceOf(ClosedError);
    });
  });
});
