/**
 * Shared test helpers. Bounded waits, free ports, real server processes and reading a node over
 * HTTP live in test/support (the benchmarks use them too); this adds what only tests need.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Client, type ClientOptions } from '../../src/index.js';
import { ServerProcess, type ServerProcessOptions } from '../support/index.js';

export * from '../support/index.js';

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

/** mulberry32: a small seedable generator, so a randomised fault test can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * What a test started: server processes, clients and temporary directories, all stopped, closed
 * and removed by `cleanup()` (call it in afterEach).
 */
export class Started {
  private procs: ServerProcess[] = [];
  private clients: Client[] = [];
  private dirs: string[] = [];

  /** A new temporary directory named after `prefix`. */
  dir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  server(options: ServerProcessOptions): ServerProcess {
    const p = new ServerProcess(options);
    this.procs.push(p);
    return p;
  }

  async client(servers: string[], options: Partial<ClientOptions> = {}): Promise<Client> {
    return this.track(await connect({ servers, connectTimeoutMs: 20_000, ...options }));
  }

  /** A client connected some other way, closed by `cleanup()` too. */
  track(client: Client): Client {
    this.clients.push(client);
    return client;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.close()));
    await Promise.all(this.procs.splice(0).map((p) => p.kill()));
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}
