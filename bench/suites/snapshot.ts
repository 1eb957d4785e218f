/**
 * 5. Snapshot: a pair is loaded with 100k keys (then 1M in full mode) of 100-byte values by a
 * pipelined native writer; then a late joiner (a native client in a fresh worker process) connects
 * and the time from its creation to its replica being loaded (connect() resolving) is measured.
 * Server RSS comes from /proc/<pid>/status of both nodes; client RSS is the joiner's own (a plain
 * node process on the compiled client, bench/joiner.js), after a GC, with the replica loaded.
 */
import { loadKeys, writer } from '../lib/load.js';
import { startPair, type Pair } from '../lib/proc.js';
import { joinOnce } from '../lib/worker-client.js';
import { PS, type Context } from './context.js';

const MB = 2 ** 20;

export async function snapshot(ctx: Context): Promise<void> {
  const pair = await startPair(ctx.serverNodeArgs);
  const servers = [pair.primary.endpoint, pair.backup.endpoint];
  const client = await writer(servers);
  const sizes = ctx.quick ? [100_000] : [100_000, 1_000_000];
  let loaded = 0;
  try {
    for (const size of sizes) {
      const t = Date.now();
      const w = await loadKeys(
        client,
        loaded,
        size,
        (i) => `/snap/${String(i).padStart(7, '0')}`,
        ctx.window,
      );
      loaded = size;
      const keys = (await pair.primary.status()).keys;
      ctx.log(
        `  loaded ${size} keys in ${((Date.now() - t) / 1000).toFixed(1)} s (${Math.round(w.rate)} writes/s); active holds ${keys} keys`,
      );
      await pair.backup.ready((s) => s.keys >= size, 60_000);
      await measure(ctx, pair, servers, size);
    }
  } finally {
    await client.close();
    await pair.stop();
  }
}

async function measure(ctx: Context, pair: Pair, servers: string[], size: number): Promise<void> {
  const times: number[] = [];
  const clientRss: number[] = [];
  const heap: number[] = [];
  const baseRss: number[] = [];
  for (let run = 0; run < ctx.runs; run++) {
    // A fresh process per join: its RSS is the replica's and nothing else's.
    const r = await joinOnce({ servers, subtree: '/snap/', timeoutMs: 120_000 });
    if (r.keys !== size) throw new Error(`late joiner loaded ${r.keys} keys, expected ${size}`);
    times.push(r.ms);
    clientRss.push(r.rss / MB);
    baseRss.push(r.rssBefore / MB);
    heap.push(r.heapUsed / MB);
    ctx.log(
      `  join ${size} run ${run + 1}: ${r.ms.toFixed(0)} ms, client RSS ${(r.rss / MB).toFixed(0)} MB (heap ${(r.heapUsed / MB).toFixed(0)} MB, ${(r.rssBefore / MB).toFixed(0)} MB before connecting)`,
    );
  }
  const serverRss = pair.primary.rssBytes() / MB;
  const passiveRss = pair.backup.rssBytes() / MB;
  // What the RSS is made of, from each node's own process metrics.
  const heapOf = async (node: Pair['primary']) => ({
    heapUsedMB: (await node.metric('twinstar_nodejs_heap_size_used_bytes')) / MB,
    heapTotalMB: (await node.metric('twinstar_nodejs_heap_size_total_bytes')) / MB,
    externalMB: (await node.metric('twinstar_nodejs_external_memory_bytes')) / MB,
  });
  const activeHeap = await heapOf(pair.primary);
  const passiveHeap = await heapOf(pair.backup);
  ctx.log(
    `  ${size} keys: active RSS ${serverRss.toFixed(0)} MB ${JSON.stringify(round(activeHeap))}, passive RSS ${passiveRss.toFixed(0)} MB ${JSON.stringify(round(passiveHeap))}`,
  );
  const section = '5. Snapshot to a late joiner (pair, native client, 100-byte values)';
  const label = size >= 1_000_000 ? `${size / 1_000_000}M` : `${size / 1000}k`;
  const t = ctx.report.add({
    id: `snapshot.${size}.ms`,
    section,
    label: `${label} keys: time to load the replica`,
    unit: 'ms',
    runs: times,
    ratioTo: PS,
  });
  // As a rate: keys per second against single messages per second.
  t.ratio = size / (t.value / 1000) / ctx.ceilings.pubSub;
  if (size === 1_000_000) t.target = { text: '< 3 s', met: t.value < 3000 };
  const s = ctx.report.add({
    id: `snapshot.${size}.server.rss`,
    section,
    label: `${label} keys: server RSS (active)`,
    unit: 'MB',
    runs: [serverRss],
    aggregate: 'single',
    detail: { ...activeHeap, passiveMB: passiveRss },
  });
  if (size === 1_000_000) s.target = { text: '< 300 MB per 1M keys', met: s.value < 300 };
  ctx.report.add({
    id: `snapshot.${size}.server.rss.passive`,
    section,
    label: `${label} keys: server RSS (passive)`,
    unit: 'MB',
    runs: [passiveRss],
    aggregate: 'single',
    detail: passiveHeap,
  });
  ctx.report.add({
    id: `snapshot.${size}.client.rss`,
    section,
    label: `${label} keys: client RSS (late joiner, after GC)`,
    unit: 'MB',
    runs: clientRss,
    detail: { heapUsedMB: heap, rssBeforeConnectMB: baseRss },
  });
}

function round(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v)]));
}
