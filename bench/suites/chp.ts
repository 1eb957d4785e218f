/**
 * 3. Fire-and-forget CHP writes/s through the collector, on a pair, Model Six style: every KVSET
 * goes to both servers' collectors (the passive holds its copy on the pending list until the
 * active's copy arrives). A zeromq.js SUB on the active's publisher counts what is published; the
 * rate is what it received per second from the first write to the last delivery, and anything
 * written and not received is loss.
 *
 *   raw PUB        the figure: a zeromq.js PUB per collector (send high-water mark 1M) sends a
 *                  burst of KVSET messages (60k; 20k in quick mode) as fast as it can. The
 *                  collector queues up to 100k messages, so the burst measures the active's
 *                  sustained ingest rate with nothing dropped on the way.
 *   client 'chp'   (full mode) the same burst through twinstar's client in plain CHP mode, whose
 *                  PUB keeps the default send high-water mark (1000): CHP has no flow control,
 *                  so whatever the client's PUB cannot queue while the active falls behind is
 *                  dropped (reported, no target).
 */
import * as zmq from 'zeromq';
import { randomBytes } from 'node:crypto';
import { connect, type Client } from '../../src/index.js';
import { encodeKvMsg } from '../../src/wire/index.js';
import { value } from '../lib/load.js';
import { nowMs, startPair, sleep, waitFor, type Pair } from '../lib/proc.js';
import { Worker } from '../lib/worker-client.js';
import { settle } from './ceiling.js';
import { PS, type Context } from './context.js';

const KEYS = 10_000;

type Burst = {
  sent: number;
  applied: number;
  received: number;
  rate: number;
};

type Writer = (key: string, body: Buffer) => Promise<void>;

export async function chp(ctx: Context): Promise<void> {
  const pair = await startPair(ctx.serverNodeArgs);
  const worker = new Worker();
  const pubs = [pair.primary, pair.backup].map(
    () => new zmq.Publisher({ linger: 0, sendHighWaterMark: 1_000_000 }),
  );
  let client: Client | undefined;
  const rates: number[] = [];
  const losses: number[] = [];
  const bursts: Burst[] = [];
  let viaClient: Burst | undefined;
  try {
    pubs.forEach((pub, i) => pub.connect(pair.nodes[i]!.collector));
    const raw: Writer = async (key, body) => {
      const frames = encodeKvMsg({
        key,
        sequence: 0,
        uuid: randomBytes(16).toString('latin1'),
        properties: '',
        body,
      });
      for (const pub of pubs) await pub.send(frames);
    };
    await worker.call('sub.start', { endpoint: pair.primary.publisher, count: 1, prefixes: ['/chp/'] });
    await probe(worker, raw);

    const count = ctx.quick ? 20_000 : 60_000;
    for (let run = 0; run < ctx.runs; run++) {
      const r = await burst(ctx, pair, worker, raw, `run${run}`, count, 10_000);
      bursts.push(r);
      rates.push(r.rate);
      losses.push(r.sent - r.received);
    }
    if (!ctx.quick) {
      client = await connect({
        servers: [pair.primary.endpoint, pair.backup.endpoint],
        subtree: '/bench-writer/',
        mode: 'chp',
        connectTimeoutMs: 15_000,
      });
      const c = client;
      const viaLib: Writer = async (key, body) => {
        await c.set(key, body);
      };
      await probe(worker, viaLib);
      viaClient = await burst(ctx, pair, worker, viaLib, 'client', count, 10_000);
    }
  } finally {
    await client?.close();
    for (const pub of pubs) pub.close();
    await worker.close();
    await pair.stop();
  }
  const section = '3. Fire-and-forget CHP writes through the collector (pair, Model Six: KVSET to both)';
  const r = ctx.report.add({
    id: 'chp.rate',
    section,
    label: `raw PUB, bursts of ${bursts[0]?.sent.toLocaleString('en-US')}: writes/s received by a subscriber`,
    unit: 'writes/s',
    runs: rates,
    ratioTo: PS,
    detail: { bursts },
  });
  r.ratio = r.value / ctx.ceilings.pubSub;
  const lost = ctx.report.add({
    id: 'chp.loss',
    section,
    label: 'writes lost at the subscriber (all runs)',
    unit: 'count',
    runs: losses,
    aggregate: 'sum',
  });
  lost.target = { text: 'no loss', met: lost.value === 0 };
  if (viaClient) {
    const c = ctx.report.add({
      id: 'chp.client.rate',
      section,
      label: `twinstar client in 'chp' mode, same burst: writes/s received`,
      unit: 'writes/s',
      runs: [viaClient.rate],
      aggregate: 'single',
      ratioTo: PS,
      detail: viaClient,
    });
    c.ratio = c.value / ctx.ceilings.pubSub;
    ctx.report.add({
      id: 'chp.client.loss',
      section,
      label: `twinstar client in 'chp' mode, same burst: writes lost (of ${viaClient.sent.toLocaleString('en-US')})`,
      unit: 'count',
      runs: [viaClient.sent - viaClient.received],
      aggregate: 'single',
      detail: viaClient,
    });
  }
}

/** Until the writer's connections and the subscriber's subscription are up, writes vanish. */
async function probe(worker: Worker, write: Writer): Promise<void> {
  await worker.call('sub.reset');
  await waitFor(
    async () => {
      await write('/chp/probe', value(false));
      return (await worker.subStats()).counts[0]! > 0;
    },
    10_000,
    'a CHP write to reach the subscriber',
    50,
  );
}

async function burst(
  ctx: Context,
  pair: Pair,
  worker: Worker,
  write: Writer,
  tag: string,
  count: number,
  ms: number,
): Promise<Burst> {
  await sleep(200); // stray probes land before the count starts
  await worker.call('sub.reset');
  const applied0 = await pair.primary.metric('twinstar_updates_total');
  const body = value(false);
  const t0 = nowMs();
  let sent = 0;
  for (; sent < count; sent++) {
    if ((sent & 255) === 0) {
      if (nowMs() - t0 >= ms) break;
      await new Promise((resolve) => setImmediate(resolve)); // let the event loop breathe
    }
    await write(`/chp/${tag}/${sent % KEYS}`, body);
  }
  const received = await settle(worker, sent, 1000, 60_000);
  const stats = await worker.subStats();
  const applied = (await pair.primary.metric('twinstar_updates_total')) - applied0;
  const rate = (received / (stats.lastAt[0]! - t0)) * 1000;
  ctx.log(
    `  CHP ${tag}: ${sent} written, ${applied} applied by the active, ${received} received, ${Math.round(rate)}/s`,
  );
  return { sent, applied, received, rate };
}
