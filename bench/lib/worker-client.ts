/** The parent's side of bench/worker.ts: fork it, call its commands, end it. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { track, within } from './proc.js';

const WORKER = fileURLToPath(new URL('../worker.ts', import.meta.url));
const JOINER = fileURLToPath(new URL('../joiner.js', import.meta.url));

export interface SubStats {
  counts: number[];
  firstAt: number[];
  lastAt: number[];
  hist: { counts: number[]; maxUs: number };
}

export interface JoinResult {
  /** from the client's creation to its replica being loaded */
  ms: number;
  /** when the replica was loaded (CLOCK_MONOTONIC ms, comparable with nowMs() in this process) */
  doneAt: number;
  /** connect() calls it took (more than 1 only with retryUnavailable) */
  attempts: number;
  keys: number;
  sequence: number;
  rssBefore: number;
  rssReady: number;
  rss: number;
  heapUsed: number;
}

export class Worker {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  /** `script`: bench/worker.ts by default; the events suite forks bench/event-worker.ts. */
  constructor(execArgv: string[] = [], script = WORKER) {
    // The parent runs under tsx (--import tsx): the worker inherits that and adds its own options.
    this.child = track(fork(script, [], { execArgv: [...process.execArgv, ...execArgv], stdio: 'inherit' }));
    this.child.on('message', (msg: { id: number; result?: unknown; error?: string }) => {
      const call = this.calls.get(msg.id);
      if (!call) return;
      this.calls.delete(msg.id);
      if (msg.error !== undefined) call.reject(new Error(`worker: ${msg.error}`));
      else call.resolve(msg.result);
    });
    this.child.on('exit', (code, signal) => {
      for (const call of this.calls.values()) call.reject(new Error(`worker exited (${code ?? signal})`));
      this.calls.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}, ms = 30_000): Promise<T> {
    const id = this.nextId++;
    const result = new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.child.send({ id, cmd, args });
    return within(result, ms, `worker ${cmd}`);
  }

  subStats(): Promise<SubStats> {
    return this.call<SubStats>('sub.stats');
  }

  /** Kills the process at once (SIGKILL: it gets no chance to leave a group) and waits for its exit. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await done;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = once(this.child, 'exit');
    this.call('exit', {}, 2000).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(timer);
  }
}

/**
 * One late joiner in a fresh plain-node process (bench/joiner.js, on the compiled client), so its
 * RSS is a client's and nothing else's. Resolves with what it measured; the process exits after.
 */
export async function joinOnce(
  args: { servers: string[]; subtree: string; timeoutMs: number; retryUnavailable?: boolean },
  execArgv: string[] = [],
): Promise<JoinResult> {
  const child = track(fork(JOINER, [], { execArgv: ['--expose-gc', ...execArgv], stdio: 'inherit' }));
  try {
    const answer = new Promise<JoinResult>((resolve, reject) => {
      child.once('message', (msg: { result?: JoinResult; error?: string }) =>
        msg.error !== undefined ? reject(new Error(`joiner: ${msg.error}`)) : resolve(msg.result!),
      );
      child.once('exit', (code, signal) => reject(new Error(`joiner exited (${code ?? signal})`)));
    });
    child.send(args);
    return await within(answer, args.timeoutMs + 10_000, 'late joiner');
  } finally {
    // It exits by itself once it has answered (writing a --cpu-prof profile on the way out).
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }
}
