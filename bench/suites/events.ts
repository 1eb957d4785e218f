/**
 * 9. The event bus (issue 16) on a real pair, with consumers in processes of their own
 * (bench/event-worker.ts), each consumer its own client:
 *
 *   group       3 members of one consumer group (one process each), every event acked
 *   fan-out     10 subscribers without a group (one process, 10 clients): each gets every event
 *   redelivery  a group of 2 (one process each); one member holds its events unacked and is
 *               SIGKILLed; the time from the kill until the other member has received every event
 *               the dead one held. Run at the server's default member timeout (5 s) and on a
 *               second pair started with `--event-member-timeout-ms 1000`; the ack wait stays at
 *               its default (30 s), so the member timeout is what drives it (the figure says so)
 *   JetStream   where nats-server is installed: the group workload against a JetStream work-queue
 *               stream (memory storage, one node), one durable pull consumer with explicit acks
 *               shared by 3 connections (one process each), and the ratios twinstar / JetStream.
 *               The two take turns run by run; without nats-server a note says it was skipped
 *
 * Throughput: one client publishes as fast as acknowledgements come back (`--window` in flight);
 * the rate is what the consumers received per second from the first publish to the last receipt.
 * Latency: the publisher is paced at a fixed rate; every event carries its publish time and the
 * consumer's handler records publish-call-to-handler latency (CLOCK_MONOTONIC, which every process
 * on the machine shares). Each workload first publishes for 1 s (0.5 s quick), uncounted, so that
 * the first run does not pay for the JIT's warm-up.
 */
import type { Client } from '../../src/index.js';
import { findNatsServer, startNatsServer, workQueue, CONSUMER, STREAM } from '../lib/jetstream.js';
import { writer } from '../lib/load.js';
import { nowMs, sleep, startPair, waitFor, type ServerNode } from '../lib/proc.js';
import { pacedPublishes, pipelinedPublishes, type Publish } from '../lib/publish-load.js';
import { Histogram, median } from '../lib/stats.js';
import { Worker } from '../lib/worker-client.js';
import type { Context } from './context.js';

const EVENT_WORKER = new URL('../event-worker.ts', import.meta.url).pathname;
const ACK_WAIT_MS = 30_000; // the server's default eventAckWaitMs
const DEFAULT_MEMBER_TIMEOUT_MS = 5_000; // the server's default eventMemberTimeoutMs
const FAST_MEMBER_TIMEOUT_MS = 1_000;

interface EventStats {
  counts: number[];
  firstAt: number[];
  lastAt: number[];
  hist: { counts: number[]; maxUs: number };
  redeliveries: number;
  acked: number;
  ackFailed: number;
  firstAckError?: string;
}

/** The figure ids the suite must produce; with nats-server installed, the JetStream ones too. */
export function eventFigures(): string[] {
  const load = (p: string) => [`${p}.rate`, `${p}.p50`, `${p}.p99`];
  const ids = [...load('events.group3'), ...load('events.fanout10')].concat([
    'events.redelivery.default',
    'events.redelivery.fast',
  ]);
  if (!('missing' in findNatsServer()))
    ids.push(...load('events.jetstream.group3'), ...load('events.ratio.group3'));
  return ids;
}

function section(ctx: Context): string {
  return `9. Event bus (pair; consumers in their own processes; latency at ${pacedRate(ctx).toLocaleString('en-US')} events/s)`;
}

function pacedRate(ctx: Context): number {
  return ctx.quick ? 1000 : 2000;
}

export async function events(ctx: Context): Promise<void> {
  const pair = await startPair(ctx.serverNodeArgs);
  const client = await writer([pair.primary.endpoint, pair.backup.endpoint]);
  const servers = [pair.primary.endpoint, pair.backup.endpoint];
  const publish =
    (topic: string): Publish =>
    (_i, body) =>
      client.publish(topic, body);
  try {
    const members = await consumers(3, 1, { servers, pattern: 'bench.work.>', options: { group: 'work' } });
    try {
      const group = new Workload(
        'events.group3',
        'group of 3',
        publish('bench.work.created'),
        members,
        'group',
        pair.primary,
      );
      await withJetStream(ctx, async (js) => {
        // twinstar and JetStream take turns, run by run, so that a busy minute on a shared
        // machine does not fall on one of them only.
        await group.warmUp(ctx);
        await js?.warmUp(ctx);
        for (let run = 0; run < ctx.runs; run++) {
          await group.run(ctx, run);
          await js?.run(ctx, run);
        }
        group.report(ctx);
        if (js) {
          js.report(ctx);
          ratios(ctx);
        }
      });
    } finally {
      await Promise.all(members.map((w) => w.close()));
    }
    const fans = await consumers(1, 10, { servers, pattern: 'bench.fan.>' });
    try {
      const fanout = new Workload(
        'events.fanout10',
        '10 fan-out subscribers',
        publish('bench.fan.created'),
        fans,
        'fanout',
        pair.primary,
      );
      await fanout.warmUp(ctx);
      for (let run = 0; run < ctx.runs; run++) await fanout.run(ctx, run);
      fanout.report(ctx);
    } finally {
      await Promise.all(fans.map((w) => w.close()));
    }
    await redelivery(ctx, client, servers, 'default', DEFAULT_MEMBER_TIMEOUT_MS);
  } finally {
    await client.close();
    await pair.stop();
  }
  const fastPair = await startPair(ctx.serverNodeArgs, () => [
    '--event-member-timeout-ms',
    String(FAST_MEMBER_TIMEOUT_MS),
  ]);
  const fastServers = [fastPair.primary.endpoint, fastPair.backup.endpoint];
  const fastClient = await writer(fastServers);
  try {
    await redelivery(ctx, fastClient, fastServers, 'fast', FAST_MEMBER_TIMEOUT_MS);
  } finally {
    await fastClient.close();
    await fastPair.stop();
  }
}

/** `processes` event workers with `each` consumers each, started and subscribed. */
async function consumers(processes: number, each: number, args: Record<string, unknown>): Promise<Worker[]> {
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < processes; i++) {
      const w = new Worker([], EVENT_WORKER);
      workers.push(w);
      await w.call('start', { kind: 'twinstar', count: each, ...args }, 60_000);
    }
  } catch (error) {
    await Promise.all(workers.map((w) => w.close()));
    throw error;
  }
  return workers;
}

async function stats(workers: Worker[]): Promise<EventStats[]> {
  return Promise.all(workers.map((w) => w.call<EventStats>('stats')));
}

/**
 * Waits until the consumers have `expected` events in all (group: and acked them all) or each
 * (fan-out), or their counts stop moving for 5 s; bounded by 60 s.
 */
async function drained(workers: Worker[], expected: number, kind: 'group' | 'fanout'): Promise<EventStats[]> {
  const deadline = Date.now() + 60_000;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const all = await stats(workers);
    const counts = all.flatMap((s) => s.counts);
    const total = counts.reduce((a, b) => a + b, 0);
    const acked = all.reduce((a, s) => a + s.acked, 0);
    if (kind === 'group' ? total >= expected && acked >= total : Math.min(...counts) >= expected) return all;
    if (total + acked !== last) {
      last = total + acked;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 5000) return all;
    if (Date.now() > deadline) return all;
    await sleep(20);
  }
}

/**
 * One workload (a publisher and its consumers): a warm-up, then runs of throughput and latency,
 * each run on its own so that two workloads can take turns; figures `${id}.rate`, `.p50`, `.p99`.
 */
class Workload {
  readonly rates: number[] = [];
  readonly p50: number[] = [];
  readonly p99: number[] = [];
  readonly detail = {
    published: [] as number[],
    duplicates: [] as number[],
    lost: [] as number[],
    redeliveries: [] as number[],
    ackFailed: [] as number[],
    unacked: [] as number[],
    /** runs where events were missing when deliveries stopped: how many still were after waiting */
    late: [] as { run: number; missing: number; waitedMs: number }[],
    /** whether the active was degraded (its passive detached) at some point of each run */
    degraded: [] as boolean[],
    pacedPublished: [] as number[],
    pacedLost: [] as number[],
    achievedRate: [] as number[],
    publisherBehind: [] as number[],
  };

  constructor(
    readonly id: string,
    readonly what: string,
    readonly publish: Publish,
    readonly workers: Worker[],
    readonly kind: 'group' | 'fanout',
    /** the active, whose warnings are shown when events are lost */
    readonly server?: ServerNode,
  ) {}

  /** Publishes for a while and waits for it to drain, so that no run pays for the JIT's warm-up. */
  async warmUp(ctx: Context): Promise<void> {
    const w = await pipelinedPublishes(this.publish, {
      ms: ctx.secs(1, 0.5) * 1000,
      window: ctx.window,
      max: 20_000,
    });
    if (w.failed > 0) throw new Error(`${this.what}: ${w.failed} warm-up publishes failed: ${w.firstError}`);
    await drained(this.workers, w.done, this.kind);
  }

  async run(ctx: Context, run: number): Promise<void> {
    const { what, kind, workers, publish, detail } = this;
    await this.attached(ctx);
    // Throughput: as fast as the publisher gets acknowledgements.
    await Promise.all(workers.map((w) => w.call('reset')));
    const t0 = nowMs();
    const started = Date.now();
    const w = await pipelinedPublishes(publish, {
      ms: ctx.secs(5, 1) * 1000,
      window: ctx.window,
      max: ctx.quick ? 10_000 : 100_000,
    });
    if (w.failed > 0) throw new Error(`${what}: ${w.failed} publishes failed: ${w.firstError}`);
    let all = await drained(workers, w.done, kind);
    // What each consumer is short of: group, the events no member received; fan-out, each
    // subscriber's own.
    const short = async (): Promise<number> => {
      if (kind === 'fanout') return w.done - Math.min(...(await stats(workers)).flatMap((s) => s.counts));
      const seqs = (await Promise.all(workers.map((x) => x.call<number[]>('seqs')))).flat();
      return w.done - new Set(seqs).size;
    };
    let missing = await short();
    if (missing > 0) {
      // Late (held until an ack wait or a member timeout gives them to a member) or lost.
      const since = nowMs();
      ctx.log(`  !! ${what}: ${missing} events missing once deliveries stopped; waiting for them`);
      while (missing > 0 && nowMs() - since < ACK_WAIT_MS + 15_000) {
        await sleep(500);
        missing = await short();
      }
      const waitedMs = Math.round(nowMs() - since);
      detail.late.push({ run, missing, waitedMs });
      all = await stats(workers); // the rate counts the late ones, at the time they came
      ctx.log(`  !! ${what}: ${missing} still missing after ${waitedMs} ms`);
      await this.diagnose(ctx); // late or lost: what the clients and the active said
    }
    const counts = all.flatMap((s) => s.counts);
    const lastAt = all.flatMap((s) => s.lastAt);
    const total = counts.reduce((a, b) => a + b, 0);
    if (kind === 'group') {
      const seqs = (await Promise.all(workers.map((x) => x.call<number[]>('seqs')))).flat();
      const unique = new Set(seqs).size;
      this.rates.push((total / (Math.max(...lastAt) - t0)) * 1000);
      detail.duplicates.push(seqs.length - unique);
      detail.lost.push(w.done - unique);
      detail.unacked.push(total - all.reduce((a, s) => a + s.acked, 0));
    } else {
      this.rates.push(median(counts.map((c, i) => (c / (lastAt[i]! - t0)) * 1000)));
      detail.duplicates.push(Math.max(0, Math.max(...counts) - w.done));
      detail.lost.push(w.done - Math.min(...counts));
    }
    detail.published.push(w.done);
    detail.redeliveries.push(all.reduce((a, s) => a + s.redeliveries, 0));
    detail.ackFailed.push(all.reduce((a, s) => a + s.ackFailed, 0));
    const ackError = all.find((s) => s.firstAckError)?.firstAckError;
    if (ackError) ctx.log(`  !! ${what}: an ack failed: ${ackError}`);

    // Latency at a fixed rate.
    await sleep(ctx.quick ? 100 : 300);
    await Promise.all(workers.map((x) => x.call('reset')));
    const paced = await pacedPublishes(publish, pacedRate(ctx), ctx.secs(5, 1) * 1000);
    if (paced.failed > 0)
      throw new Error(`${what}: ${paced.failed} paced publishes failed: ${paced.firstError}`);
    const pstats = await drained(workers, paced.done, kind);
    const pcounts = pstats.flatMap((s) => s.counts);
    const hist = new Histogram();
    for (const s of pstats) hist.merge(s.hist);
    this.p50.push(hist.percentile(0.5) / 1000);
    this.p99.push(hist.percentile(0.99) / 1000);
    detail.pacedPublished.push(paced.done);
    detail.pacedLost.push(
      kind === 'group' ? paced.done - pcounts.reduce((a, b) => a + b, 0) : paced.done - Math.min(...pcounts),
    );
    if (this.server) {
      // The active detaches a passive that falls too far behind: then the run measured it alone.
      const degraded = (await this.server.status()).degraded || this.detachedSince(started);
      detail.degraded.push(degraded);
      if (degraded)
        ctx.log(`  !! ${what} run ${run + 1}: the passive was detached during the run (degraded)`);
    }
    detail.achievedRate.push(Math.round(paced.rate));
    detail.publisherBehind.push(paced.behind);
    ctx.log(
      `  ${what} run ${run + 1}: ${Math.round(this.rates.at(-1)!)} events/s (${w.done} published, ` +
        `lost ${detail.lost.at(-1)}, duplicates ${detail.duplicates.at(-1)}` +
        `${kind === 'group' ? `, unacked ${detail.unacked.at(-1)}` : ''}); at ${Math.round(paced.rate)}/s ` +
        `p50 ${this.p50.at(-1)!.toFixed(2)} ms p99 ${this.p99.at(-1)!.toFixed(2)} ms (lost ${detail.pacedLost.at(-1)})`,
    );
  }

  /** Before a run: the passive attached (the active detaches one that falls behind; it comes back). */
  private async attached(ctx: Context): Promise<void> {
    const server = this.server;
    if (!server) return;
    if (!(await server.status()).degraded) return;
    ctx.log(`  ${this.what}: waiting for the passive to attach again`);
    await waitFor(async () => !(await server.status()).degraded, 60_000, 'the passive to attach again', 100);
  }

  /** Whether the active logged that it detached its passive, or was degraded, since `since` (ms). */
  private detachedSince(since: number): boolean {
    return (this.server?.logLines ?? []).some(
      (l) => Date.parse(String(l.time)) >= since && /detaching it|degraded/.test(String(l.msg)),
    );
  }

  /** Events were late or lost: what the consumers' clients reported and the active's warnings. */
  private async diagnose(ctx: Context): Promise<void> {
    for (const [i, w] of this.workers.entries()) {
      const notices = await w.call<unknown[]>('notices');
      const s = await w.call<EventStats>('stats');
      ctx.log(
        `  !! consumer process ${i}: counts ${s.counts.join(', ')}; client notices ${JSON.stringify(notices)}`,
      );
    }
    const warnings = this.server?.logLines.filter((l) => Number(l.level) >= 40).slice(-10) ?? [];
    for (const line of warnings) ctx.log(`  !! active: ${JSON.stringify(line)}`);
  }

  report(ctx: Context): void {
    const s = section(ctx);
    const each = this.kind === 'group' ? 'consumed by the group' : 'delivered to each';
    const { id, what } = this;
    ctx.report.add({
      id: `${id}.rate`,
      section: s,
      label: `${what}: events/s ${each} (max rate)`,
      unit: 'events/s',
      runs: this.rates,
      detail: this.detail,
    });
    ctx.report.add({
      id: `${id}.p50`,
      section: s,
      label: `${what}: p50 publish-to-handler latency`,
      unit: 'ms',
      runs: this.p50,
    });
    ctx.report.add({
      id: `${id}.p99`,
      section: s,
      label: `${what}: p99 publish-to-handler latency`,
      unit: 'ms',
      runs: this.p99,
    });
  }
}

/**
 * A group of two; one member holds what it gets and is SIGKILLed: the time until the other member
 * has every event the dead one held. Figure `events.redelivery.${name}`.
 */
async function redelivery(
  ctx: Context,
  client: Client,
  servers: string[],
  name: string,
  memberTimeoutMs: number,
): Promise<void> {
  const all: number[] = [];
  const first: number[] = [];
  const held: number[] = [];
  const lost: number[] = [];
  const events = 200;
  for (let run = 0; run < ctx.runs; run++) {
    const topic = `bench.kill.${name}.${run}`;
    const args = {
      servers,
      pattern: `${topic}.>`,
      options: { group: `kill-${name}-${run}`, durable: false },
    };
    const survivor = new Worker([], EVENT_WORKER);
    const victim = new Worker([], EVENT_WORKER);
    try {
      await survivor.call('start', { kind: 'twinstar', count: 1, ...args }, 60_000);
      await victim.call('start', { kind: 'twinstar', count: 1, hold: true, ...args }, 60_000);
      const w = await pipelinedPublishes((_i, body) => client.publish(`${topic}.e`, body), {
        ms: 30_000,
        window: events,
        max: events,
      });
      if (w.failed > 0) throw new Error(`redelivery: ${w.failed} publishes failed: ${w.firstError}`);
      await waitFor(
        async () =>
          (await stats([survivor, victim])).flatMap((s) => s.counts).reduce((a, b) => a + b) >= events,
        30_000,
        `the ${events} events to reach the two members`,
        20,
      );
      const holding = await victim.call<number[]>('held');
      if (holding.length === 0) throw new Error('redelivery: the member to kill received no event');
      const killedAt = nowMs();
      await victim.kill();
      let times: number[] = [];
      await waitFor(
        async () => {
          const got = new Map(await survivor.call<[number, number][]>('redelivered'));
          times = holding.map((seq) => got.get(seq) ?? NaN);
          return times.every((t) => Number.isFinite(t));
        },
        memberTimeoutMs + ACK_WAIT_MS + 15_000,
        `the ${holding.length} events the killed member held to reach the other`,
        10,
      );
      all.push(Math.max(...times) - killedAt);
      first.push(Math.min(...times) - killedAt);
      held.push(holding.length);
      const seqs = new Set(await survivor.call<number[]>('seqs'));
      lost.push(events - seqs.size);
      ctx.log(
        `  redelivery (member timeout ${memberTimeoutMs} ms) run ${run + 1}: ${holding.length} held events ` +
          `redelivered ${first.at(-1)!.toFixed(0)} to ${all.at(-1)!.toFixed(0)} ms after the SIGKILL; ` +
          `survivor has ${seqs.size} of ${events}`,
      );
    } finally {
      await Promise.all([survivor.close(), victim.close()]);
    }
  }
  const worst = Math.max(...all);
  const driver = worst < ACK_WAIT_MS ? 'member timeout' : 'ack wait';
  ctx.report.add({
    id: `events.redelivery.${name}`,
    section: section(ctx),
    label:
      `redelivery after a member's SIGKILL, member timeout ${memberTimeoutMs.toLocaleString('en-US')} ms` +
      `${name === 'default' ? ' (default)' : ''}, ack wait ${ACK_WAIT_MS.toLocaleString('en-US')} ms: driven by the ${driver}`,
    unit: 'ms',
    runs: all,
    detail: {
      firstRedeliveredMs: first,
      heldByTheKilledMember: held,
      lostBySurvivor: lost,
      memberTimeoutMs,
      ackWaitMs: ACK_WAIT_MS,
    },
  });
}

/**
 * Runs `body` with the group workload on JetStream (nats-server, its work-queue stream and 3
 * workers), or with undefined and a note saying why when nats-server is missing; stops it all after.
 */
async function withJetStream(ctx: Context, body: (js: Workload | undefined) => Promise<void>): Promise<void> {
  const found = findNatsServer();
  if ('missing' in found) {
    const note = `JetStream comparison skipped: ${found.missing}`;
    ctx.log(`  ${note}`);
    ctx.report.notes.push(note);
    return body(undefined);
  }
  const server = await startNatsServer(found.path, found.version);
  const workers: Worker[] = [];
  try {
    const { nc, js } = await workQueue(server.url, 'bench.work.>', {
      ackWaitMs: ACK_WAIT_MS,
      maxAckPending: 3000,
    });
    try {
      for (let i = 0; i < 3; i++) {
        const w = new Worker([], EVENT_WORKER);
        workers.push(w);
        await w.call(
          'start',
          { kind: 'jetstream', count: 1, url: server.url, stream: STREAM, consumer: CONSUMER },
          60_000,
        );
      }
      const publish: Publish = (_i, data) => js.publish('bench.work.created', data);
      await body(
        new Workload(
          'events.jetstream.group3',
          `JetStream (${found.version}), 3 workers`,
          publish,
          workers,
          'group',
        ),
      );
    } finally {
      await Promise.all(workers.map((w) => w.close()));
      await nc.close();
    }
  } finally {
    await server.stop();
  }
}

/** twinstar ÷ JetStream for the group workload's throughput, p50 and p99. */
function ratios(ctx: Context): void {
  const s = section(ctx);
  for (const [k, label] of [
    ['rate', 'throughput'],
    ['p50', 'p50 latency'],
    ['p99', 'p99 latency'],
  ] as const) {
    const ours = ctx.report.get(`events.group3.${k}`)!.value;
    const theirs = ctx.report.get(`events.jetstream.group3.${k}`)!.value;
    ctx.report.add({
      id: `events.ratio.group3.${k}`,
      section: s,
      label: `group of 3, ${label}: twinstar ÷ JetStream`,
      unit: '×',
      runs: [ours / theirs],
      aggregate: 'single',
    });
  }
}
