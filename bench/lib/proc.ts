/**
 * Processes for the benchmarks. Free ports, server processes and the registry of every child (so
 * that all of them are killed when the run ends, also on error or Ctrl-C) are the ones the
 * integration tests use (test/support); this adds pairs started and waited for, and CPU time and
 * RSS read from /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { metric, freePorts, ServerProcess, type ServerProcessOptions } from '../../test/support/index.js';

export {
  freePorts,
  killAll,
  liveChildren,
  metric,
  track,
  waitFor,
  within,
} from '../../test/support/index.js';
export type { NodeStatus } from '../../test/support/index.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Monotonic time in ms, on the clock every process on this machine shares (CLOCK_MONOTONIC). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export type Role = ServerProcessOptions['role'];

/** A node of a benchmark: a server process at the production log level keeping its last log lines. */
export class ServerNode extends ServerProcess {
  constructor(options: ServerProcessOptions) {
    super({ logLevel: 'info', keepLogLines: 50, ...options });
  }

  get spec(): ServerProcessOptions {
    return this.options;
  }

  /** SIGTERM with a longer grace than in tests: lets --cpu-prof write its profile. */
  override stop(ms = 10_000): Promise<number | null> {
    return super.stop(ms);
  }

  /** The sum of one metric's samples (every label set). */
  async metric(name: string): Promise<number> {
    return metric(this.http, name);
  }

  /** CPU seconds (user + system, all threads) this process has used. */
  cpuSeconds(): number {
    return cpuSeconds(this.pid);
  }

  rssBytes(): number {
    return rssBytes(this.pid);
  }

  rssParts(): RssParts {
    return rssParts(this.pid);
  }

  threadCpu(): ThreadCpu {
    return threadCpu(this.pid);
  }
}

export interface Pair {
  primary: ServerNode;
  backup: ServerNode;
  nodes: ServerNode[];
  stop(): Promise<void>;
}

/** More options for each node of a pair, e.g. its data dir and fsync mode (default: in memory). */
export type NodeOptions = (role: 'primary' | 'backup') => Partial<ServerProcessOptions>;

/**
 * Starts a primary and a backup on free ports; resolves once the primary is ACTIVE with its passive
 * attached. Other programs on the machine may take a port between our check and the bind: then
 * both are stopped and the pair starts again on other ports (`options` is called again for each
 * attempt, so a data dir it makes is a fresh one, not one a failed start has written to).
 */
export async function startPair(
  nodeArgs: string[] = [],
  extraArgs: (role: 'primary' | 'backup') => string[] = () => [],
  options: NodeOptions = () => ({}),
): Promise<Pair> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPairOnce(nodeArgs, extraArgs, options);
    } catch (error) {
      if (attempt >= 3 || !/exited/.test(String(error))) throw error;
    }
  }
}

async function startPairOnce(
  nodeArgs: string[],
  extraArgs: (role: 'primary' | 'backup') => string[],
  options: NodeOptions,
): Promise<Pair> {
  const p = await freePorts(6);
  const b = await freePorts(6);
  const primary = new ServerNode({
    role: 'primary',
    port: p,
    heartbeatPort: p + 4,
    httpPort: p + 5,
    peerPort: b,
    peerHeartbeatPort: b + 4,
    nodeArgs,
    extraArgs: extraArgs('primary'),
    ...options('primary'),
  });
  const backup = new ServerNode({
    role: 'backup',
    port: b,
    heartbeatPort: b + 4,
    httpPort: b + 5,
    peerPort: p,
    peerHeartbeatPort: p + 4,
    nodeArgs,
    extraArgs: extraArgs('backup'),
    ...options('backup'),
  });
  const pair: Pair = {
    primary,
    backup,
    nodes: [primary, backup],
    stop: async () => {
      await Promise.all([primary.stop(), backup.stop()]);
    },
  };
  try {
    await primary.ready((s) => s.state === 'ACTIVE' && !s.degraded, 15_000);
    await backup.ready((s) => s.state === 'PASSIVE', 15_000);
  } catch (error) {
    await Promise.all([primary.kill(), backup.kill()]);
    throw error;
  }
  return pair;
}

/** A primary with no backup: it serves once a client votes, degraded (acknowledged by itself alone). */
export async function startLonePrimary(nodeArgs: string[] = []): Promise<ServerNode> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startLonePrimaryOnce(nodeArgs);
    } catch (error) {
      if (attempt >= 3 || !/exited/.test(String(error))) throw error;
    }
  }
}

async function startLonePrimaryOnce(nodeArgs: string[]): Promise<ServerNode> {
  const p = await freePorts(6);
  const peer = await freePorts(6); // nothing listens there
  const node = new ServerNode({
    role: 'primary',
    port: p,
    heartbeatPort: p + 4,
    httpPort: p + 5,
    peerPort: peer,
    peerHeartbeatPort: peer + 4,
    nodeArgs,
  });
  await node.ready(undefined, 15_000);
  return node;
}

// ---------------------------------------------------------------------------------------------
// /proc and /metrics.

const CLOCK_TICKS = 100; // USER_HZ on Linux

export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS;
}

export interface ThreadCpu {
  /** the JavaScript (event-loop) thread */
  main: number;
  /** libzmq's I/O thread(s): TCP reads and writes, fan-out to every subscriber pipe */
  zmqIo: number;
  /** everything else: GC helpers, libuv pool, libzmq reaper */
  other: number;
}

/** CPU seconds per kind of thread, from /proc/<pid>/task. */
export function threadCpu(pid: number): ThreadCpu {
  const out: ThreadCpu = { main: 0, zmqIo: 0, other: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    let comm: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread ended
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    if (tid === String(pid)) out.main += cpu;
    else if (comm.startsWith('ZMQbg/IO')) out.zmqIo += cpu;
    else out.other += cpu;
  }
  return out;
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** A process's resident memory in bytes, and what it is made of (Linux /proc/<pid>/status). */
export interface RssParts {
  /** VmRSS: all resident pages */
  vm: number;
  /** RssAnon: anonymous memory (JS heap, native allocations) */
  anon: number;
  /** RssFile: mapped file pages (the node binary, lmdb's map of data.mdb), which the kernel can drop */
  file: number;
}

export function rssParts(pid: number): RssParts {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const bytes = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { vm: bytes('VmRSS'), anon: bytes('RssAnon'), file: bytes('RssFile') };
}
