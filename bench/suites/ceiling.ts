/**
 * 1. The per-call ceilings of zeromq.js on this machine, in the same run: raw PUB->SUB messages/s
 * (single-frame 100-byte messages, one awaited send() each) and DEALER->ROUTER->DEALER round
 * trips/s (one in flight). The sender runs in this process and the receiver in a worker process,
 * the same split as client and server below.
 */
import * as zmq from 'zeromq';
import { freePorts, nowMs, sleep, waitFor } from '../lib/proc.js';
import { Worker } from '../lib/worker-client.js';
import { RawRoundTrip } from '../lib/raw-round-trip.js';
import type { Context } from './context.js';

const MESSAGE_BYTES = 100;

export async function ceilings(ctx: Context): Promise<void> {
  const pubSub: number[] = [];
  const loss: number[] = [];
  const roundTrip: number[] = [];
  const worker = new Worker();
  try {
    // PUB -> SUB
    const port = await freePorts(1);
    const endpoint = `tcp://127.0.0.1:${port}`;
    const pub = new zmq.Publisher({ linger: 0, sendHighWaterMark: 1_000_000 });
    await pub.bind(endpoint);
    await worker.call('sub.start', { endpoint, count: 1, prefixes: [''], hwm: 1_000_000 });
    const msg = Buffer.alloc(MESSAGE_BYTES, 0x62);
    // The subscription travels to the PUB asynchronously (the slow joiner): probe until it arrives.
    await waitFor(
      async () => {
        await pub.send(msg);
        return (await worker.subStats()).counts[0]! > 0;
      },
      5000,
      'the ceiling subscriber',
    );
    const ms = ctx.secs(3, 1) * 1000;
    for (let run = 0; run < ctx.runs; run++) {
      await sleep(200); // stray probes land before the count starts
      await worker.call('sub.reset');
      const t0 = nowMs();
      let sent = 0;
      for (; sent < 20_000_000; sent++) {
        if ((sent & 1023) === 0 && nowMs() - t0 > ms) break;
        await pub.send(msg);
      }
      const received = await settle(worker, sent);
      const stats = await worker.subStats();
      pubSub.push((received / (stats.lastAt[0]! - t0)) * 1000);
      loss.push(sent - received);
      ctx.log(
        `  PUB->SUB run ${run + 1}: ${Math.round(pubSub.at(-1)!)} msg/s, ${sent} sent, ${sent - received} lost`,
      );
    }
    pub.close();
    await worker.call('sub.stop');

    // DEALER -> ROUTER -> DEALER
    const raw = await RawRoundTrip.start();
    try {
      for (let run = 0; run < ctx.runs; run++) {
        roundTrip.push(await raw.measure(ms));
        ctx.log(`  round trip run ${run + 1}: ${Math.round(roundTrip.at(-1)!)} rt/s`);
      }
    } finally {
      await raw.close();
    }
  } finally {
    await worker.close();
  }
  const s = '1. Ceiling (raw zeromq.js)';
  const ps = ctx.report.add({
    id: 'ceiling.pubsub',
    section: s,
    label: 'PUB→SUB, 100-byte single-frame messages, one send() each',
    unit: 'msg/s',
    runs: pubSub,
    detail: { lost: loss },
  });
  const rt = ctx.report.add({
    id: 'ceiling.roundtrip',
    section: s,
    label: 'DEALER→ROUTER→DEALER round trips, one in flight',
    unit: 'rt/s',
    runs: roundTrip,
  });
  ctx.report.add({
    id: 'ceiling.roundtrip.us',
    section: s,
    label: 'raw round-trip time (1 / round trips per second)',
    unit: 'µs',
    runs: roundTrip.map((r) => 1e6 / r),
  });
  ctx.ceilings.pubSub = ps.value;
  ctx.ceilings.roundTrip = rt.value;
}

/** Waits until the subscriber has `expected` messages, or its count stops moving; returns the count. */
export async function settle(
  worker: Worker,
  expected: number,
  quietMs = 500,
  maxMs = 30_000,
): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const stats = await worker.subStats();
    const total = Math.min(...stats.counts);
    if (total >= expected) return total;
    if (total !== last) {
      last = total;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > quietMs) return total;
    if (Date.now() > deadline) return total;
    await sleep(20);
  }
}
