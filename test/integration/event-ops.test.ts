/**
 * The event bus as an operator sees it (issue 16, "Operations"), on a real single server process:
 * a consumer group fed by raw native frames (TEPUB, TESUB, TEACK through a DEALER, as the
 * protocol notes describe them) acks some events, naks one until it is dead-lettered and holds
 * one; then /groups, /groups/NAME, /streams, /metrics and `twinstar group|stream` must all tell
 * that story. Every wait is bounded and waits on an event or a poll.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import type { GroupView, StreamView } from '../../src/metrics/index.js';
import {
  decodeReply,
  encodeRequest,
  type NativeReply,
  type SnapshotSocketRequest,
} from '../../src/wire/index.js';
import {
  BIN,
  freePorts,
  metric,
  startSingle,
  waitFor,
  within,
  type ServerProcess,
} from '../helpers/index.js';

const RETENTION = JSON.stringify([{ prefix: '' }, { prefix: 'orders' }, { prefix: 'audit', maxEvents: 10 }]);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A request without its id (the client numbers them). */
type Unnumbered<R> = R extends unknown ? Omit<R, 'reqId'> : never;

/** A DEALER on the snapshot socket whose replies are queued and taken by predicate. */
class RawClient {
  readonly dealer = new zmq.Dealer({ linger: 0 });
  private readonly queue: NativeReply[] = [];
  private waiters: (() => void)[] = [];
  private reqId = 0;
  private closed = false;

  constructor(endpoint: string) {
    this.dealer.connect(endpoint);
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for await (const frames of this.dealer) {
        this.queue.push(decodeReply(frames));
        for (const wake of this.waiters.splice(0)) wake();
      }
    } catch (error) {
      if (!this.closed) throw error;
    }
  }

  send(request: Unnumbered<SnapshotSocketRequest>): number {
    const id = ++this.reqId;
    void this.dealer.send(encodeRequest({ ...request, reqId: id } as SnapshotSocketRequest));
    return id;
  }

  /** The first queued reply `match` accepts (removed from the queue), within `ms`. */
  async take<T extends NativeReply>(
    match: (r: NativeReply) => r is T,
    what: string,
    ms = 10_000,
  ): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.queue.findIndex(match);
      if (i >= 0) return this.queue.splice(i, 1)[0] as T;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms; queued: ${JSON.stringify(this.queue)}`);
      await within(new Promise<void>((resolve) => this.waiters.push(resolve)), left, what).catch(
        () => undefined,
      );
    }
  }

  reply(reqId: number, what: string): Promise<NativeReply> {
    return this.take((r): r is NativeReply => 'reqId' in r && r.reqId === reqId, what);
  }

  close(): void {
    this.closed = true;
    this.dealer.close();
  }
}

type Tevt = Extract<NativeReply, { command: 'TEVT' }>;
const isTevt = (r: NativeReply): r is Tevt => r.command === 'TEVT';

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.json() };
}

describe('event bus operations: metrics, endpoints and commands (a real server)', function () {
  this.timeout(60_000);
  let server: ServerProcess;
  let client: RawClient;
  let downHttp: number;

  before(async () => {
    const port = await freePorts(4);
    const [http, down] = [await freePorts(1), await freePorts(1)];
    downHttp = down;
    server = startSingle(port, http, [
      '--event-retention',
      RETENTION,
      // the test sends no TPING: the member must not be declared gone meanwhile
      '--event-member-timeout-ms',
      '600000',
    ]);
    await server.ready('ACTIVE', 20_000);
    client = new RawClient(server.endpoint);
  });

  after(async () => {
    client?.close();
    await server?.stop();
  });

  const event = (topic: string, data: string) => ({
    key: topic,
    sequence: 0,
    uuid: randomBytes(16).toString('latin1'),
    properties: '',
    body: Buffer.from(data),
    expiresAt: 0,
  });

  it('tells lag, pending, acks, redeliveries, dead letters and members alike on every surface', async () => {
    // Before any group: the channel works (the endpoints answer) and there is nothing to show.
    expect((await getJson(`${server.http}/groups`)).body).to.deep.equal([]);

    const sub = client.send({
      command: 'TESUB',
      subId: 7,
      pattern: 'orders.>',
      options: { member: 'worker-1', group: 'billing', maxDeliver: '2', ackWaitMs: '600000', durable: '1' },
    });
    expect((await client.reply(sub, 'TESUB reply')).command).to.equal('TEOK');

    const pub = client.send({
      command: 'TEPUB',
      events: [1, 2, 3, 4, 5].map((i) => event('orders.created', `order ${i}`)),
    });
    const acked = await client.reply(pub, 'TEPUB reply');
    expect(acked.command, JSON.stringify(acked)).to.equal('TACK');
    const sequences = (acked as Extract<NativeReply, { command: 'TACK' }>).sequences;
    expect(sequences).to.have.length(5);

    // Every event reaches the only member once, with delivery count 1.
    const delivered = new Map<number, number>();
    while (delivered.size < 5) {
      const tevt = await client.take(isTevt, 'the five events');
      expect(tevt.subId).to.equal(7);
      tevt.events.forEach((e, i) => delivered.set(e.sequence, tevt.counts[i]!));
    }
    expect([...delivered.keys()].sort((a, b) => a - b)).to.deep.equal(sequences);
    expect([...delivered.values()]).to.deep.equal([1, 1, 1, 1, 1]);

    const [s1, s2, s3, s4, s5] = sequences as [number, number, number, number, number];
    const ack = (acks: { sequence: number; kind: 'ack' | 'nak'; delayMs: number }[]) =>
      client.reply(client.send({ command: 'TEACK', subId: 7, acks }), 'TEACK reply');
    expect(
      (await ack([s1, s2, s3].map((sequence) => ({ sequence, kind: 'ack', delayMs: 0 })))).command,
    ).to.equal('TEOK');
    // s4: nak, redelivered (count 2), nak again: maxDeliver 2 reached, dead-lettered.
    expect((await ack([{ sequence: s4, kind: 'nak', delayMs: 0 }])).command).to.equal('TEOK');
    const again = await client.take(isTevt, 'the redelivery of the nak-ed event');
    expect(again.events.map((e) => e.sequence)).to.deep.equal([s4]);
    expect(again.counts).to.deep.equal([2]);
    expect((await ack([{ sequence: s4, kind: 'nak', delayMs: 0 }])).command).to.equal('TEOK');
    // s5 stays in flight.

    // Retention by prefix: 12 audit events under a rule that keeps 10.
    const audit = client.send({
      command: 'TEPUB',
      events: Array.from({ length: 12 }, (_, i) => event('audit.login', `a${i}`)),
    });
    expect((await client.reply(audit, 'audit TEPUB reply')).command).to.equal('TACK');

    // /groups/billing, once the dead letter is in.
    const billing = await waitFor(
      async () => {
        const { status, body } = await getJson(`${server.http}/groups/billing`);
        // The cursor moves past events that are not the group's (the audit ones, the dead letter
        // itself) on the dispatcher's next ticks, after the dead letter: wait for both.
        const view = body as GroupView;
        return status === 200 && view.stats.deadLetters === 1 && view.stats.lag === 0 ? view : undefined;
      },
      10_000,
      'the dead letter in /groups/billing, and the cursor past the events that are not its own',
    );
    expect(billing).to.deep.include({ name: 'billing', pattern: 'orders.>' });
    expect(billing.config).to.include({ maxDeliver: 2, ackWaitMs: 600_000, durable: true });
    expect(billing.stats).to.deep.include({
      lag: 0,
      pending: 1,
      waiting: 0,
      acked: 3,
      redeliveries: 1,
      deadLetters: 1,
      members: [{ id: 'worker-1', inFlight: 1 }],
    });
    expect((await getJson(`${server.http}/groups`)).body).to.deep.equal([billing]);
    const missing = await getJson(`${server.http}/groups/shipping`);
    expect(missing.status).to.equal(404);
    expect(
      (await getJson(`${server.http}/groups/%E0%A4%A`)).status,
      'a name that is not URL-encoded UTF-8',
    ).to.equal(400);

    // /streams: orders holds 5; audit 10 of 12; the dead letter went to $dlq.billing, under ''.
    const streams = await waitFor(
      async () => {
        const list = (await getJson(`${server.http}/streams`)).body as StreamView[];
        return list.find((s) => s.prefix === 'audit')?.stats.dropped === 2 ? list : undefined;
      },
      10_000,
      'the audit drops in /streams',
    );
    const by = Object.fromEntries(streams.map((s) => [s.prefix, s.stats]));
    expect(Object.keys(by)).to.deep.equal(['', 'audit', 'orders']);
    expect(by.orders).to.include({ events: 5, dropped: 0, firstSequence: s1, lastSequence: s5 });
    expect(by.audit).to.include({ events: 10, dropped: 2 });
    expect(by['']).to.include({ events: 1, dropped: 0 });

    // /metrics
    const group = { group: 'billing' };
    expect(await metric(server.http, 'twinstar_group_acked_total', group)).to.equal(3);
    expect(await metric(server.http, 'twinstar_group_redeliveries_total', group)).to.equal(1);
    expect(await metric(server.http, 'twinstar_group_dead_letters_total', group)).to.equal(1);
    expect(await metric(server.http, 'twinstar_group_pending', group)).to.equal(1);
    expect(await metric(server.http, 'twinstar_group_members', group)).to.equal(1);
    expect(await metric(server.http, 'twinstar_group_lag', group)).to.equal(0);
    expect(await metric(server.http, 'twinstar_stream_events', { prefix: 'audit' })).to.equal(10);
    expect(await metric(server.http, 'twinstar_stream_dropped_total', { prefix: 'audit' })).to.equal(2);

    // The commands, asking this node and one that is down (the default asks two).
    const nodes = `${server.http},http://127.0.0.1:${downHttp}`;
    const info = await cli('group', 'info', 'billing', '--nodes', nodes);
    expect(info.code, info.stderr).to.equal(0);
    expect(info.stdout).to.match(/^Group billing on single@127\.0\.0\.1:\d+\n/);
    expect(info.stdout).to.match(/^ {2}Acked: +3$/m);
    expect(info.stdout).to.match(/^ {2}Redeliveries: +1$/m);
    expect(info.stdout).to.match(/^ {2}Dead letters: +1 /m);
    expect(info.stdout).to.match(/^ {2}Pending: +1 /m);
    expect(info.stdout).to.match(/^Members \(1\):\n {2}MEMBER +IN FLIGHT\n {2}worker-1 +1\n/m);
    const ls = await cli('group', 'ls', '--nodes', nodes);
    expect(ls.code, ls.stderr).to.equal(0);
    expect(ls.stdout.split('\n')[1]!.split(/\s{2,}/)).to.deep.equal([
      'billing',
      'orders.>',
      'yes',
      '1',
      '0',
      '1',
      '0',
      '3',
      '1',
      '1',
    ]);
    const unknown = await cli('group', 'info', 'shipping', '--nodes', nodes);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.match(
      /^twinstar group: no group named "shipping" on single@127\.0\.0\.1:\d+\n$/,
    );
    const stream = await cli('stream', 'info', 'audit', '--nodes', server.http);
    expect(stream.code, stream.stderr).to.equal(0);
    expect(stream.stdout).to.match(/^ {2}Max events: +10$/m);
    expect(stream.stdout).to.match(/^ {2}Dropped: +2 /m);
    const none = await cli('group', 'ls', '--nodes', `http://127.0.0.1:${downHttp}`);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.match(/^twinstar group: no ACTIVE node answered \(.*ECONNREFUSED\)\n$/);
  });
});
