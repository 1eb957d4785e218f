/**
 * The orders example (examples/orders/, issue 16) against a real pair of its own: run-all.ts starts
 * the two billing instances and the email service, runs the order service, and every order must be
 * billed exactly once (by one of the two instances) and emailed exactly once. The scripts take the
 * pair from TWINSTAR_SERVERS. The counts are read from the services' own lines, not from run-all's
 * verdict.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { pairOptions, pairPorts, Started, waitFor, within } from '../helpers/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUN_ALL = fileURLToPath(new URL('../../examples/orders/run-all.ts', import.meta.url));
const ORDERS = 20;

describe('examples/orders against a pair', function () {
  this.timeout(180_000);
  const started = new Started();
  let child: ChildProcess | undefined;

  afterEach(async () => {
    // run-all and the services it started share a process group: none outlives the test.
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    child = undefined;
    await started.cleanup();
  });

  it('bills each order exactly once (billing: a group of two) and emails it exactly once (email: a group of one)', async () => {
    const options = pairOptions(await pairPorts());
    const primary = started.server(options.primary);
    const backup = started.server(options.backup);
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 20_000, 'the passive to attach');

    child = spawn(process.execPath, ['--import', 'tsx', RUN_ALL, String(ORDERS)], {
      cwd: ROOT,
      env: { ...process.env, TWINSTAR_SERVERS: `${primary.endpoint},${backup.endpoint}` },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, killed whole by afterEach if the test fails
    });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const [code] = (await within(once(child, 'exit'), 120_000, 'run-all to finish')) as [number | null];
    const lines = out.split('\n');

    const created = lines.flatMap((l) => /^orders: created order (\S+) /.exec(l)?.[1] ?? []);
    const billed = lines.flatMap((l) => /^(billing-[12]): billed order ([^ ,]+),/.exec(l)?.slice(1, 3) ?? []);
    const billedIds = billed.filter((_, i) => i % 2 === 1);
    const instances = new Set(billed.filter((_, i) => i % 2 === 0));
    const emailed = lines.flatMap((l) => /^email: emailed \S+ about order (\S+) /.exec(l)?.[1] ?? []);

    expect(created, `orders created (stderr: ${err})`).to.have.length(ORDERS);
    expect(new Set(created).size, 'order ids are distinct').to.equal(ORDERS);
    expect([...billedIds].sort(), 'each order billed exactly once').to.deep.equal([...created].sort());
    expect([...emailed].sort(), 'each order emailed exactly once').to.deep.equal([...created].sort());
    expect(lines.some((l) => /^run-all: 20 orders, each billed once and emailed once: yes/.test(l))).to.equal(
      true,
    );
    expect(code, 'run-all exit code').to.equal(0);
    console.log(`      billing instances that billed: ${[...instances].sort().join(', ')}`);
  });
});
