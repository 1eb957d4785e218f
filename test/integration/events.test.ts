/**
 * The event bus with real processes (issue 16, "Tests"): consumer-group members run in processes
 * of their own (event-member-host.ts) so that one can be SIGKILLed; the pair is two real servers.
 *
 * - three members, 10,000 events, every one acked: each handled exactly once;
 * - a member SIGKILLed mid-stream: what it held reaches the others, nothing is lost;
 * - the active SIGKILLed during a consume run: no acknowledged publish lost, no acked event
 *   delivered again, every event handled at least once (duplicates counted and printed);
 * - a durable group with no member while 5,000 events are published: a member that joins later
 *   gets all of them, in order;
 * - maxDeliver reaches the dead-letter topic; nak with a delay is redelivered after it, not before;
 * - with data directories, a group and its stream survive a restart of both nodes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Client } from '../../src/index.js';
import {
  metric,
  pairOptions,
  pairPorts,
  Started,
  waitFor,
  within,
  type ServerProcess,
  type ServerProcessOptions,
} from '../helpers/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MEMBER = fileURLToPath(new URL('./event-member-host.ts', import.meta.url));

/** A group member in a child process: what it received and what the server took its acks for. */
class Member {
  readonly got: { seq: number; n: number; t: number }[] = [];
  readonly acked: number[] = [];
  readonly ackedAt = new Map<number, number>();
  readonly ackErrors: { seq: number; error: string }[] = [];
  ready = false;
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;
  private err = '';

  constructor(servers: string[], group: string, pattern: string, options: Record<string, unknown> = {}) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', MEMBER, servers.join(','), group, pattern, JSON.stringify(options)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.exited = once(this.child, 'exit');
    let out = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      let nl: number;
      while ((nl = out.indexOf('\n')) !== -1) {
        const line = JSON.parse(out.slice(0, nl)) as {
          ready?: true;
          got?: number;
          n?: number;
          acked?: number;
          ackError?: string;
          seq?: number;
          t: number;
        };
        out = out.slice(nl + 1);
        if (line.ready) this.ready = true;
        if (line.got !== undefined) this.got.push({ seq: line.got, n: line.n!, t: line.t });
        if (line.ackError !== undefined) this.ackErrors.push({ seq: line.seq!, error: line.ackError });
        if (line.acked !== undefined) {
          this.acked.push(line.acked);
          this.ackedAt.set(line.acked, line.t);
        }
      }
    });
    this.child
      .stderr!.setEncoding('utf8')
      .on('data', (chunk: string) => (this.err = (this.err + chunk).slice(-4000)));
  }

  get stderr(): string {
    return this.err;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

describe('event bus: consumer groups with real processes', function () {
  this.timeout(240_000);
  const started = new Started();
  const members: Member[] = [];
  afterEach(async () => {
    await Promise.all(members.splice(0).map((m) => m.kill()));
    await started.cleanup();
  });

  async function pair(data = false, timing: Partial<ServerProcessOptions> = {}) {
    const root = data ? started.dir('twinstar-events-') : undefined;
    const options = pairOptions(await pairPorts(), timing);
    const dirs = (name: string) => (root === undefined ? {} : { dataDir: join(root, name) });
    const primary = started.server({ ...options.primary, ...dirs('primary') });
    const backup = started.server({ ...options.backup, ...dirs('backup') });
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 20_000, 'the passive to attach');
    return { primary, backup, options, servers: [primary.endpoint, backup.endpoint] };
  }

  const member = async (servers: string[], group: string, pattern: string, options = {}) => {
    const m = new Member(servers, group, pattern, options);
    members.push(m);
    await waitFor(() => m.ready, 30_000, `member of ${group} subscribed (${m.stderr})`);
    return m;
  };

  /** Publishes `count` events on `topic`, 100 in flight at a time; returns the acknowledged sequences. */
  async function publishMany(client: Client, topic: string, count: number, from = 0): Promise<number[]> {
    const sequences: number[] = [];
    for (let i = from; i < from + count; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(i + 100, from + count); j++) batch.push(client.publish(topic, `e${j}`));
      sequences.push(...(await within(Promise.all(batch), 30_000, `events ${i}..`)));
    }
    return sequences;
  }

  it('three members, 10,000 events, every one acked: each event is handled exactly once', async () => {
    const { servers } = await pair();
    const group = await Promise.all([1, 2, 3].map(() => member(servers, 'billing', 'orders.*')));
    const publisher = await started.client(servers);
    const published = await publishMany(publisher, 'orders.created', 10_000);
    await waitFor(
      () => group.reduce((n, m) => n + m.acked.length, 0) >= 10_000,
      120_000,
      'every event acked',
      100,
    );
    const handled = group.flatMap((m) => m.got.map((g) => g.seq));
    expect(handled.length, 'deliveries').to.equal(10_000);
    expect(new Set(handled)).to.deep.equal(new Set(published));
    for (const m of group) expect(m.got.length, 'each member shared the work').to.be.greaterThan(0);
    console.log(`      split: ${group.map((m) => m.got.length).join(' / ')}`);
  });

  it('a member SIGKILLed mid-stream: the events it held reach the others and none is lost', async () => {
    const { servers } = await pair(false);
    const options = { ackWaitMs: 60_000, maxAckPending: 50 };
    const victim = await member(servers, 'work', 'jobs', { ...options, noAck: true });
    const others = await Promise.all([1, 2].map(() => member(servers, 'work', 'jobs', options)));
    const publisher = await started.client(servers);
    const published = await publishMany(publisher, 'jobs', 2_000);
    await waitFor(() => victim.got.length >= 50, 30_000, 'the victim to hold a full window');
    const held = victim.got.map((g) => g.seq);
    await victim.kill('SIGKILL');
    // Not the ack wait (60 s): the member timeout (5 s) gives its events to the others.
    await waitFor(
      () => new Set(others.flatMap((m) => m.acked)).size >= published.length,
      60_000,
      'every event acked by the survivors',
      100,
    );
    const survivors = others.flatMap((m) => m.got);
    for (const seq of held)
      expect(
        survivors.some((g) => g.seq === seq && g.n >= 2),
        `event ${seq} redelivered`,
      ).to.equal(true);
    expect(new Set(others.flatMap((m) => m.acked))).to.deep.equal(new Set(published));
  });

  it('the active SIGKILLed during a consume run: no acknowledged publish lost, no acked event delivered again, every event handled', async () => {
    const { primary, backup, servers } = await pair(false, { heartbeatMs: 100, failoverMs: 1000 });
    const options = { ackWaitMs: 5_000, maxAckPending: 100, holdMs: 30 }; // events in flight at the kill
    const group = await Promise.all([1, 2].map(() => member(servers, 'fail', 'jobs', options)));
    const publisher = await started.client(servers);
    const acked = await publishMany(publisher, 'jobs', 1_500);
    await waitFor(() => group.reduce((n, m) => n + m.acked.length, 0) >= 500, 60_000, 'a third handled');
    await primary.kill();
    // Publishing goes on through the failover; every acknowledged publish must come out.
    acked.push(...(await publishMany(publisher, 'jobs', 1_500, 1_500)));
    await backup.ready('ACTIVE', 30_000);
    const handled = () => new Set(group.flatMap((m) => m.acked));
    await waitFor(
      () => handled().size >= acked.length,
      120_000,
      'every acknowledged publish handled',
      100,
    ).catch(async (error: Error) => {
      // Say what is missing and where it is, so that a failure can be read without a rerun.
      const missing = acked.filter((s) => !handled().has(s));
      const refusals = group.flatMap((m) => m.ackErrors).filter((e) => missing.includes(e.seq));
      const state = await fetch(`${backup.http}/groups/fail`).then((r) => r.text(), String);
      throw new Error(
        `${error.message}: ${missing.length} missing (${missing.slice(0, 10).join(', ')}); ` +
          `their ack refusals: ${JSON.stringify(refusals.slice(0, 3))}; the group on the new active: ${state}`,
      );
    });
    const deliveries = group.flatMap((m) => m.got.map((g) => g.seq));
    const duplicates = deliveries.length - new Set(deliveries).size;
    console.log(`      ${acked.length} events, ${deliveries.length} deliveries, ${duplicates} duplicates`);
    expect(new Set(group.flatMap((m) => m.acked))).to.deep.equal(new Set(acked));
    // No acked event delivered again: no member receives an event after the server confirmed an
    // ack of it to any member (acks here come within milliseconds, far inside the 5 s ack wait).
    const ackedAt = new Map<number, number>();
    for (const m of group)
      for (const [seq, t] of m.ackedAt) ackedAt.set(seq, Math.min(t, ackedAt.get(seq) ?? t));
    const late = group.flatMap((m) => m.got).filter((g) => ackedAt.has(g.seq) && g.t > ackedAt.get(g.seq)!);
    expect(late, 'deliveries after a confirmed ack').to.deep.equal([]);
  });

  it('a durable group with no member while 5,000 events are published: a member that joins later gets all of them, in order', async () => {
    const { servers } = await pair();
    const first = await member(servers, 'mail', 'orders.*');
    await first.kill('SIGTERM'); // it unsubscribes: the group has no member from now on
    expect(first.child.exitCode, `the member left cleanly (${first.stderr})`).to.equal(0);
    // The group is durable: it keeps its cursor while it has no member.
    const publisher = await started.client(servers);
    const published = await publishMany(publisher, 'orders.created', 5_000);
    const later = await member(servers, 'mail', 'orders.*');
    await waitFor(() => later.acked.length >= 5_000, 60_000, 'the backlog handled', 100);
    expect(later.got.map((g) => g.seq)).to.deep.equal(published);
  });

  it('maxDeliver: an event never acked reaches $dlq.<group>; nak with a delay comes back after it, not before', async () => {
    const { servers } = await pair();
    const client = await started.client(servers);
    const dead = client.subscribe('$dlq.poison', { from: 'first' });
    await dead.ready();
    const sub = client.subscribe('jobs.>', { group: 'poison', ackWaitMs: 300, maxDeliver: 3 });
    await sub.ready();
    const seq = await client.publish('jobs.bad', 'boom', { headers: { id: '7' } });
    const deliveries: number[] = [];
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) {
      const { value } = await within(it.next(), 10_000, `delivery ${i + 1}`);
      deliveries.push(value!.deliveryCount);
    }
    expect(deliveries).to.deep.equal([1, 2, 3]);
    const letter = (await within(dead[Symbol.asyncIterator]().next(), 10_000, 'the dead letter')).value!;
    expect(letter.topic).to.equal('$dlq.poison');
    expect(letter.data.toString()).to.equal('boom');
    expect(letter.headers).to.include({
      'dlq-topic': 'jobs.bad',
      'dlq-sequence': String(seq),
      'dlq-deliveries': '3',
    });

    const later = await client.publish('jobs.retry', 'again');
    const first = (await within(it.next(), 10_000, 'the retry event')).value!;
    expect(first.sequence).to.equal(later);
    const nakAt = Date.now();
    await first.nak(1_500);
    const second = (await within(it.next(), 10_000, 'the redelivery')).value!;
    const after = Date.now() - nakAt;
    expect(second.sequence).to.equal(later);
    expect(second.deliveryCount).to.equal(2);
    expect(after, 'not before the delay').to.be.at.least(1_400);
    await second.ack();
  });

  it('events between key changes: a client of the whole map neither misses a change nor resumes for the events it never sees', async () => {
    const { primary, servers } = await pair();
    const whole = await started.client(servers); // subtree '': it checks every sequence for gaps
    const writer = await started.client(servers);
    const resumes = () => metric(primary.http, 'twinstar_snapshots_total', { kind: 'resume' });
    const before = await resumes();
    let last = 0;
    for (let i = 0; i < 50; i++) {
      await writer.publish('between.keys', `e${i}`);
      await writer.publish('between.keys', `f${i}`);
      last = await writer.set(`/between/${i}`, `v${i}`);
    }
    await waitFor(() => whole.sequence >= last, 20_000, 'the whole-map client at the last key change');
    for (let i = 0; i < 50; i++) expect(whole.getString(`/between/${i}`)).to.equal(`v${i}`);
    expect(
      [...whole.entries()].filter(([key]) => key.startsWith('\0')),
      'no event in the map',
    ).to.deep.equal([]);
    // A new client resumes once when its subscription starts, and that may come after `before`:
    // two clients here (`whole` and `writer`, both following the whole map), so at most 2. The
    // events would cause one per key change that follows them (50) if they were taken for gaps.
    expect((await resumes()) - before, 'resumes while events came between key changes').to.be.at.most(2);
  });

  it('with data directories, a durable group and its stream survive a restart of both nodes', async () => {
    const { primary, backup, servers } = await pair(true);
    const client = await started.client(servers);
    const sub = client.subscribe('keep.>', { group: 'keeper' });
    await sub.ready();
    const it = sub[Symbol.asyncIterator]();
    const published = [];
    for (let i = 0; i < 10; i++) published.push(await client.publish('keep.it', `k${i}`));
    for (let i = 0; i < 4; i++) await (await within(it.next(), 10_000, `event ${i}`)).value!.ack();
    await client.close();
    await primary.kill();
    await backup.kill();
    const again = [started.server(primary.options), started.server(backup.options)] as ServerProcess[];
    await waitFor(
      async () =>
        (await Promise.all(again.map((n) => n.status().catch(() => undefined)))).some(
          (s) => s?.state === 'ACTIVE',
        ),
      60_000,
      'an active after the restart',
    );
    const back = await started.client(servers);
    const resumed = back.subscribe('keep.>', { group: 'keeper' });
    await resumed.ready();
    const rest: number[] = [];
    const next = resumed[Symbol.asyncIterator]();
    while (rest.length < 6) {
      const event = (await within(next.next(), 20_000, `event ${rest.length} after the restart`)).value!;
      rest.push(event.sequence);
      await event.ack();
    }
    expect(rest).to.deep.equal(published.slice(4));
  });
});
