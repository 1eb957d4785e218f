/**
 * A client process that handles signals (signals-host.ts, under `node --cpu-prof`: SIGPROF every
 * 20 µs). A signal that lands while libzmq waits on its command pipe fails the call with EINTR,
 * and zeromq.js makes connects and event observers only once. Before: `connect()` rejected with
 * ERR_CLIENT_SOCKET "Interrupted system call" (about 1 in 100 with SIGPROF every 20-50 µs), and an
 * observer interrupted half-way kept every socket closed after it open, until the process ran out
 * of descriptors. Now every client connects and writes, and every descriptor comes back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freePorts, startSingle, type ServerProcess } from '../helpers/index.js';
import { runHost } from '../helpers/child-host.js';

const HOST = fileURLToPath(new URL('./signals-host.ts', import.meta.url));
const CYCLES = 60;

interface Result {
  control: { connects: number; interrupted: number; reaperWaits: number };
  ok: number;
  failures: Record<string, number>;
  leaked: number;
}

function run(servers: string[], mode: string, profiles: string) {
  const profiler = ['--cpu-prof', `--cpu-prof-dir=${profiles}`, '--cpu-prof-interval', '20'];
  const host = [HOST, servers.join(','), mode, String(CYCLES)];
  return runHost<Result>(process.execPath, [...profiler, '--expose-gc', '--import', 'tsx', ...host]);
}

describe('client: a process that handles signals (real server, child processes under a profiler)', function () {
  this.timeout(120_000);
  let server: ServerProcess | undefined;
  const profiles = mkdtempSync(join(tmpdir(), 'twinstar-signals-'));

  after(async () => {
    await server?.kill();
    rmSync(profiles, { recursive: true, force: true });
  });

  it(`connects, writes and closes ${CYCLES} clients in each mode with none failing, and every descriptor comes back`, async () => {
    const port = await freePorts(5);
    server = startSingle(port, port + 4);
    await server.ready('ACTIVE');
    const servers = [`tcp://127.0.0.1:${port}`];
    const modes = ['chp', 'auto', 'native'];
    const runs = await Promise.all(modes.map((mode) => run(servers, mode, profiles)));
    runs.forEach(({ code, stderr, result }, i) => {
      const mode = modes[i]!;
      expect(code, `${mode}: the child ended early:\n${stderr}`).to.equal(0);
      expect(result, mode).to.not.equal(undefined);
      // The control: in this process, signals do interrupt libzmq calls.
      const { interrupted, connects } = result!.control;
      expect(interrupted, `${mode}: no EINTR in ${connects} bare connects`).to.equal(1);
      expect(result!.failures, mode).to.deep.equal({});
      expect(result!.ok, mode).to.equal(CYCLES);
      expect(result!.leaked, `${mode}: descriptors left open after close`).to.be.at.most(0);
    });
  });
});
