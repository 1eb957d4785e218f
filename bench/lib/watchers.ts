/**
 * The peers suite's watcher process (forked by bench/suites/peers.ts through lib/worker-client.ts,
 * one fresh process per system and round, so that its CPU time is the watchers' alone). Each
 * watcher uses its system's own client library, one connection each, as users do:
 *
 *   twinstar  connect() from src/ (native mode) on the subtree /peers/fan/, client.on('update')
 *   redis     node-redis 4: createClient().connect(), then SUBSCRIBE peers.fan (buffer mode)
 *   nats      nats.js 2: connect(), the KV bucket, kv.watch({ key: 'fan.>' }) for updates only
 *
 * A watcher is ready when its subscription is confirmed: connect() resolved (the replica of the
 * subtree loaded), SUBSCRIBE answered, kv.watch() resolved (its ordered consumer created).
 *
 * Commands (IPC, { id, cmd, args } -> { id, result | error }):
 *   connect.times  n watchers one after the other, each closed once ready: ms to ready for each
 *   watch.start    `count` watchers started at once: ms until all are ready
 *   watch.reset / watch.stats / watch.stop
 *   snapshot.read  a new reader gets every key under the snapshot prefix: ms and keys read
 *   exit
 * Every value the writer sends starts with its CLOCK_MONOTONIC time in ms (a double), which all
 * processes on the machine share: latency is delivery time minus that.
 */
import { connect as twinstarConnect, type Client } from '../../src/index.js';
import { commandOptions, createClient } from 'redis';
import { connect as natsConnect, Events, KvWatchInclude, type KV, type NatsConnection } from 'nats';
import { Histogram } from './stats.js';
import { nowMs } from './proc.js';
import { FAN, SNAP, type PeerTarget } from './peer-systems.js';
import { serveRequests, type WorkerRequest } from './worker-ipc.js';

interface Watcher {
  close(): Promise<void>;
}

interface Group {
  watchers: Watcher[];
  counts: number[];
  hist: Histogram;
  /** connections lost and re-established (a slow watcher cut by its server, for one) */
  disconnects: number;
}

let group: Group | undefined;

function record(g: Group, i: number, body: Uint8Array): void {
  const at = nowMs();
  g.counts[i]!++;
  if (body.length >= 8) {
    const stamp = Buffer.from(body.buffer, body.byteOffset, body.byteLength).readDoubleBE(0);
    g.hist.record((at - stamp) * 1000);
  }
}

async function startWatcher(
  t: PeerTarget,
  onValue: (body: Uint8Array) => void,
  onDisconnect: () => void = () => undefined,
): Promise<Watcher> {
  switch (t.system) {
    case 'twinstar': {
      const client: Client = await twinstarConnect({
        servers: t.servers!,
        subtree: FAN.twinstarSubtree,
        mode: 'native',
        connectTimeoutMs: 60_000,
      });
      client.on('update', (u) => {
        if (u.value) onValue(u.value);
      });
      client.on('disconnected', onDisconnect);
      return { close: () => client.close() };
    }
    case 'redis': {
      const client = createClient({ url: t.url! });
      client.on('error', () => undefined);
      client.on('reconnecting', onDisconnect);
      await client.connect();
      await client.subscribe(FAN.redisChannel, (message: Buffer) => onValue(message), true);
      return { close: () => client.disconnect() };
    }
    case 'nats': {
      const nc = await natsConnect({ servers: t.url! });
      void (async () => {
        for await (const s of nc.status()) if (s.type === Events.Disconnect) onDisconnect();
      })().catch(() => undefined);
      const kv = await nc.jetstream().views.kv(FAN.natsBucket, { bindOnly: true });
      const it = await kv.watch({ key: FAN.natsKeys, include: KvWatchInclude.UpdatesOnly });
      void (async () => {
        try {
          for await (const e of it) onValue(e.value);
        } catch {
          // closed
        }
      })();
      return {
        close: async () => {
          it.stop();
          await nc.close();
        },
      };
    }
  }
}

async function connectTimes(t: PeerTarget, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    const w = await startWatcher(t, () => undefined);
    out.push(nowMs() - t0);
    await w.close();
  }
  return out;
}

async function watchStart(t: PeerTarget, count: number): Promise<{ ms: number }> {
  await watchStop();
  const g: Group = {
    watchers: [],
    counts: new Array<number>(count).fill(0),
    hist: new Histogram(),
    disconnects: 0,
  };
  group = g;
  const t0 = nowMs();
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      startWatcher(
        t,
        (body) => record(g, i, body),
        () => g.disconnects++,
      ),
    ),
  );
  const ms = nowMs() - t0;
  for (const s of started) if (s.status === 'fulfilled') g.watchers.push(s.value);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw new Error(`${count - g.watchers.length} watchers failed: ${String(failed.reason)}`);
  return { ms };
}

async function watchStop(): Promise<void> {
  const g = group;
  group = undefined;
  if (g) await Promise.allSettled(g.watchers.map((w) => w.close()));
}

function stats(): unknown {
  if (!group) throw new Error('no watchers');
  return {
    counts: group.counts,
    hist: { counts: group.hist.counts, maxUs: group.hist.maxUs },
    disconnects: group.disconnects,
  };
}

function reset(): void {
  if (!group) throw new Error('no watchers');
  group.counts.fill(0);
  group.hist = new Histogram();
  group.disconnects = 0;
}

/** A new reader: from its connection to every key under the snapshot prefix held in memory. */
async function snapshotRead(t: PeerTarget, expected: number): Promise<{ ms: number; keys: number }> {
  const t0 = nowMs();
  switch (t.system) {
    case 'twinstar': {
      const client = await twinstarConnect({
        servers: t.servers!,
        subtree: SNAP.twinstarSubtree,
        mode: 'native',
        connectTimeoutMs: 120_000,
      });
      const ms = nowMs() - t0;
      const keys = client.count();
      await client.close();
      return { ms, keys };
    }
    case 'redis': {
      const client = createClient({ url: t.url! });
      client.on('error', () => undefined);
      await client.connect();
      const held = new Map<string, Buffer>();
      try {
        let cursor = 0;
        for (let i = 0; i < 1_000_000; i++) {
          const r = await client.scan(cursor, { MATCH: SNAP.redisMatch, COUNT: 1000 });
          if (r.keys.length > 0) {
            const values = await client.mGet(commandOptions({ returnBuffers: true }), r.keys);
            for (let k = 0; k < r.keys.length; k++) held.set(r.keys[k]!, values[k]!);
          }
          cursor = r.cursor;
          if (cursor === 0) break;
        }
        return { ms: nowMs() - t0, keys: held.size };
      } finally {
        await client.disconnect();
      }
    }
    case 'nats': {
      const nc: NatsConnection = await natsConnect({ servers: t.url! });
      try {
        const kv: KV = await nc.jetstream().views.kv(SNAP.natsBucket, { bindOnly: true });
        const held = new Map<string, Uint8Array>();
        const it = await kv.watch({ key: SNAP.natsKeys, include: KvWatchInclude.LastValue });
        const deadline = nowMs() + 120_000;
        const guard = setTimeout(() => it.stop(), 120_000);
        try {
          for await (const e of it) {
            held.set(e.key, e.value);
            if (held.size >= expected || nowMs() > deadline) break;
          }
        } finally {
          clearTimeout(guard);
          it.stop();
        }
        return { ms: nowMs() - t0, keys: held.size };
      } finally {
        await nc.close();
      }
    }
  }
}

async function handle(req: WorkerRequest): Promise<unknown> {
  const a = req.args;
  switch (req.cmd) {
    case 'connect.times':
      return connectTimes(a.target as PeerTarget, Number(a.n));
    case 'watch.start':
      return watchStart(a.target as PeerTarget, Number(a.count));
    case 'watch.stats':
      return stats();
    case 'watch.reset':
      return reset();
    case 'watch.stop':
      return watchStop();
    case 'snapshot.read':
      return snapshotRead(a.target as PeerTarget, Number(a.expected));
    case 'exit':
      await watchStop();
      setTimeout(() => process.exit(0), 10);
      return undefined;
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
}

serveRequests(handle);
