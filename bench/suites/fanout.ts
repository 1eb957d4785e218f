/**
 * 4. Fan-out: one writer (a native client, acknowledged writes), 1, 10 and 100 subscribers on the
 * active's update stream (P+3, a packed batch per prefix per release: what twinstar's own clients
 * follow), then 1 and 100 on its RFC 12 publisher (P+1, a KVPUB per update: plain CHP clients):
 * lean ZMTP subscribers (lib/zmtp.ts, real SUB peers on the wire), all in one worker process.
 * zeromq.js SUB sockets cost a promise per message: one process of them cannot take 100 x 10k
 * messages/s, and the benchmark would measure the subscribers, not the server.
 *
 *   throughput  the writer pipelines as fast as it can; each subscriber's rate is what it received
 *               per second from the first write to its last delivery (median subscriber shown)
 *   latency     the writer is paced at a fixed rate (10k updates/s in full mode); every value
 *               carries its write time, every subscriber records write-to-delivery latency
 *   server CPU  the active's CPU time (/proc/<pid>/stat, all threads) over the paced phase,
 *               divided by the updates it published
 */
import type { Client } from '../../src/index.js';
import { parseServer } from '../../src/client/servers.js';
import { pacedWrites, pipelinedWrites, value, writer } from '../lib/load.js';
import { cpuSeconds, nowMs, sleep, startPair, waitFor, type Pair } from '../lib/proc.js';
import { Histogram, median, min } from '../lib/stats.js';
import { Worker, type SubStats } from '../lib/worker-client.js';
import { PS, type Context } from './context.js';

const KEYS = 1000;

export async function fanout(ctx: Context): Promise<void> {
  const pair = await startPair(ctx.serverNodeArgs);
  const client = await writer([pair.primary.endpoint, pair.backup.endpoint]);
  try {
    for (const kind of ['updates', 'chp'] as const) {
      const cpu: Record<number, number> = {};
      for (const subs of kind === 'updates' ? [1, 10, 100] : [1, 100])
        cpu[subs] = await fanoutWith(ctx, pair, client, subs, kind);
      const ratio = cpu[100]! / cpu[1]!;
      const f = ctx.report.add({
        id: `${idOf(kind)}.cpu.ratio`,
        section: sectionName(ctx, kind),
        label: 'server CPU per update, 100 subscribers ÷ 1 subscriber',
        unit: '×',
        runs: [ratio],
        aggregate: 'single',
      });
      if (kind === 'updates') f.target = { text: '≤ 1.2×', met: ratio <= 1.2 };
    }
  } finally {
    await client.close();
    await pair.stop();
  }
}

type Kind = 'updates' | 'chp';

/** The report ids: the update stream keeps the ids fan-out had before it existed. */
function idOf(kind: Kind): string {
  return kind === 'updates' ? 'fanout' : 'fanout.chp';
}

function sectionName(ctx: Context, kind: Kind): string {
  const on = kind === 'updates' ? 'update stream (native clients)' : 'RFC 12 publisher (CHP clients)';
  return `4. Fan-out on the ${on} (pair, one native writer, ZMTP subscribers; latency at ${rate(ctx).toLocaleString('en-US')} updates/s)`;
}

function rate(ctx: Context): number {
  return ctx.quick ? 5000 : 10_000;
}

/** Returns the median server CPU per update (µs) at the paced rate. */
async function fanoutWith(
  ctx: Context,
  pair: Pair,
  client: Client,
  subs: number,
  kind: Kind,
): Promise<number> {
  const worker = new Worker();
  const prefix = `/fan/${kind}/${subs}/`;
  const rates: number[] = [];
  const minRates: number[] = [];
  const lost: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  const cpuPerUpdate: number[] = [];
  const behind: number[] = [];
  const achieved: number[] = [];
  const pacedLost: number[] = [];
  const mainUs: number[] = [];
  const ioUs: number[] = [];
  const otherUs: number[] = [];
  const busy: Record<string, number>[] = [];
  try {
    await worker.call('sub.start', {
      endpoint: kind === 'updates' ? parseServer(pair.primary.endpoint).updates : pair.primary.publisher,
      count: subs,
      prefixes: [prefix],
      kind: kind === 'updates' ? 'updates' : 'zmtp',
    });
    // Every subscription must have reached the publisher before anything counts.
    await waitFor(
      async () => {
        await client.set(`${prefix}probe`, value(false));
        return Math.min(...(await worker.subStats()).counts) > 0;
      },
      15_000,
      `${subs} subscribers to be connected`,
      50,
    );
    const ms = ctx.secs(3, 0.5) * 1000;
    const pacedMs = ctx.secs(5, 1) * 1000;
    for (let run = 0; run < ctx.runs; run++) {
      // Throughput: as fast as the writer can get acknowledgements.
      await sleep(ctx.quick ? 100 : 200);
      await worker.call('sub.reset', { stamped: false });
      const t0 = nowMs();
      const w = await pipelinedWrites(client, {
        ms,
        window: ctx.window,
        max: 5_000_000,
        key: (i) => `${prefix}${i % KEYS}`,
      });
      if (w.failed > 0) throw new Error(`fan-out writes failed: ${w.firstError}`);
      const stats = await drained(worker, w.done);
      const perSub = stats.counts.map((c, i) => (c / (stats.lastAt[i]! - t0)) * 1000);
      rates.push(median(perSub));
      minRates.push(min(perSub));
      lost.push(w.done - Math.min(...stats.counts));

      // Latency and CPU at a fixed rate.
      await sleep(ctx.quick ? 100 : 200);
      await worker.call('sub.reset', { stamped: true });
      const cpu0 = pair.primary.cpuSeconds();
      const threads0 = pair.primary.threadCpu();
      const subCpu0 = cpuSeconds(worker.pid);
      const ownCpu0 = process.cpuUsage();
      const seq0 = (await pair.primary.status()).sequence;
      const paced = await pacedWrites(client, rate(ctx), pacedMs, (i) => `${prefix}${i % KEYS}`);
      const seq1 = (await pair.primary.status()).sequence;
      const cpu1 = pair.primary.cpuSeconds();
      const threads1 = pair.primary.threadCpu();
      const subCpu = cpuSeconds(worker.pid) - subCpu0;
      const own = process.cpuUsage(ownCpu0);
      const updates = Math.max(1, seq1 - seq0);
      const perUpdate = (sec: number) => (sec / updates) * 1e6;
      mainUs.push(perUpdate(threads1.main - threads0.main));
      ioUs.push(perUpdate(threads1.zmqIo - threads0.zmqIo));
      otherUs.push(perUpdate(threads1.other - threads0.other));
      const share = (sec: number) => Math.round((sec / (paced.ms / 1000)) * 100);
      busy.push({
        server: share(cpu1 - cpu0),
        subscribers: share(subCpu),
        writer: share((own.user + own.system) / 1e6),
      });
      if (paced.failed > 0) throw new Error(`paced writes failed: ${paced.firstError}`);
      const pstats = await drained(worker, paced.done);
      // CPU per update means something only if the updates were delivered.
      const delivered = Math.min(...pstats.counts);
      const complete = delivered >= 0.99 * paced.done;
      if (!complete)
        ctx.log(`  !! ${subs} subscribers: only ${delivered} of ${paced.done} paced updates delivered`);
      const hist = new Histogram();
      hist.merge(pstats.hist);
      p50.push(hist.percentile(0.5) / 1000);
      p99.push(hist.percentile(0.99) / 1000);
      cpuPerUpdate.push(complete ? perUpdate(cpu1 - cpu0) : NaN);
      pacedLost.push(paced.done - delivered);
      behind.push(paced.behind);
      achieved.push(paced.rate);
      ctx.log(
        `  ${kind} ${subs} subs run ${run + 1}: ${Math.round(rates.at(-1)!)}/s each (min ${Math.round(minRates.at(-1)!)}), lost ${lost.at(-1)}; ` +
          `at ${Math.round(paced.rate)}/s p50 ${p50.at(-1)!.toFixed(2)} ms p99 ${p99.at(-1)!.toFixed(2)} ms; ` +
          `server ${cpuPerUpdate.at(-1)!.toFixed(1)} µs CPU/update (JS ${mainUs.at(-1)!.toFixed(1)}, zmq I/O ${ioUs.at(-1)!.toFixed(1)}, other ${otherUs.at(-1)!.toFixed(1)}); ` +
          `% of a core: ${JSON.stringify(busy.at(-1))}`,
      );
    }
  } finally {
    await worker.close();
  }
  const section = sectionName(ctx, kind);
  const id = idOf(kind);
  const rtUs = 1e6 / ctx.ceilings.roundTrip;
  const r = ctx.report.add({
    id: `${id}.${subs}.rate`,
    section,
    label: `${subs} subscriber${subs > 1 ? 's' : ''}: updates/s delivered to each (max rate)`,
    unit: 'updates/s',
    runs: rates,
    ratioTo: PS,
    detail: { slowestSubscriber: minRates, lost },
  });
  r.ratio = r.value / ctx.ceilings.pubSub;
  const a = ctx.report.add({
    id: `${id}.${subs}.p50`,
    section,
    label: `${subs} subscriber${subs > 1 ? 's' : ''}: p50 write-to-delivery latency`,
    unit: 'ms',
    runs: p50,
    ratioTo: 'raw RTT',
  });
  a.ratio = (a.value * 1000) / rtUs;
  const b = ctx.report.add({
    id: `${id}.${subs}.p99`,
    section,
    label: `${subs} subscriber${subs > 1 ? 's' : ''}: p99 write-to-delivery latency`,
    unit: 'ms',
    runs: p99,
    ratioTo: 'raw RTT',
    detail: { offeredRate: rate(ctx), achievedRate: achieved, writerBehindSchedule: behind, lost: pacedLost },
  });
  b.ratio = (b.value * 1000) / rtUs;
  if (subs === 100 && kind === 'updates' && !ctx.quick)
    b.target = { text: '< 50 ms at 10k updates/s', met: b.value < 50 };
  if (subs === 100 && kind === 'updates' && ctx.quick)
    b.target = { text: '< 50 ms (quick: at 5k updates/s only)', met: b.value < 50 };
  const c = ctx.report.add({
    id: `${id}.${subs}.cpu`,
    section,
    label: `${subs} subscriber${subs > 1 ? 's' : ''}: active server CPU per published update`,
    unit: 'µs/update',
    runs: cpuPerUpdate,
    detail: { jsThreadUs: mainUs, zmqIoThreadUs: ioUs, otherThreadsUs: otherUs, percentOfACore: busy },
  });
  return c.value;
}

/** Waits until every subscriber has `expected` messages or the counts stop moving. */
async function drained(worker: Worker, expected: number): Promise<SubStats> {
  const deadline = Date.now() + 60_000;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const stats = await worker.subStats();
    const total = stats.counts.reduce((a, b) => a + b, 0);
    if (Math.min(...stats.counts) >= expected) return stats;
    if (total !== last) {
      last = total;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 1000) return stats;
    if (Date.now() > deadline) return stats;
    await sleep(20);
  }
}
