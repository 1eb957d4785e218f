/**
 * Client processes the tests start and read (hosts such as fd-sweep-host.ts): a fault that aborts
 * or exhausts a process must not take the test runner down, so it happens in a child. The child
 * prints one JSON line last; `runHost` returns how it ended, its stderr and that line.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface HostRun<T> {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** the last line of stdout, parsed: undefined when it is not a JSON object (the child ended early) */
  result: T | undefined;
}

/** Runs `command args` (e.g. node and its flags, the host, its arguments) from the project root to its end. */
export async function runHost<T>(command: string, args: string[]): Promise<HostRun<T>> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  const line = out.trim().split('\n').pop() ?? '';
  return { code, signal, stderr, result: line.startsWith('{') ? (JSON.parse(line) as T) : undefined };
}

/** Descriptors this process has open. */
export function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * In a host run with --expose-gc: waits (at most 5 s) for what was closed to be given back (a
 * ZeroMQ context frees some when collected) and returns the descriptors still open over `baseline`.
 */
export async function descriptorsOver(baseline: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const deadline = Date.now() + 5000;
  for (;;) {
    gc();
    const over = openDescriptors() - baseline;
    if (over <= 0 || Date.now() > deadline) return over;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
