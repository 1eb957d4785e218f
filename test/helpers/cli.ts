/** Running the `twinstar` command as a user would, for the CLI tests. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { BIN } from '../support/index.js';

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the CLI to completion (SIGKILL after `ms`) and returns its exit code and output. */
export async function runCli(
  args: string[],
  options: { stdin?: Buffer; ms?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  const env = options.env ? { ...process.env, ...options.env } : process.env;
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined); // the command may exit before reading stdin
  child.stdin.end(options.stdin ?? Buffer.alloc(0));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.ms ?? 30_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout: Buffer.concat(out), stderr };
}

export const describeRun = (r: CliResult) =>
  `exit ${r.code}, stdout ${JSON.stringify(r.stdout.toString())}, stderr ${r.stderr}`;
