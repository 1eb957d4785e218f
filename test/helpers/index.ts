/**
 * Shared test helpers. Bounded waits, free ports, real server processes and reading a node over
 * HTTP live in test/support (the benchmarks use them too); this adds what only tests need.
 */
import { spawnSync } from 'node:child_process';

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
