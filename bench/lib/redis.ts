/**
 * Redis for the peers suite: a primary and one replica (`redis-server`, Debian's package) on free
 * loopback ports, each with its own temporary directory, no persistence (`save ""`, `appendonly
 * no`: twinstar's pair runs in memory mode), killed by PID at the end. Writes are confirmed with
 * `WAIT 1 0` (the replica has them), as a user wanting a replicated write would.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { freePorts, track, waitFor } from './proc.js';

/** The redis-server binary (REDIS_SERVER names it, else the PATH and /usr/bin), or why there is none. */
export function findRedisServer(): { path: string; version: string } | { missing: string } {
  const named = process.env.REDIS_SERVER;
  const candidates = named ? [named] : ['redis-server', '/usr/bin/redis-server', '/usr/sbin/redis-server'];
  for (const path of candidates) {
    if (path.includes('/') && !existsSync(path)) continue;
    const run = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5000 });
    if (run.status === 0) {
      const v = /v=(\S+)/.exec(run.stdout);
      return { path, version: v ? v[1]! : run.stdout.trim() };
    }
  }
  return {
    missing: named
      ? `REDIS_SERVER=${named} does not run`
      : 'redis-server is not installed (Debian: apt-get install redis-server)',
  };
}

export interface RedisPair {
  /** redis://127.0.0.1:port of the primary */
  url: string;
  version: string;
  primaryPid: number;
  replicaPid: number;
  stop(): Promise<void>;
}

interface RedisNode {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

async function startNode(path: string, port: number, replicaOf?: number): Promise<RedisNode> {
  const dir = mkdtempSync(join(tmpdir(), 'twinstar-bench-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
    '--logfile',
    '',
  ];
  if (replicaOf !== undefined) args.push('--replicaof', '127.0.0.1', String(replicaOf));
  const child = track(spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let log = '';
  const keep = (chunk: string) => (log = (log + chunk).slice(-4000));
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL'); // nothing to save: no persistence
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${log}`);
        return /Ready to accept connections/.test(log);
      },
      15_000,
      `redis-server on port ${port} to be ready`,
      20,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { child, port, stop };
}

/** Starts a primary and a replica; resolves once the replica's link is up and in sync. */
export async function startRedisPair(path: string, version: string): Promise<RedisPair> {
  const base = await freePorts(2);
  const nodes: RedisNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    nodes.push(await startNode(path, base));
    nodes.push(await startNode(path, base + 1, base));
    const url = `redis://127.0.0.1:${base}`;
    const c = createClient({ url });
    c.on('error', () => undefined);
    await c.connect();
    try {
      await waitFor(
        async () => /slave0:.*state=online/.test(await c.info('replication')),
        15_000,
        'the Redis replica to be online',
        50,
      );
    } finally {
      await c.disconnect();
    }
    return { url, version, primaryPid: nodes[0]!.child.pid!, replicaPid: nodes[1]!.child.pid!, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
