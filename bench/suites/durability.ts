/**
 * 7. Durability (issue 15): what a data dir costs a pair, beside memory mode.
 *
 * a) Acknowledged writes/s of a pair (primary and backup, each with its own temporary data dir)
 *    in memory mode (no data dir: the reference) and under `--fsync off`, `batch` and `always`,
 *    with suite 2's loads (bench/suites/acked.ts): one client awaiting each write, and one
 *    pipelined client. The four pairs run at once, idle but for the one measured, and the modes
 *    take turns in each round (memory, off, batch, always, then again), so that a busy minute of a
 *    shared machine does not land on one mode alone; the median over the rounds is reported.
 * b) Restart to serving: a pair under `batch` loaded with 100k keys (then 1M in full mode) of
 *    100-byte values; both nodes stopped (SIGTERM, then SIGKILL) and spawned again; the time from
 *    the spawn until (1) a client created at the spawn has its first write acknowledged and (2) a
 *    fresh client in a process of its own, also started at the spawn, holds all the keys. Then the
 *    RSS of the node that became active.
 * c) RSS of the active after loading the keys, in memory mode and in durable mode (`batch`): per
 *    1M keys, measured at 1M in full mode; in quick mode measured at 100k and extrapolated (the
 *    empty node plus ten times what 100k keys added), and labelled so.
 *
 * Data dirs are made under the OS temporary directory and removed when the suite ends.
 *
 * This module holds the three measurements and their figures; the restart's first acknowledged
 * write (a writer retrying while the pair comes up) is lib/first-ack.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '../../src/index.js';
import { firstAck } from '../lib/first-ack.js';
import { awaitingWrites, loadKeys, pipelinedWrites, writer } from '../lib/load.js';
import {
  nowMs,
  sleep,
  startPair,
  waitFor,
  type NodeOptions,
  type Pair,
  type RssParts,
  type ServerNode,
} from '../lib/proc.js';
import { joinOnce } from '../lib/worker-client.js';
import { PS, RT, type Context } from './context.js';

export const MODES = ['memory', 'off', 'batch', 'always'] as const;
type Mode = (typeof MODES)[number];
export const SIGNALS = ['term', 'kill'] as const;
type Stop = (typeof SIGNALS)[number];

const MB = 2 ** 20;
const KEYS = 10_000;
/** the subtree the loaded keys go to, and the late joiner follows */
const LOADED = '/dur/';
const loadedKey = (i: number) => `${LOADED}${String(i).padStart(7, '0')}`;

/** The sizes of the restart figure, and the largest: the one the RSS figure is measured at. */
export function durabilitySizes(quick: boolean): number[] {
  return quick ? [100_000] : [100_000, 1_000_000];
}

export const sizeLabel = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

export async function durability(ctx: Context): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'twinstar-bench-durability-'));
  try {
    await throughput(ctx, root);
    const sizes = durabilitySizes(ctx.quick);
    const largest = sizes[sizes.length - 1]!;
    const memory = await loadedRss(ctx, largest);
    const durable = await restarts(ctx, root, sizes);
    reportRss(ctx, largest, { memory, batch: durable });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Each node of the pair in `mode`: a fresh data dir of its own under `root`, or none for memory. */
function storage(root: string, mode: Mode): NodeOptions {
  if (mode === 'memory') return () => ({});
  return (role) => ({ dataDir: mkdtempSync(join(root, `${mode}-${role}-`)), fsync: mode });
}

// ---------------------------------------------------------------------------------------------
// a) Acknowledged writes/s by mode.

async function throughput(ctx: Context, root: string): Promise<void> {
  const ms = ctx.secs(3, 0.5) * 1000;
  const warm = ctx.quick ? 150 : 300;
  const pairs = new Map<Mode, Pair>();
  const clients = new Map<Mode, Client>();
  const one = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const piped = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const key = (_c: number, i: number) => `/ack/${i % KEYS}`;
  try {
    for (const mode of MODES) {
      const pair = await startPair(ctx.serverNodeArgs, () => [], storage(root, mode));
      pairs.set(mode, pair);
      clients.set(mode, await writer([pair.primary.endpoint, pair.backup.endpoint]));
    }
    // Warm up every path (JIT, sockets, the first pages of each data file) before measuring.
    for (const client of clients.values()) {
      await awaitingWrites([client], warm, key);
      await pipelinedWrites(client, { ms: warm, window: ctx.window, max: 1e6, key: (i) => key(0, i) });
    }
    const failures: string[] = [];
    for (let round = 0; round < ctx.runs; round++) {
      for (const mode of MODES) {
        const client = clients.get(mode)!;
        const a = await awaitingWrites([client], ms, key);
        const p = await pipelinedWrites(client, {
          ms,
          window: ctx.window,
          max: 5_000_000,
          key: (i) => key(0, i),
        });
        one.get(mode)!.push(a.rate);
        piped.get(mode)!.push(p.rate);
        for (const r of [a, p])
          if (r.failed > 0) failures.push(`${mode}: ${r.failed} failed: ${r.firstError}`);
        ctx.log(
          `  round ${round + 1}, ${mode}: 1 awaiting ${Math.round(a.rate)}/s, pipelined ${Math.round(p.rate)}/s`,
        );
      }
    }
    if (failures.length > 0) throw new Error(`writes failed: ${failures.join('; ')}`);
  } finally {
    for (const client of clients.values()) await client.close();
    await Promise.all([...pairs.values()].map((pair) => pair.stop()));
  }
  const section = '7a. Durability: acknowledged writes/s of a pair by storage mode (a data dir per node)';
  const label = (mode: Mode) => (mode === 'memory' ? 'memory (no data dir)' : `--fsync ${mode}`);
  for (const [kind, runs, ceiling, what] of [
    ['await1', one, RT, '1 client, awaiting each write'],
    ['pipelined', piped, PS, `1 client, pipelined (${ctx.window} in flight)`],
  ] as const) {
    let reference = NaN;
    for (const mode of MODES) {
      const f = ctx.report.add({
        id: `durability.ack.${mode}.${kind}`,
        section,
        label: `${what}: ${label(mode)}`,
        unit: 'writes/s',
        runs: runs.get(mode)!,
        ratioTo: mode === 'memory' ? ceiling : 'memory',
      });
      if (mode === 'memory') {
        reference = f.value;
        f.ratio = f.value / (kind === 'await1' ? ctx.ceilings.roundTrip : ctx.ceilings.pubSub);
      } else {
        f.ratio = f.value / reference;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// b) Restart to serving, and the RSS of a durable pair after loading.

interface Restart {
  writeMs: number;
  snapshotMs: number;
  /** connect() calls each client needed (connects refused with UnavailableError are retried) */
  connects: { writer: number; joiner: number };
  rss: RssParts;
  active: string;
}

/** Loads a pair under batch, restarts it; returns the active's RSS after loading the largest size. */
async function restarts(ctx: Context, root: string, sizes: number[]): Promise<RssPair> {
  const pair = await startPair(ctx.serverNodeArgs, () => [], storage(root, 'batch'));
  const servers = [pair.primary.endpoint, pair.backup.endpoint];
  const empty = pair.primary.rssParts();
  let loadedRssParts: RssParts | undefined;
  let settledParts: RssParts | undefined;
  let loaded = 0;
  try {
    for (const size of sizes) {
      // The active may be either node after a restart: a fresh client finds it.
      const client = await writer(servers);
      try {
        const t = Date.now();
        const w = await loadKeys(client, loaded, size, loadedKey, ctx.window);
        loaded = size;
        ctx.log(
          `  batch pair: loaded ${size} keys in ${((Date.now() - t) / 1000).toFixed(1)} s (${Math.round(w.rate)} writes/s)`,
        );
      } finally {
        await client.close();
      }
      const { active } = await settled(pair, size);
      if (size === sizes[sizes.length - 1]) {
        loadedRssParts = active.rssParts();
        settledParts = await settledRss(ctx, active);
      }
      const results = new Map<Stop, Restart[]>(SIGNALS.map((s) => [s, []]));
      for (let run = 0; run < ctx.runs; run++) {
        for (const stop of SIGNALS) {
          const r = await restartOnce(pair, servers, size, stop);
          results.get(stop)!.push(r);
          ctx.log(
            `  ${sizeLabel(size)} keys, ${stop === 'term' ? 'SIGTERM' : 'SIGKILL'} run ${run + 1}: first write ${r.writeMs.toFixed(0)} ms, all keys ${r.snapshotMs.toFixed(0)} ms after the spawn (connects: writer ${r.connects.writer}, joiner ${r.connects.joiner}); active (${r.active}) RSS ${mb(r.rss.vm)} MB (anon ${mb(r.rss.anon)} + file ${mb(r.rss.file)})`,
          );
        }
      }
      reportRestarts(ctx, size, results);
    }
  } finally {
    await pair.stop();
  }
  return { empty, loaded: loadedRssParts!, settled: settledParts };
}

/** Waits (bounded) for one node ACTIVE with `size` keys or more and the other PASSIVE and caught up. */
async function settled(pair: Pair, size: number): Promise<{ active: ServerNode; passive: ServerNode }> {
  let found: { active: ServerNode; passive: ServerNode } | undefined;
  await waitFor(
    async () => {
      const [p, b] = await Promise.all(pair.nodes.map((n) => n.status().catch(() => undefined)));
      if (!p || !b) return false;
      const [a, s, active, passive] =
        p.state === 'ACTIVE' ? [p, b, pair.primary, pair.backup] : [b, p, pair.backup, pair.primary];
      if (a.state !== 'ACTIVE' || a.degraded || s.state !== 'PASSIVE') return false;
      if (a.keys < size || s.sequence !== a.sequence) return false;
      found = { active, passive };
      return true;
    },
    180_000,
    `the pair to hold ${size} keys with the passive caught up`,
  );
  return found!;
}

async function restartOnce(pair: Pair, servers: string[], size: number, stop: Stop): Promise<Restart> {
  if (stop === 'term') await pair.stop();
  else await Promise.all(pair.nodes.map((n) => n.kill()));
  const spawned = nowMs();
  pair.primary.restart();
  pair.backup.restart();
  // Both clients start with the servers, and find them once they listen.
  const [acked, joined] = await Promise.all([
    firstAck(servers, 300_000),
    joinOnce({ servers, subtree: LOADED, timeoutMs: 300_000, retryUnavailable: true }),
  ]);
  if (joined.keys !== size) throw new Error(`the fresh client holds ${joined.keys} keys, expected ${size}`);
  const { active } = await settled(pair, size);
  return {
    writeMs: acked.at - spawned,
    snapshotMs: joined.doneAt - spawned,
    connects: { writer: acked.connects, joiner: joined.attempts },
    rss: active.rssParts(),
    active: active.spec.role,
  };
}

function reportRestarts(ctx: Context, size: number, results: Map<Stop, Restart[]>): void {
  const section = '7b. Durability: restart of both nodes to serving (--fsync batch, 100-byte values)';
  const n = sizeLabel(size);
  for (const stop of SIGNALS) {
    const runs = results.get(stop)!;
    const how = `${n} keys, both ${stop === 'term' ? 'SIGTERMed' : 'SIGKILLed'}`;
    const id = `durability.restart.${size}.${stop}`;
    const actives = runs.map((r) => r.active);
    ctx.report.add({
      id: `${id}.write`,
      section,
      label: `${how}: spawn → first acknowledged write`,
      unit: 'ms',
      runs: runs.map((r) => r.writeMs),
      detail: { active: actives, connects: runs.map((r) => r.connects.writer) },
    });
    ctx.report.add({
      id: `${id}.snapshot`,
      section,
      label: `${how}: spawn → a fresh client holds all ${n} keys`,
      unit: 'ms',
      runs: runs.map((r) => r.snapshotMs),
      detail: { connects: runs.map((r) => r.connects.joiner) },
    });
    for (const part of ['vm', 'anon', 'file'] as const) {
      ctx.report.add({
        id: `${id}.rss.${part}`,
        section,
        label: `${how}: active ${RSS_NAMES[part]} once serving`,
        unit: 'MB',
        runs: runs.map((r) => r.rss[part] / MB),
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// c) RSS per 1M keys.

interface RssPair {
  /** the active right after the pair started, empty */
  empty: RssParts;
  /** the active once the keys were loaded and the passive caught up */
  loaded: RssParts;
  /**
   * full mode: the same, once the de-duplication window (dedupeMs, 30 s by default) has let go of
   * the load's write uuids, which a burst of 1M writes holds for that long
   */
  settled?: RssParts;
}

/** The default dedupeMs, and a margin for the timer that prunes past it. */
const DEDUPE_SETTLE_MS = 30_000 + 3_000;

/** Full mode: the active's RSS once the load's write uuids are past the de-duplication horizon. */
async function settledRss(ctx: Context, active: ServerNode): Promise<RssParts | undefined> {
  if (ctx.quick) return undefined;
  await sleep(DEDUPE_SETTLE_MS);
  return active.rssParts();
}

const RSS_NAMES = { vm: 'VmRSS', anon: 'RssAnon', file: 'RssFile' } as const;

/** A pair in memory mode loaded with `size` keys: its active's RSS, empty and loaded. */
async function loadedRss(ctx: Context, size: number): Promise<RssPair> {
  const pair = await startPair(ctx.serverNodeArgs);
  const empty = pair.primary.rssParts();
  const client = await writer([pair.primary.endpoint, pair.backup.endpoint]);
  try {
    const t = Date.now();
    const w = await loadKeys(client, 0, size, loadedKey, ctx.window);
    ctx.log(
      `  memory pair: loaded ${size} keys in ${((Date.now() - t) / 1000).toFixed(1)} s (${Math.round(w.rate)} writes/s)`,
    );
    const { active } = await settled(pair, size);
    const loaded = active.rssParts();
    return { empty, loaded, settled: await settledRss(ctx, active) };
  } finally {
    await client.close();
    await pair.stop();
  }
}

function reportRss(ctx: Context, size: number, measured: Record<'memory' | 'batch', RssPair>): void {
  const scale = 1_000_000 / size;
  const section =
    scale === 1
      ? '7c. Durability: active RSS per 1M keys of 100-byte values, after loading them'
      : `7c. Durability: active RSS per 1M keys of 100-byte values, ESTIMATED from ${sizeLabel(size)} keys (empty node + ${scale}× what they added)`;
  for (const mode of ['memory', 'batch'] as const) {
    const { empty, loaded } = measured[mode];
    for (const part of ['vm', 'anon', 'file'] as const) {
      const estimate = (empty[part] + (loaded[part] - empty[part]) * scale) / MB;
      const f = ctx.report.add({
        id: `durability.rss.${mode}.${part}`,
        section,
        label: `${mode === 'memory' ? 'memory (no data dir)' : 'durable, --fsync batch'}: ${RSS_NAMES[part]}`,
        unit: 'MB',
        runs: [estimate],
        aggregate: 'single',
        detail: { keysMeasured: size, emptyMB: empty[part] / MB, loadedMB: loaded[part] / MB },
      });
      if (part === 'vm' && scale === 1) f.target = { text: '< 300 MB per 1M keys', met: f.value < 300 };
      const later = measured[mode].settled;
      if (later === undefined) continue;
      const s = ctx.report.add({
        id: `durability.rss.${mode}.settled.${part}`,
        section,
        label: `${mode === 'memory' ? 'memory (no data dir)' : 'durable, --fsync batch'}: ${RSS_NAMES[part]}, 33 s later (the load's uuids past dedupeMs)`,
        unit: 'MB',
        runs: [later[part] / MB],
        aggregate: 'single',
      });
      if (part === 'vm') s.target = { text: '< 300 MB per 1M keys', met: s.value < 300 };
    }
  }
  ctx.log(
    `  RSS at ${size} keys: memory ${mb(measured.memory.loaded.vm)} MB (empty ${mb(measured.memory.empty.vm)}), batch ${mb(measured.batch.loaded.vm)} MB (empty ${mb(measured.batch.empty.vm)})`,
  );
}

const mb = (bytes: number) => (bytes / MB).toFixed(0);
