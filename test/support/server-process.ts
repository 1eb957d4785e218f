/**
 * Real `twinstar server` processes started through the CLI (exactly what operators run), for the
 * integration tests and the benchmarks alike. Every child is registered so that a run can kill
 * all of them when it ends, also on error or Ctrl-C (killAll).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { NodeStatus } from '../../src/pair/index.js';
import type { PairPorts } from './ports.js';

export type { NodeStatus };

export const BIN = fileURLToPath(new URL('../../bin/twinstar.js', import.meta.url));

// Every server a test starts keeps its state in memory unless the test gives it a data dir
// (`dataDir` below): the tests written before durable storage, also those that spawn
// `twinstar server` or `twinstar pair` themselves, inherit this and run as they always did,
// and no test leaves a ./data folder behind.
process.env.TWINSTAR_MEMORY ??= 'true';

const children = new Set<ChildProcess>();

/** Registers a child process so that killAll reaches it. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** SIGKILL every registered child still running (synchronous: safe in an 'exit' handler). */
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

export interface ServerProcessOptions {
  role: 'single' | 'primary' | 'backup';
  /** snapshot port P (publisher P+1, collector P+2, update stream P+3): keep P..P+3 free for it */
  port: number;
  httpPort: number;
  heartbeatPort?: number;
  /** the other node's snapshot port and heartbeat port */
  peerPort?: number;
  peerHeartbeatPort?: number;
  heartbeatMs?: number;
  failoverMs?: number;
  /** default debug, which tests assert on; the benchmarks run at the production level, info */
  logLevel?: string;
  /** keep only the last this many log lines (default: all) */
  keepLogLines?: number;
  /** node.js options before the script, e.g. --cpu-prof */
  nodeArgs?: string[];
  /** keep the node's state in this directory (lmdb) instead of in memory (the default in tests) */
  dataDir?: string;
  /** with dataDir: the fsync mode (default: the server's, batch) */
  fsync?: 'always' | 'batch' | 'off';
  /** the largest file the process may write, in KiB (`ulimit -f`): a full disk, for tests */
  fileSizeLimitKiB?: number;
  /** how many file descriptors the process may have open (`ulimit -n`) */
  maxOpenFiles?: number;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

/** A real `twinstar server` process. Its stderr (pino JSON) is kept, parsed, for assertions. */
export class ServerProcess {
  child: ChildProcess;
  /** Resolves once the process has exited and its last log line has been read. */
  closed!: Promise<void>;
  readonly logLines: Record<string, unknown>[] = [];
  readonly http: string;
  readonly endpoint: string;
  readonly publisher: string;
  readonly collector: string;
  /** the native update stream (P+3; not bound with CURVE) */
  readonly updates: string;

  constructor(readonly options: ServerProcessOptions) {
    this.http = `http://127.0.0.1:${options.httpPort}`;
    this.endpoint = `tcp://127.0.0.1:${options.port}`;
    this.publisher = `tcp://127.0.0.1:${options.port + 1}`;
    this.collector = `tcp://127.0.0.1:${options.port + 2}`;
    this.updates = `tcp://127.0.0.1:${options.port + 3}`;
    this.child = this.spawn();
  }

  private spawn(): ChildProcess {
    const o = this.options;
    const args = [
      ...(o.nodeArgs ?? []),
      BIN,
      'server',
      '--role',
      o.role,
      '--port',
      String(o.port),
      '--http-port',
      String(o.httpPort),
    ];
    if (o.heartbeatPort !== undefined) args.push('--heartbeat-port', String(o.heartbeatPort));
    if (o.peerPort !== undefined) args.push('--peer', `127.0.0.1:${o.peerPort}`);
    if (o.peerHeartbeatPort !== undefined) args.push('--peer-heartbeat', `127.0.0.1:${o.peerHeartbeatPort}`);
    if (o.heartbeatMs !== undefined) args.push('--heartbeat-ms', String(o.heartbeatMs));
    if (o.failoverMs !== undefined) args.push('--failover-ms', String(o.failoverMs));
    if (o.dataDir !== undefined) args.push('--data-dir', o.dataDir);
    if (o.fsync !== undefined) args.push('--fsync', o.fsync);
    args.push('--log-level', o.logLevel ?? 'debug', ...(o.extraArgs ?? []));
    const storage = o.dataDir === undefined ? {} : { TWINSTAR_MEMORY: 'false' };
    const env = { ...process.env, ...storage, ...o.env };
    const limits = [
      ...(o.fileSizeLimitKiB === undefined ? [] : [`ulimit -f ${o.fileSizeLimitKiB}`]),
      ...(o.maxOpenFiles === undefined ? [] : [`ulimit -n ${o.maxOpenFiles}`]),
    ];
    const [command, argv] =
      limits.length === 0
        ? [process.execPath, args]
        : ['bash', ['-c', `${limits.join(' && ')} && exec "$0" "$@"`, process.execPath, ...args]];
    const child = track(spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env }));
    let buffer = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        this.addLogLine(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
    });
    child.stdout!.resume();
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
    return child;
  }

  private addLogLine(line: string): void {
    try {
      this.logLines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      this.logLines.push({ msg: line });
    }
    const keep = this.options.keepLogLines;
    if (keep !== undefined && this.logLines.length > keep) this.logLines.shift();
  }

  get pid(): number {
    return this.child.pid!;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Starts the process again on the same ports (after it exited). */
  restart(): void {
    if (!this.exited) throw new Error('restart of a running server');
    this.child = this.spawn();
  }

  async status(): Promise<NodeStatus> {
    const res = await fetch(`${this.http}/status`, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as NodeStatus;
  }

  /**
   * Resolves with the status once /status answers and the node is in `want` (a state name, or a
   * check of the whole status); fails at once, with the last log lines, if the process exits.
   */
  async ready(want?: string | ((s: NodeStatus) => boolean), ms = 10_000): Promise<NodeStatus> {
    const check =
      typeof want === 'function' ? want : (s: NodeStatus) => want === undefined || s.state === want;
    const what = typeof want === 'string' ? want : want ? 'ready' : 'up';
    const deadline = Date.now() + ms;
    let last = 'no answer';
    for (;;) {
      if (this.exited) {
        await new Promise((resolve) => setTimeout(resolve, 50)); // let the last stderr lines arrive
        throw new Error(
          `${this.options.role} on port ${this.options.port} exited with ${this.child.exitCode ?? this.child.signalCode}: ${this.tail(3)}`,
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
          `timed out after ${ms} ms waiting for ${this.options.role} on port ${this.options.port} to be ${what} (${last}); its last log lines: ${this.tail(5)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** The last `n` log lines, as one line. */
  tail(n: number): string {
    return this.logLines
      .slice(-n)
      .map((l) => (typeof l.msg === 'string' && Object.keys(l).length === 1 ? l.msg : JSON.stringify(l)))
      .join(' | ');
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(sig);
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    const done = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await done;
  }

  /** SIGTERM and wait for a clean exit (SIGKILL after `ms`; lets --cpu-prof write its profile). */
  async stop(ms = 5000): Promise<number | null> {
    if (this.exited) return this.child.exitCode;
    const done = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await done;
    clearTimeout(timer);
    return this.child.exitCode;
  }

  logs(match: (line: Record<string, unknown>) => boolean): Record<string, unknown>[] {
    return this.logLines.filter(match);
  }
}

export function startSingle(port: number, httpPort: number, extraArgs: string[] = []): ServerProcess {
  return new ServerProcess({ role: 'single', port, httpPort, extraArgs });
}

/** Options for the primary and the backup of a pair on the given ports. */
export function pairOptions(
  ports: PairPorts,
  timing: Partial<ServerProcessOptions> = {},
): { primary: ServerProcessOptions; backup: ServerProcessOptions } {
  const primary: ServerProcessOptions = {
    role: 'primary',
    port: ports.primary.port,
    httpPort: ports.primary.http,
    heartbeatPort: ports.primary.heartbeat,
    peerPort: ports.backup.port,
    peerHeartbeatPort: ports.backup.heartbeat,
    ...timing,
  };
  const backup: ServerProcessOptions = {
    role: 'backup',
    port: ports.backup.port,
    httpPort: ports.backup.http,
    heartbeatPort: ports.backup.heartbeat,
    peerPort: ports.primary.port,
    peerHeartbeatPort: ports.primary.heartbeat,
    ...timing,
  };
  return { primary, backup };
}
