/**
 * The three systems of the peers suite, behind one face, each driven from the bench process through
 * its own client library:
 *
 *   twinstar  a pair (memory mode, passive attached) and the native client: set(), acknowledged
 *             once the passive holds the write
 *   redis     a primary and one replica, no persistence (lib/redis.ts), node-redis 4: PUBLISH for
 *             the fan-out, SET + WAIT 1 0 for an acknowledged write, MSET to load
 *   nats      one nats-server -js (lib/jetstream.ts), nats.js 2: KV buckets in memory storage with
 *             one replica (R1), history 64 (fan-out) and 1 (snapshot); kv.put() (acknowledged by
 *             JetStream) for every write
 *
 * Every load loop is bounded by a count and a deadline; stop() kills what start() spawned.
 */
import { connect as natsConnect, StorageType, type KV, type NatsConnection } from 'nats';
import { createClient } from 'redis';
import type { Client } from '../../src/index.js';
import { findNatsServer, startNatsServer } from './jetstream.js';
import { loadKeys, paced, writer, VALUE_BYTES, type PacedResult } from './load.js';
import { cpuSeconds, nowMs, startPair, within } from './proc.js';
import { findRedisServer, startRedisPair } from './redis.js';

export type System = 'twinstar' | 'redis' | 'nats';

/** Where a system's watchers and readers connect (sent to the watcher process). */
export interface PeerTarget {
  system: System;
  /** twinstar: the pair's endpoints */
  servers?: string[];
  /** redis:// or nats:// URL */
  url?: string;
}

export const FAN = {
  twinstarSubtree: '/peers/fan/',
  redisChannel: 'peers.fan',
  natsBucket: 'peersfan',
  natsKeys: 'fan.>',
};
export const SNAP = {
  twinstarSubtree: '/peers/snap/',
  redisMatch: 'peers:snap:*',
  natsBucket: 'peerssnap',
  natsKeys: 'snap.>',
};
/** keys the fan-out writer cycles through, and the awaiting writer */
const FAN_KEYS = 100;
const WRITE_KEYS = 10_000;

export interface PeerSystem {
  system: System;
  /** name and version, e.g. 'Redis 7.0.15' */
  name: string;
  target: PeerTarget;
  /** CPU seconds of every server process of the system (a pair: both nodes) */
  serverCpu(): number;
  /** one fan-out write of `body` (stamped), settled when the system has taken it */
  fanWrite(i: number, body: Buffer): Promise<unknown>;
  /** one acknowledged (replicated where the system replicates) write; rejects if not confirmed */
  ackedWrite(i: number, body: Buffer): Promise<void>;
  /** loads keys 0..n-1 of the snapshot prefix with 100-byte values, confirmed */
  load(n: number): Promise<void>;
  stop(): Promise<void>;
}

const pad = (i: number) => String(i).padStart(7, '0');

export async function startTwinstar(nodeArgs: string[], window: number): Promise<PeerSystem> {
  const pair = await startPair(nodeArgs);
  const servers = [pair.primary.endpoint, pair.backup.endpoint];
  let client: Client | undefined;
  try {
    client = await writer(servers);
  } catch (error) {
    await pair.stop();
    throw error;
  }
  const c = client;
  return {
    system: 'twinstar',
    name: 'twinstar',
    target: { system: 'twinstar', servers },
    serverCpu: () => pair.primary.cpuSeconds() + pair.backup.cpuSeconds(),
    fanWrite: (i, body) => c.set(`${FAN.twinstarSubtree}${i % FAN_KEYS}`, body),
    ackedWrite: async (i, body) => {
      await c.set(`/peers/w/${i % WRITE_KEYS}`, body);
    },
    load: async (n) => {
      await loadKeys(c, 0, n, (i) => `${SNAP.twinstarSubtree}${pad(i)}`, window);
      await pair.backup.ready((s) => s.keys >= n, 60_000);
    },
    stop: async () => {
      await c.close().catch(() => undefined);
      await pair.stop();
    },
  };
}

export async function startRedis(): Promise<PeerSystem | { missing: string }> {
  const found = findRedisServer();
  if ('missing' in found) return found;
  const redis = await startRedisPair(found.path, found.version);
  const c = createClient({ url: redis.url });
  c.on('error', () => undefined);
  try {
    await c.connect();
  } catch (error) {
    await redis.stop();
    throw error;
  }
  const waitOne = async () => {
    const replicas = Number(await c.sendCommand(['WAIT', '1', '0']));
    if (replicas < 1) throw new Error(`WAIT 1 0 answered ${replicas}`);
  };
  return {
    system: 'redis',
    name: `Redis ${found.version}`,
    target: { system: 'redis', url: redis.url },
    serverCpu: () => cpuSeconds(redis.primaryPid) + cpuSeconds(redis.replicaPid),
    fanWrite: (_i, body) => c.publish(FAN.redisChannel, body),
    ackedWrite: async (i, body) => {
      // Issued in the same tick, node-redis sends both in one write: one round trip, as a user would.
      const set = c.set(`peers:w:${i % WRITE_KEYS}`, body);
      await Promise.all([set, within(waitOne(), 10_000, 'WAIT 1 0')]);
    },
    load: async (n) => {
      const value = Buffer.alloc(VALUE_BYTES, 0x61);
      const inFlight: Promise<unknown>[] = [];
      for (let from = 0; from < n; from += 1000) {
        const pairs: [string, Buffer][] = [];
        for (let i = from; i < Math.min(n, from + 1000); i++) pairs.push([`peers:snap:${pad(i)}`, value]);
        inFlight.push(c.mSet(pairs));
        if (inFlight.length >= 20) await Promise.all(inFlight.splice(0));
      }
      await Promise.all(inFlight);
      await within(waitOne(), 60_000, 'WAIT 1 0 after loading');
    },
    stop: async () => {
      await c.disconnect().catch(() => undefined);
      await redis.stop();
    },
  };
}

export async function startNats(): Promise<PeerSystem | { missing: string }> {
  const found = findNatsServer();
  if ('missing' in found) return found;
  const server = await startNatsServer(found.path, found.version);
  let nc: NatsConnection | undefined;
  try {
    nc = await natsConnect({ servers: server.url });
    const js = nc.jetstream();
    const bucket = (name: string, history: number): Promise<KV> =>
      js.views.kv(name, { storage: StorageType.Memory, history, replicas: 1 });
    // A KV watcher that falls behind is sent only the revisions the stream still holds: with
    // history 1 it skips every update overwritten meanwhile (state, not every change). 64 (the
    // most NATS allows) keeps each of the 100 fan-out keys' last 64 updates, several seconds at
    // 1,000 updates/s, so that its watchers get every update, as twinstar's and Redis's do.
    const fan = await bucket(FAN.natsBucket, 64);
    const snap = await bucket(SNAP.natsBucket, 1);
    const conn = nc;
    return {
      system: 'nats',
      name: `NATS ${found.version.replace(/^nats-server:\s*/, '')} KV`,
      target: { system: 'nats', url: server.url },
      serverCpu: () => cpuSeconds(server.pid),
      fanWrite: (i, body) => fan.put(`fan.${i % FAN_KEYS}`, body),
      ackedWrite: async (i, body) => {
        await fan.put(`w.${i % WRITE_KEYS}`, body);
      },
      load: async (n) => {
        const value = Buffer.alloc(VALUE_BYTES, 0x61);
        const inFlight: Promise<unknown>[] = [];
        for (let i = 0; i < n; i++) {
          inFlight.push(snap.put(`snap.${pad(i)}`, value));
          if (inFlight.length >= 1000) await Promise.all(inFlight.splice(0));
        }
        await Promise.all(inFlight);
      },
      stop: async () => {
        await conn.close().catch(() => undefined);
        await server.stop();
      },
    };
  } catch (error) {
    await nc?.close().catch(() => undefined);
    await server.stop();
    throw error;
  }
}

/** A 100-byte value starting with the current CLOCK_MONOTONIC time in ms. */
export function stamped(): Buffer {
  const buf = Buffer.alloc(VALUE_BYTES, 0x61);
  buf.writeDoubleBE(nowMs(), 0);
  return buf;
}

/** Writes at `rate` per second for `ms` through `write`, each value stamped, at most `window` unsettled. */
export function pacedWrites(
  write: (i: number, body: Buffer) => Promise<unknown>,
  rate: number,
  ms: number,
  window = 50_000,
): Promise<PacedResult> {
  return paced((i) => write(i, stamped()), rate, ms, window, 30_000);
}

/** One writer awaiting each acknowledged write, for `ms`: writes/s. */
export async function awaitingWrites(
  s: PeerSystem,
  ms: number,
  max = 10_000_000,
): Promise<{ rate: number; done: number; failed: number; firstError?: string }> {
  const body = Buffer.alloc(VALUE_BYTES, 0x62);
  const t0 = nowMs();
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  for (let i = 0; i < max && nowMs() - t0 < ms; i++) {
    try {
      await within(s.ackedWrite(i, body), 30_000, `${s.name}: an acknowledged write`);
      done++;
    } catch (error) {
      failed++;
      firstError ??= String(error);
      if (failed > 100) break;
    }
  }
  return { rate: (done / (nowMs() - t0)) * 1000, done, failed, firstError };
}
