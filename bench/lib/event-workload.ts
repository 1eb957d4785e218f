/**
 * One load of the events suite (suites/events.ts): a publisher and the consumer processes
 * (bench/event-worker.ts) it feeds, measured run by run: throughput (pipelined publishes, the rate
 * received) and publish-to-handler latency at a paced rate, with exactly-once checks (lost,
 * duplicated, unacked, late events) and, when events go missing, what the clients and the active
 * said.
 */
import { nowMs, sleep, waitFor, type ServerNode } from './proc.js';
import { pacedPublishes, pipelinedPublishes, type Publish } from './publish-load.js';
import { Histogram, median } from './stats.js';
import type { Worker } from './worker-client.js';
import type { Context } from '../suites/context.js';

/** The server's default ack wait (eventAckWaitMs): how long missing events are waited for, + 15 s. */
export const ACK_WAIT_MS = 30_000;

/** What an event worker counted since its last reset (bench/event-worker.ts, `stats`). */
export interface EventStats {
  counts: number[];
  firstAt: number[];
  lastAt: number[];
  hist: { counts: number[]; maxUs: number };
  redeliveries: number;
  acked: number;
  ackFailed: number;
  firstAckError?: string;
}

/** The table section of every figure of the events suite. */
export function section(ctx: Context): string {
  return `9. Event bus (pair; consumers in their own processes; latency at ${pacedRate(ctx).toLocaleString('en-US')} events/s)`;
}

/** Events/s of the latency phase. */
export function pacedRate(ctx: Context): number {
  return ctx.quick ? 1000 : 2000;
}

/** Every worker's counts. */
export async function stats(workers: Worker[]): Promise<EventStats[]> {
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
export class Workload {
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
