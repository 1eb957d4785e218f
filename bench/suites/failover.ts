/**
 * 6. Failover at default settings (heartbeat 100 ms, failover timeout 500 ms, client server
 * timeout 500 ms).
 *
 *   gap       a native client writes continuously, awaiting each write; the active is killed with
 *             SIGKILL at a random moment; the gap is the time from the kill to the first write
 *             acknowledged by the new active. The killed node is restarted (it comes back PASSIVE
 *             and resyncs) and the next run kills the other one, so runs alternate direction.
 *   no false  then the same pair (passive attached again) under full write load, a pipelined
 *   failover  writer as fast as it goes, for 60 s (10 s in quick mode): promotions counted on
 *             both nodes must not change, and no client may fail over.
 */
import { connect, type Client } from '../../src/index.js';
import { pipelinedWrites, value } from '../lib/load.js';
import { nowMs, sleep, startPair, waitFor, within, type Pair, type ServerNode } from '../lib/proc.js';
import { max, median } from '../lib/stats.js';
import type { Context } from './context.js';

export async function failover(ctx: Context): Promise<void> {
  const pair = await startPair(ctx.serverNodeArgs);
  try {
    const active = await gaps(ctx, pair);
    // The same pair, after its failovers, with the last killed node back as the passive.
    const passive = active === pair.primary ? pair.backup : pair.primary;
    await active.ready((s) => s.state === 'ACTIVE' && !s.degraded, 30_000);
    await passive.ready((s) => s.state === 'PASSIVE', 30_000);
    await noFalseFailover(ctx, pair, active);
  } finally {
    await pair.stop();
  }
}

/** Runs the kills; returns the node active at the end. */
async function gaps(ctx: Context, pair: Pair): Promise<ServerNode> {
  const runs = ctx.quick ? 3 : 20;
  const client = await connect({
    servers: [pair.primary.endpoint, pair.backup.endpoint],
    subtree: '/fo/',
    connectTimeoutMs: 15_000,
  });
  let stop = false;
  let acks = 0;
  let failures = 0;
  let firstError: string | undefined;
  let watch: { since: number; survivor: string; resolve(gap: number): void } | undefined;
  const body = value(false);
  const loop = (async () => {
    for (let i = 0; !stop && i < 100_000_000; i++) {
      try {
        await client.set(`/fo/${i % 1000}`, body);
        acks++;
        const w = watch;
        if (w && client.server === w.survivor) {
          watch = undefined;
          w.resolve(nowMs() - w.since);
        }
      } catch (error) {
        failures++;
        firstError ??= String(error);
        await sleep(10);
      }
    }
  })();
  const gapsMs: number[] = [];
  const directions: string[] = [];
  let active: ServerNode = pair.primary;
  let passive: ServerNode = pair.backup;
  try {
    for (let run = 0; run < runs; run++) {
      // The passive is attached (writes are replicated) and writes are flowing.
      await active.ready((s) => s.state === 'ACTIVE' && !s.degraded, 30_000);
      await passive.ready((s) => s.state === 'PASSIVE', 30_000);
      const before = acks;
      await waitFor(() => acks >= before + 20, 10_000, 'writes to flow before the kill');
      await sleep(100 + Math.random() * 300);
      const gap = new Promise<number>((resolve) => {
        watch = { since: nowMs(), survivor: passive.endpoint, resolve };
        active.child.kill('SIGKILL');
      });
      const ms = await within(gap, 15_000, `failover run ${run + 1}`);
      gapsMs.push(ms);
      directions.push(`${active.spec.role}→${passive.spec.role}`);
      ctx.log(`  failover run ${run + 1} (${directions.at(-1)}): ${ms.toFixed(0)} ms`);
      await waitFor(() => active.exited, 5000, 'the killed node to exit');
      active.restart();
      [active, passive] = [passive, active];
    }
  } finally {
    stop = true;
    watch = undefined;
    await within(loop, 15_000, 'the failover writer to stop').catch(() => undefined);
    await client.close();
  }
  const section = '6. Failover (pair, default settings, SIGKILL of the active)';
  const m = ctx.report.add({
    id: 'failover.median',
    section,
    label: `client-visible gap, kill → first acknowledged write on the new active (${runs} runs)`,
    unit: 'ms',
    runs: gapsMs,
    value: median(gapsMs),
    detail: { directions, writeFailures: failures, firstError },
  });
  m.target = { text: '< 1 s', met: m.value < 1000 };
  const w = ctx.report.add({
    id: 'failover.worst',
    section,
    label: 'client-visible gap, worst run',
    unit: 'ms',
    runs: gapsMs,
    aggregate: 'max',
    value: max(gapsMs),
  });
  w.target = { text: '< 2 s', met: w.value < 2000 };
  if (failures > 0)
    ctx.report.notes.push(`failover: ${failures} writes failed during the runs (${firstError})`);
  return active;
}

async function noFalseFailover(ctx: Context, pair: Pair, active: ServerNode): Promise<void> {
  const ms = ctx.secs(60, 10) * 1000;
  let client: Client | undefined;
  let failovers = 0;
  try {
    client = await connect({
      servers: [pair.primary.endpoint, pair.backup.endpoint],
      subtree: '/load/',
      connectTimeoutMs: 15_000,
    });
    client.on('failover', () => failovers++);
    const promotions0 = await promotions(pair);
    const stalls0 = await stalls(pair);
    let degradedSeen = 0;
    let samples = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        await sleep(500);
        try {
          const s = await active.status();
          samples++;
          if (s.degraded) degradedSeen++;
        } catch {
          // a slow answer under load is not a failover
        }
      }
    })();
    const w = await pipelinedWrites(client, {
      ms,
      window: ctx.window,
      max: 100_000_000,
      key: (i) => `/load/${i % 10_000}`,
    });
    polling = false;
    await poll;
    const promoted = (await promotions(pair)) - promotions0;
    const stalled = (await stalls(pair)) - stalls0;
    const [p, b] = await Promise.all([pair.primary.status(), pair.backup.status()]);
    const stillActive = (active === pair.primary ? p : b).state === 'ACTIVE';
    ctx.log(
      `  ${ms / 1000} s at full write load: ${Math.round(w.rate)} writes/s, ${promoted} promotions, ${failovers} client failovers, ` +
        `${stalled} stalls, primary ${p.state}, backup ${b.state}, degraded in ${degradedSeen}/${samples} samples`,
    );
    const f = ctx.report.add({
      id: 'failover.promotions',
      section: '6. Failover (pair, default settings, SIGKILL of the active)',
      label: `promotions during ${ms / 1000} s at full write load (${Math.round(w.rate).toLocaleString('en-US')} acknowledged writes/s)`,
      unit: 'count',
      runs: [promoted],
      aggregate: 'single',
      detail: {
        writesPerSecond: w.rate,
        failedWrites: w.failed,
        clientFailovers: failovers,
        eventLoopStalls: stalled,
        degradedSamples: degradedSeen,
        statusSamples: samples,
        finalStates: [p.state, b.state],
      },
    });
    f.target = {
      text: '0 (no false failover)',
      met: promoted === 0 && failovers === 0 && stillActive,
    };
  } finally {
    await client?.close();
  }
}

async function promotions(pair: Pair): Promise<number> {
  const counts = await Promise.all(pair.nodes.map((n) => n.metric('twinstar_promotions_total')));
  return counts.reduce((a, b) => a + b, 0);
}

async function stalls(pair: Pair): Promise<number> {
  const counts = await Promise.all(pair.nodes.map((n) => n.metric('twinstar_event_loop_stalls_total')));
  return counts.reduce((a, b) => a + b, 0);
}
