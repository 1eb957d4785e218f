/**
 * 10. Against the peers (issue 18, `npm run bench -- --peers`; one short round in `--quick`): the
 * same workloads, in the same run, on twinstar (a pair, memory mode, passive attached), Redis (a
 * primary and one replica, no persistence, lib/redis.ts) and NATS (one nats-server -js, KV buckets
 * in memory, R1), each through its own client library (lib/peer-systems.ts, lib/watchers.ts). A
 * peer whose binary is not installed is skipped with a note; twinstar always runs.
 *
 *   connect     one watcher connected and subscribed, one after the other (median of 20), then
 *               100 watchers started at once in a fresh process: ms until all are ready
 *   fan-out     those 100 watchers (one process, a connection each), one writer in the bench
 *               process paced at 200 then 1,000 updates/s (100-byte values stamped with the
 *               CLOCK_MONOTONIC write time): p50/p99 write-to-watcher, watcher-process and
 *               server CPU (/proc/<pid>/stat) per 1,000 deliveries, deliveries lost
 *   awaiting    one writer awaiting each acknowledged write: twinstar set() on the pair, Redis
 *               SET + WAIT 1 0, NATS kv.put(): writes/s; and raw zeromq.js round trips (a DEALER
 *               and a ROUTER echo, one in flight) at the start of each round, the ceiling
 *               of twinstar's four hops
 *   snapshot    100k keys of 100-byte values loaded once, then per round a new reader gets them
 *               all: twinstar connect() on the subtree, Redis SCAN + MGET in batches of 1,000,
 *               NATS kv.watch() delivering every last value
 *
 * Rounds interleave the systems (twinstar, Redis, NATS, then again), so that a busy minute of
 * the shared machine does not fall on one of them only; figures are medians of the rounds.
 *
 * This module holds the plan, the systems' start and stop, and the rounds (the watcher process's
 * calls and what each round records); lib/peers-report.ts turns the recorded rounds into figures
 * and targets.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, sleep, within } from '../lib/proc.js';
import { WARM_UP_MS, WARM_UP_WRITES } from '../lib/load.js';
import {
  awaitingWrites,
  pacedWrites,
  startNats,
  startRedis,
  startTwinstar,
  type PeerSystem,
  type System,
} from '../lib/peer-systems.js';
import { Histogram, median } from '../lib/stats.js';
import { Worker } from '../lib/worker-client.js';
import { RawRoundTrip } from '../lib/raw-round-trip.js';
import { reportPeers, type FanRun, type Plan, type Runs } from '../lib/peers-report.js';
import type { Context } from './context.js';

const WATCHERS_SCRIPT = fileURLToPath(new URL('../lib/watchers.ts', import.meta.url));

function plan(quick: boolean): Plan {
  return quick
    ? { watchers: 20, rates: [1000], pacedMs: 500, connects: 5, awaitMs: 300, keys: 10_000 }
    : { watchers: 100, rates: [200, 1000], pacedMs: 3000, connects: 20, awaitMs: 3000, keys: 100_000 };
}

/** The systems that ran in this process's last peers suite (twinstar, and the peers found). */
let ran: System[] = ['twinstar'];

/** The figure ids the suite must produce, for the systems that ran. */
export function peerFigures(quick: boolean): string[] {
  const p = plan(quick);
  return ran
    .flatMap((s) => [
      `peers.${s}.connect`,
      `peers.${s}.start`,
      ...p.rates.flatMap((r) =>
        ['p50', 'p99', 'clientcpu', 'servercpu', 'lost'].map((k) => `peers.${s}.fan.${r}.${k}`),
      ),
      `peers.${s}.await`,
      `peers.${s}.snapshot`,
    ])
    .concat(['peers.zmq.roundtrip', 'peers.zmq.hops4', 'peers.zmq.hops3', 'peers.net.roundtrip']);
}

export async function peers(ctx: Context): Promise<void> {
  const p = plan(ctx.quick);
  const systems: PeerSystem[] = [];
  ran = ['twinstar'];
  try {
    systems.push(await startTwinstar(ctx.serverNodeArgs, ctx.window));
    for (const start of [startRedis, startNats]) {
      try {
        const s = await start();
        if ('missing' in s) {
          const note = `peers: ${start === startRedis ? 'Redis' : 'NATS'} skipped: ${s.missing}`;
          ctx.report.notes.push(note);
          ctx.log(`  ${note}`);
        } else systems.push(s);
      } catch (error) {
        const note = `peers: ${start === startRedis ? 'Redis' : 'NATS'} skipped, it did not start: ${String(error)}`;
        ctx.report.notes.push(note);
        ctx.log(`  ${note}`);
      }
    }
    ran = systems.map((s) => s.system);
    const clients = ['redis', '@redis/client', 'nats'].map((m) => `${m} ${packageVersion(m)}`);
    const note = `peers: ${systems.map((s) => s.name).join(', ')}; client libraries ${clients.join(', ')}`;
    ctx.report.notes.push(note);
    ctx.log(`  ${note}`);
    for (const s of systems) {
      const t = Date.now();
      await within(s.load(p.keys), 300_000, `loading ${p.keys} keys into ${s.name}`);
      ctx.log(`  ${s.name}: ${p.keys} keys loaded in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }
    const runs = new Map<System, Runs>(
      systems.map((s) => [
        s.system,
        {
          connect: [],
          start: [],
          fan: Object.fromEntries(p.rates.map((r) => [r, []])),
          await: [],
          snapshot: [],
        },
      ]),
    );
    const measured = [...systems];
    // The ceiling over twinstar's awaited writes, measured at the start of each round: see
    // lib/raw-round-trip.ts.
    const raw = await RawRoundTrip.start();
    const rawRuns: number[] = [];
    const netRuns: number[] = [];
    try {
      for (let run = 0; run < ctx.runs; run++) {
        rawRuns.push(await raw.measure(p.awaitMs));
        netRuns.push(await raw.measureNet(p.awaitMs));
        ctx.log(
          `  raw round trips run ${run + 1}: zeromq.js ${Math.round(rawRuns.at(-1)!)}/s, plain TCP ${Math.round(netRuns.at(-1)!)}/s`,
        );
        for (const s of [...measured]) {
          try {
            await round(ctx, p, s, runs.get(s.system)!, run);
          } catch (error) {
            if (s.system === 'twinstar') throw error;
            // A peer that breaks is reported and left out; twinstar's figures still come out.
            const note = `peers: ${s.name} left out after an error in round ${run + 1}: ${String(error)}`;
            ctx.report.notes.push(note);
            ctx.log(`  !! ${note}`);
            measured.splice(measured.indexOf(s), 1);
            ran = measured.map((m) => m.system);
          }
        }
      }
    } finally {
      await raw.close();
    }
    reportPeers(ctx, p, measured, runs, { zmq: rawRuns, net: netRuns });
  } finally {
    for (const s of systems)
      await s.stop().catch((error) => ctx.log(`  !! stopping ${s.name}: ${String(error)}`));
  }
}

function packageVersion(name: string): string {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function round(ctx: Context, p: Plan, s: PeerSystem, r: Runs, run: number): Promise<void> {
  // A fresh process per system and round: its CPU time is these watchers' and nothing else's.
  const t0 = Date.now();
  const worker = new Worker([], WATCHERS_SCRIPT);
  const target = s.target;
  try {
    const connects = await worker.call<number[]>('connect.times', { target, n: p.connects }, 120_000);
    r.connect.push(median(connects));
    const started = await worker.call<{ ms: number }>('watch.start', { target, count: p.watchers }, 120_000);
    r.start.push(started.ms);
    // Warm-up (JIT, connections), uncounted.
    await pacedWrites((i, b) => s.fanWrite(i, b), 200, ctx.quick ? 200 : 500);
    await drained(worker, 1, 5000);
    const line: string[] = [];
    for (const rate of p.rates) {
      await sleep(100);
      await worker.call('watch.reset');
      const w0 = cpuSeconds(worker.pid);
      const s0 = s.serverCpu();
      const paced = await pacedWrites((i, b) => s.fanWrite(i, b), rate, p.pacedMs);
      const stats = await drained(worker, paced.done, 60_000);
      const clientCpu = cpuSeconds(worker.pid) - w0;
      const serverCpu = s.serverCpu() - s0;
      const deliveries = stats.counts.reduce((a, b) => a + b, 0);
      const lost = stats.counts.reduce((a, c) => a + Math.max(0, paced.done - c), 0);
      const hist = new Histogram();
      hist.merge(stats.hist);
      const per1000 = (sec: number) => (deliveries > 0 ? ((sec * 1000) / deliveries) * 1000 : NaN);
      const f: FanRun = {
        p50: hist.percentile(0.5) / 1000,
        p99: hist.percentile(0.99) / 1000,
        clientCpu: per1000(clientCpu),
        serverCpu: per1000(serverCpu),
        lost,
        disconnects: stats.disconnects,
        achieved: paced.rate,
        failed: paced.failed,
      };
      if (paced.failed > 0)
        ctx.log(`  !! ${s.name}: ${paced.failed} fan-out writes failed: ${paced.firstError}`);
      if (lost > 0 || stats.disconnects > 0)
        ctx.log(
          `  !! ${s.name}: ${lost} deliveries lost at ${rate}/s (${paced.done} writes to ${p.watchers} watchers), ${stats.disconnects} watcher disconnections`,
        );
      r.fan[rate]!.push(f);
      line.push(
        `${rate}/s p50 ${f.p50.toFixed(2)} p99 ${f.p99.toFixed(2)} ms, CPU/1k watchers ${f.clientCpu.toFixed(1)} server ${f.serverCpu.toFixed(1)} ms, lost ${lost}`,
      );
    }
    await worker.call('watch.stop', {}, 60_000);
    const snap = await worker.call<{ ms: number; keys: number }>(
      'snapshot.read',
      { target, expected: p.keys },
      180_000,
    );
    if (snap.keys !== p.keys) throw new Error(`${s.name}: the new reader got ${snap.keys} keys of ${p.keys}`);
    r.snapshot.push(snap.ms);
    if (run === 0) await awaitingWrites(s, WARM_UP_MS, WARM_UP_WRITES); // uncounted (lib/load.ts)
    const a = await awaitingWrites(s, p.awaitMs);
    if (a.failed > 0) throw new Error(`${s.name}: ${a.failed} awaited writes failed: ${a.firstError}`);
    r.await.push(a.rate);
    ctx.log(
      `  ${s.name} run ${run + 1}: connect ${r.connect.at(-1)!.toFixed(1)} ms, ${p.watchers} watchers in ${started.ms.toFixed(0)} ms; ` +
        `${line.join('; ')}; awaiting ${Math.round(a.rate)} writes/s; ${p.keys} keys to a new reader in ${snap.ms.toFixed(0)} ms ` +
        `(round: ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    );
  } finally {
    await worker.close();
  }
}

interface Stats {
  counts: number[];
  hist: { counts: number[]; maxUs: number };
  disconnects: number;
}

/** Waits until every watcher has `expected` deliveries, or the counts stop moving for 5 s. */
async function drained(worker: Worker, expected: number, ms: number): Promise<Stats> {
  const deadline = Date.now() + ms;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const stats = await worker.call<Stats>('watch.stats');
    const total = stats.counts.reduce((a, b) => a + b, 0);
    if (Math.min(...stats.counts) >= expected) return stats;
    if (total !== last) {
      last = total;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 5000) return stats;
    if (Date.now() > deadline) return stats;
    await sleep(20);
  }
}
