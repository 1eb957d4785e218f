/**
 * The event bus's metrics and JSON views (src/metrics/bus.ts) over a real BusMachine fed the
 * entries the server would sequence: per group lag, pending, waiting, members and the acked,
 * redelivered and dead-lettered counts; per retention rule events, bytes and drops; and what a
 * resync (a new, empty machine) does to the counters.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { BusMachine } from '../../../src/core/bus-machine.js';
import { eventKey, eventProperties, type GroupConfig, type GroupOp } from '../../../src/events/index.js';
import type { Entry } from '../../../src/kv/index.js';
import { groupView, groupViews, streamViews } from '../../../src/metrics/index.js';
import { registerBusMetrics } from '../../../src/metrics/bus.js';

const CONFIG: GroupConfig = {
  name: 'billing',
  ackWaitMs: 30_000,
  maxDeliver: 2,
  maxAckPending: 10,
  durable: true,
};

class Feed {
  sequence = 0;
  constructor(readonly bus: BusMachine) {}

  private entry(key: string, properties: string, body: Buffer): void {
    const entry: Entry = { key, sequence: ++this.sequence, uuid: '', properties, body, expiresAt: 0 };
    this.bus.apply(entry);
  }

  publish(topic: string, data = 'x'): number {
    const properties = eventProperties({ topic, time: 1000, headers: {} });
    this.entry(eventKey(this.sequence + 1), properties, Buffer.from(data));
    return this.sequence;
  }

  create(config: GroupConfig, pattern: string): void {
    const change = this.bus.createChange(config, pattern, 0);
    this.entry(change.key, change.properties, change.body);
  }

  op(group: string, op: GroupOp): void {
    const change = this.bus.opChange(group, op);
    this.entry(change.key, change.properties, change.body);
  }
}

/** `name{labels} value` lines of the registry's text output, for one metric name. */
async function samples(registry: Registry, name: string): Promise<Record<string, number>> {
  const text = await registry.metrics();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out[m[2] ?? ''] = Number(m[3]);
  }
  return out;
}

async function typeOf(registry: Registry, name: string): Promise<string | undefined> {
  const text = await registry.metrics();
  return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];
}

describe('event bus metrics and views', () => {
  let source: { store: { bus: BusMachine } };
  let feed: Feed;
  let registry: Registry;

  beforeEach(() => {
    const bus = new BusMachine([{ prefix: '' }, { prefix: 'orders', maxEvents: 2 }]);
    source = { store: { bus } };
    feed = new Feed(bus);
    registry = new Registry();
    registerBusMetrics(registry, source);
  });

  /**
   * Five order events (the `orders` rule keeps 2), one metrics event; group billing on orders.>
   * with members a and b: event 1 acked by a; event 2 delivered to b, expired, redelivered to a,
   * expired again and dead-lettered (maxDeliver 2); event 3 in flight with b; event 4 nak'ed by
   * a (waiting). The cursor stands at 4 of a head of 6.
   */
  function story(): void {
    for (let i = 0; i < 5; i++) feed.publish('orders.created', 'abc');
    feed.publish('metrics.cpu', 'abcd');
    feed.create(CONFIG, 'orders.>');
    feed.op('billing', { type: 'join', member: 'a', at: 0 });
    feed.op('billing', { type: 'join', member: 'b', at: 0 });
    feed.op('billing', { type: 'deliver', event: 1, member: 'a', deadline: 10 });
    feed.op('billing', { type: 'ack', event: 1, member: 'a' });
    feed.op('billing', { type: 'deliver', event: 2, member: 'b', deadline: 10 });
    feed.op('billing', { type: 'expire', event: 2 });
    feed.op('billing', { type: 'deliver', event: 2, member: 'a', deadline: 20 });
    feed.op('billing', { type: 'expire', event: 2 });
    feed.op('billing', { type: 'dead-letter', event: 2 });
    feed.op('billing', { type: 'deliver', event: 3, member: 'b', deadline: 10 });
    feed.op('billing', { type: 'deliver', event: 4, member: 'a', deadline: 10 });
    feed.op('billing', { type: 'nak', event: 4, member: 'a', notBefore: 50 });
  }

  it('exports per group lag, pending, waiting and members as gauges', async () => {
    const empty = await samples(registry, 'twinstar_group_lag');
    expect(empty, 'no group, no series').to.deep.equal({});
    story();
    expect(await samples(registry, 'twinstar_group_lag')).to.deep.equal({ '{group="billing"}': 2 });
    expect(await samples(registry, 'twinstar_group_pending')).to.deep.equal({ '{group="billing"}': 1 });
    expect(await samples(registry, 'twinstar_group_waiting')).to.deep.equal({ '{group="billing"}': 1 });
    expect(await samples(registry, 'twinstar_group_members')).to.deep.equal({ '{group="billing"}': 2 });
    for (const name of ['lag', 'pending', 'waiting', 'members'])
      expect(await typeOf(registry, `twinstar_group_${name}`), name).to.equal('gauge');
  });

  it('exports acked, redeliveries and dead letters as counters, and follows them as they grow', async () => {
    story();
    expect(await samples(registry, 'twinstar_group_acked_total')).to.deep.equal({ '{group="billing"}': 1 });
    expect(await samples(registry, 'twinstar_group_redeliveries_total')).to.deep.equal({
      '{group="billing"}': 1,
    });
    expect(await samples(registry, 'twinstar_group_dead_letters_total')).to.deep.equal({
      '{group="billing"}': 1,
    });
    for (const name of ['acked', 'redeliveries', 'dead_letters'])
      expect(await typeOf(registry, `twinstar_group_${name}_total`), name).to.equal('counter');
    // A second scrape after more acks shows the machine's count, not a sum of scrapes.
    feed.op('billing', { type: 'ack', event: 3, member: 'b' });
    expect(await samples(registry, 'twinstar_group_acked_total')).to.deep.equal({ '{group="billing"}': 2 });
    expect(await samples(registry, 'twinstar_group_acked_total')).to.deep.equal({ '{group="billing"}': 2 });
  });

  it('a resync (a new machine) restarts the counts, and a group that is gone loses its series', async () => {
    story();
    expect(await samples(registry, 'twinstar_group_acked_total')).to.deep.equal({ '{group="billing"}': 1 });
    source.store.bus = source.store.bus.empty();
    expect(await samples(registry, 'twinstar_group_acked_total')).to.deep.equal({});
    expect(await samples(registry, 'twinstar_group_lag')).to.deep.equal({});
    feed = new Feed(source.store.bus);
    feed.create(CONFIG, 'orders.>');
    expect(await samples(registry, 'twinstar_group_acked_total')).to.deep.equal({ '{group="billing"}': 0 });
  });

  it('exports per retention rule events, bytes and drops', async () => {
    story();
    const events = await samples(registry, 'twinstar_stream_events');
    expect(events).to.deep.equal({ '{prefix=""}': 1, '{prefix="orders"}': 2 });
    const bytes = await samples(registry, 'twinstar_stream_bytes');
    const orderBytes = 3 + eventProperties({ topic: 'orders.created', time: 1000, headers: {} }).length;
    const metricBytes = 4 + eventProperties({ topic: 'metrics.cpu', time: 1000, headers: {} }).length;
    expect(bytes).to.deep.equal({ '{prefix=""}': metricBytes, '{prefix="orders"}': 2 * orderBytes });
    expect(await samples(registry, 'twinstar_stream_dropped_total')).to.deep.equal({
      '{prefix=""}': 0,
      '{prefix="orders"}': 3,
    });
    expect(await typeOf(registry, 'twinstar_stream_dropped_total')).to.equal('counter');
  });

  it('the JSON views: streams by prefix, groups with pattern, config and stats, one group or none', () => {
    story();
    const streams = streamViews(source.store.bus);
    expect(streams.map((s) => s.prefix)).to.deep.equal(['', 'orders']);
    expect(streams[1]).to.deep.include({ prefix: 'orders', rule: { prefix: 'orders', maxEvents: 2 } });
    expect(streams[1]!.stats).to.include({ events: 2, firstSequence: 4, lastSequence: 5, dropped: 3 });
    // An empty bucket says null, which JSON keeps (undefined would vanish).
    const fresh = streamViews(new BusMachine([{ prefix: 'x' }]));
    expect(JSON.parse(JSON.stringify(fresh))[1].stats).to.include({
      firstSequence: null,
      lastSequence: null,
    });

    const groups = groupViews(source.store.bus);
    expect(groups).to.have.length(1);
    expect(groups[0]).to.deep.include({ name: 'billing', pattern: 'orders.>', config: CONFIG });
    expect(groups[0]!.stats).to.deep.include({
      lag: 2,
      pending: 1,
      waiting: 1,
      acked: 1,
      redeliveries: 1,
      deadLetters: 1,
      members: [
        { id: 'a', inFlight: 0 },
        { id: 'b', inFlight: 1 },
      ],
    });
    expect(groupView(source.store.bus, 'billing')).to.deep.equal(groups[0]);
    expect(groupView(source.store.bus, 'shipping')).to.equal(undefined);
  });
});
