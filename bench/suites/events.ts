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
import { ACK_WAIT_MS, section, stats, Workload } from '../lib/event-workload.js';
import { nowMs, startPair, waitFor } from '../lib/proc.js';
import { pipelinedPublishes, type Publish } from '../lib/publish-load.js';
import { Worker } from '../lib/worker-client.js';
import type { Context } from './context.js';

const EVENT_WORKER = new URL('../event-worker.ts', import.meta.url).pathname;
const DEFAULT_MEMBER_TIMEOUT_MS = 5_000; // the server's default eventMemberTimeoutMs
const FAST_MEMBER_TIMEOUT_MS = 1_000;

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
