/**
 * Processes for the benchmarks: free ports on 127.0.0.1, real `twinstar server` processes started
 * through the CLI (exactly what operators run), and a registry of every child so that all of them
 * are killed when the run ends, also on error or Ctrl-C. CPU time and RSS are read from /proc.
 */
import { osPort, portIsFree, waitFor, within } from '../../test/helpers/index.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/twinstar.js', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Every child process, so that none outlives the run.

const children = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** SIGKILL every child still running (synchronous: safe in an 'exit' handler). */
export function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

export function liveChildren(): number {
  let n = 0;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Waiting, always bounded.

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export { waitFor, within };

/** Monotonic time in ms, on the clock every process on this machine shares (CLOCK_MONOTONIC). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Ports.

const handedOut = new Set<number>();

/** `count` consecutive free TCP ports on 127.0.0.1, never the same ones twice in one run. */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = await osPort();
    if (base + count > 65535) continue;
    let ok = true;
    for (let i = 0; i < count && ok; i++)
      ok = !handedOut.has(base + i) && (i === 0 || (await portIsFree(base + i)));
    if (!ok) continue;
    for (let i = 0; i < count; i++) handedOut.add(base + i);
    return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

// ---------------------------------------------------------------------------------------------
// Server processes.

export type Role = 'single' | 'primary' | 'backup';

export interface NodeSpec {
  role: Role;
  /** snapshot port P (publisher P+1, collector P+2) */
  port: number;
  heartbeatPort: number;
  httpPort: number;
  peerPort?: number;
  peerHeartbeatPort?: number;
  /** extra node.js options, e.g. --cpu-prof */
  nodeArgs?: string[];
  extraArgs?: string[];
}

export interface NodeStatus {
  role: string;
  state: string;
  epoch: number;
  sequence: number;
  keys: number;
  degraded: boolean;
  replicationLag: number;
  peer: { state: string; synced: boolean; up: boolean } | null;
  pid: number;
}

/** One `twinstar server` process at the production log level; the last log lines are kept. */
export class ServerNode {
  child: ChildProcess;
  readonly endpoint: string;
  readonly publisher: string;
  readonly collector: string;
  readonly http: string;
  readonly tail: string[] = [];

  constructor(readonly spec: NodeSpec) {
    this.endpoint = `tcp://127.0.0.1:${spec.port}`;
    this.publisher = `tcp://127.0.0.1:${spec.port + 1}`;
    this.collector = `tcp://127.0.0.1:${spec.port + 2}`;
    this.http = `http://127.0.0.1:${spec.httpPort}`;
    this.child = this.spawn();
  }

  private spawn(): ChildProcess {
    const s = this.spec;
    const args = [
      ...(s.nodeArgs ?? []),
      BIN,
      'server',
      '--role',
      s.role,
      '--port',
      String(s.port),
      '--http-port',
      String(s.httpPort),
      '--heartbeat-port',
      String(s.heartbeatPort),
    ];
    if (s.peerPort !== undefined) args.push('--peer', `127.0.0.1:${s.peerPort}`);
    if (s.peerHeartbeatPort !== undefined) args.push('--peer-heartbeat', `127.0.0.1:${s.peerHeartbeatPort}`);
    args.push(...(s.extraArgs ?? []));
    const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    let buffer = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        this.tail.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (this.tail.length > 50) this.tail.shift();
      }
    });
    return child;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Start the process again on the same ports (after a kill). */
  restart(): void {
    if (!this.exited) throw new Error('restart of a running server');
    this.child = this.spawn();
  }

  async status(): Promise<NodeStatus> {
    const res = await fetch(`${this.http}/status`, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as NodeStatus;
  }

  /** Resolves once /status answers and `check` (if given) holds; fails at once if the process exits. */
  async ready(check: (s: NodeStatus) => boolean = () => true, ms = 15_000): Promise<NodeStatus> {
    const deadline = Date.now() + ms;
    let last: string = 'no answer';
    for (;;) {
      if (this.exited) {
        await sleep(50); // let the last stderr lines arrive
        throw new Error(
          `${this.spec.role} on port ${this.spec.port} exited with ${this.child.exitCode ?? this.child.signalCode}: ${this.tail.slice(-3).join(' | ')}`,
        );
      }
      try {
        const s = await this.status();
        if (check(s)) return s;
        last = `state ${s.state}, degraded ${s.degraded}, keys ${s.keys}`;
      } catch (error) {
        last = String(error);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${ms} ms waiting for ${this.spec.role} on port ${this.spec.port} (${last})`,
        );
      }
      await sleep(20);
    }
  }

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

  threadCpu(): ThreadCpu {
    return threadCpu(this.pid);
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    const done = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await within(done, 5000, 'SIGKILL');
  }

  /** SIGTERM and wait for a clean exit (SIGKILL after `ms`): lets --cpu-prof write its profile. */
  async stop(ms = 10_000): Promise<void> {
    if (this.exited) return;
    const done = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await done;
    clearTimeout(timer);
  }
}

export interface Pair {
  primary: ServerNode;
  backup: ServerNode;
  nodes: ServerNode[];
  stop(): Promise<void>;
}

/**
 * Starts a primary and a backup on free ports; resolves once the primary is ACTIVE with its passive
 * attached. Other programs on the machine may take a port between our check and the bind: then
 * both are stopped and the pair starts again on other ports.
 */
export async function startPair(
  nodeArgs: string[] = [],
  extraArgs: (role: 'primary' | 'backup') => string[] = () => [],
): Promise<Pair> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPairOnce(nodeArgs, extraArgs);
    } catch (error) {
      if (attempt >= 3 || !/exited/.test(String(error))) throw error;
    }
  }
}

async function startPairOnce(
  nodeArgs: string[],
  extraArgs: (role: 'primary' | 'backup') => string[],
): Promise<Pair> {
  const p = await freePorts(5);
  const b = await freePorts(5);
  const primary = new ServerNode({
    role: 'primary',
    port: p,
    heartbeatPort: p + 3,
    httpPort: p + 4,
    peerPort: b,
    peerHeartbeatPort: b + 3,
    nodeArgs,
    extraArgs: extraArgs('primary'),
  });
  const backup = new ServerNode({
    role: 'backup',
    port: b,
    heartbeatPort: b + 3,
    httpPort: b + 4,
    peerPort: p,
    peerHeartbeatPort: p + 3,
    nodeArgs,
    extraArgs: extraArgs('backup'),
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
    await primary.ready((s) => s.state === 'ACTIVE' && !s.degraded);
    await backup.ready((s) => s.state === 'PASSIVE');
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
  const p = await freePorts(5);
  const peer = await freePorts(5); // nothing listens there
  const node = new ServerNode({
    role: 'primary',
    port: p,
    heartbeatPort: p + 3,
    httpPort: p + 4,
    peerPort: peer,
    peerHeartbeatPort: peer + 3,
    nodeArgs,
  });
  await node.ready();
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

/** The sum of one Prometheus metric's samples (every label set) from a node's /metrics. */
export async function metric(http: string, name: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) total += Number(m[3]);
  }
  return total;
}
