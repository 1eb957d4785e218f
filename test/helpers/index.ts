/**
 * Shared test helpers: bounded waits that reject on timeout, ports from the OS, and real server
 * processes started through the CLI (so integration tests exercise exactly what operators run).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export type { NodeStatus } from '../../src/pair/index.js';
import type { NodeStatus } from '../../src/pair/index.js';

export const BIN = fileURLToPath(new URL('../../bin/twinstar.js', import.meta.url));

/** Polls `check` every `everyMs` until it returns a truthy value; rejects with `what` after `ms`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  ms: number,
  what = 'condition',
  everyMs = 20,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Rejects if `promise` does not settle within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** True if nothing on 127.0.0.1 listens on `port` right now. */
export async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  server.unref();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port the OS says is free now. */
export async function osPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Every port freePorts handed out in this process: a later call never returns one of them again. */
const handedOut = new Set<number>();

/**
 * `count` consecutive free TCP ports on 127.0.0.1 (a server needs P, P+1, P+2). Nothing listens on
 * them yet when this returns, so two calls in a row (a pair's two nodes) could otherwise get
 * overlapping ranges; the ranges handed out are remembered and never given twice.
 */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = await osPort();
    if (base + count > 65535) continue;
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = !handedOut.has(base + i);
    for (let i = 1; i < count && ok; i++) ok = await portIsFree(base + i);
    if (!ok) continue;
    for (let i = 0; i < count; i++) handedOut.add(base + i);
    return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

export interface PairPorts {
  primary: { port: number; heartbeat: number; http: number };
  backup: { port: number; heartbeat: number; http: number };
}

/** Ports for a pair: each node gets P..P+2 for clients, one heartbeat port and one HTTP port. */
export async function pairPorts(): Promise<PairPorts> {
  const p = await freePorts(5);
  const b = await freePorts(5);
  return {
    primary: { port: p, heartbeat: p + 3, http: p + 4 },
    backup: { port: b, heartbeat: b + 3, http: b + 4 },
  };
}

export interface ServerProcessOptions {
  role: 'single' | 'primary' | 'backup';
  port: number;
  httpPort: number;
  heartbeatPort?: number;
  /** the other node's snapshot port and heartbeat port */
  peerPort?: number;
  peerHeartbeatPort?: number;
  heartbeatMs?: number;
  failoverMs?: number;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

/** A real `twinstar server` process. Its stderr (pino JSON) is kept for assertions. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly logLines: Record<string, unknown>[] = [];
  readonly http: string;
  readonly endpoint: string;
  private stderrBuffer = '';

  constructor(readonly options: ServerProcessOptions) {
    const args = [
      BIN,
      'server',
      '--role',
      options.role,
      '--port',
      String(options.port),
      '--http-port',
      String(options.httpPort),
    ];
    if (options.heartbeatPort !== undefined) args.push('--heartbeat-port', String(options.heartbeatPort));
    if (options.peerPort !== undefined) args.push('--peer', `127.0.0.1:${options.peerPort}`);
    if (options.peerHeartbeatPort !== undefined)
      args.push('--peer-heartbeat', `127.0.0.1:${options.peerHeartbeatPort}`);
    if (options.heartbeatMs !== undefined) args.push('--heartbeat-ms', String(options.heartbeatMs));
    if (options.failoverMs !== undefined) args.push('--failover-ms', String(options.failoverMs));
    args.push('--log-level', 'debug', ...(options.extraArgs ?? []));
    this.child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderrBuffer += chunk;
      let nl: number;
      while ((nl = this.stderrBuffer.indexOf('\n')) !== -1) {
        const line = this.stderrBuffer.slice(0, nl);
        this.stderrBuffer = this.stderrBuffer.slice(nl + 1);
        try {
          this.logLines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.logLines.push({ msg: line });
        }
      }
    });
    this.child.stdout!.resume();
    this.http = `http://127.0.0.1:${options.httpPort}`;
    this.endpoint = `tcp://127.0.0.1:${options.port}`;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async status(): Promise<NodeStatus> {
    const res = await fetch(`${this.http}/status`, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as never;
  }

  /** Resolves once /status answers (and, if given, the node is in `state`). */
  async ready(state?: string, ms = 10_000): Promise<void> {
    await waitFor(
      async () => {
        if (this.exited)
          throw new Error(`server exited with ${this.child.exitCode ?? this.child.signalCode}`);
        const s = await this.status();
        return state === undefined || s.state === state;
      },
      ms,
      `${this.options.role} on port ${this.options.port} to be ${state ?? 'up'}`,
    );
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

  /** SIGTERM and wait for a clean exit (SIGKILL after `ms`). */
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
export function pairOptions(ports: PairPorts, timing: { heartbeatMs?: number; failoverMs?: number } = {}) {
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

/** The value of one Prometheus sample from a node's /metrics (labels must all match), or 0. */
export async function metric(
  http: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

export async function digest(http: string): Promise<{ sequence: number; keys: number; digest: string }> {
  return (await (await fetch(`${http}/digest`, { signal: AbortSignal.timeout(5000) })).json()) as never;
}

/**
 * A suite that needs a system tool (Debian's prometheus, python3-zmq): under CI, which installs
 * them (.ci/run), a missing tool fails the suite; on a developer's machine the suite is skipped
 * with a line that says what to install, so `npm test` passes on a fresh machine with Node only.
 */
export function requireTool(ctx: Mocha.Context, command: string, args: string[], install: string): void {
  const probe = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (probe.status === 0) return;
  const why = `${command} ${args.join(' ')} failed (${probe.error?.message ?? probe.stderr?.trim() ?? 'no output'})`;
  if (process.env.CI) throw new Error(`${why}: ${install}`);
  console.log(`      skipping: ${why}; ${install} to run these tests (CI always does)`);
  ctx.skip(); // the line above says why; under CI (the only place results count) we threw instead
}
