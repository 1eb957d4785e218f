/**
 * A client process out of file descriptors (fd-sweep-host.ts): whichever socket finds no
 * descriptor, the process goes on, `connect` and plain CHP writes reject with typed errors, and
 * nothing is left open once the clients close. Before: a SUB opened in the client's timer threw
 * EMFILE out of it (the process ended), a failed event observer kept every later closed socket's
 * descriptors, libzmq aborted on a new context's poller, and every connect and close after the
 * last client to a host leaked that host's context (five descriptors and a thread).
 */
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freePorts, startSingle, type ServerProcess } from '../helpers/index.js';
import { runHost } from '../helpers/child-host.js';

const HOST = fileURLToPath(new URL('./fd-sweep-host.ts', import.meta.url));
/** steps of 0 to STEPS free descriptors: a client needs about ten */
const STEPS = 16;

interface Sweep {
  code: number | null;
  stderr: string;
  results: { free: number; connect: string; set: string; leaked: number }[];
  warnings: string[];
}

async function sweep(servers: string[], mode: string): Promise<Sweep> {
  const { code, stderr, result } = await runHost<Omit<Sweep, 'code' | 'stderr'>>('bash', [
    '-c',
    `ulimit -n 1024 && exec "$0" --expose-gc --import tsx "$@"`,
    process.execPath,
    HOST,
    servers.join(','),
    mode,
    String(STEPS),
  ]);
  return { code, stderr, results: result?.results ?? [], warnings: result?.warnings ?? [] };
}

describe('client: out of file descriptors (real server, child processes)', function () {
  this.timeout(90_000);
  let server: ServerProcess | undefined;

  after(async () => {
    await server?.kill();
  });

  it('with 0 to 16 descriptors free, connect and a plain CHP write succeed or reject with ERR_CLIENT_SOCKET (or time out when the SUB cannot open), the process lives on, and every descriptor comes back', async () => {
    const port = await freePorts(5);
    server = startSingle(port, port + 4);
    await server.ready('ACTIVE');
    const servers = [`tcp://127.0.0.1:${port}`];
    const modes = ['chp', 'auto', 'native'];
    const sweeps = await Promise.all(modes.map((mode) => sweep(servers, mode)));
    sweeps.forEach((s, i) => {
      const mode = modes[i]!;
      expect(s.code, `${mode}: the child ended early:\n${s.stderr}`).to.equal(0);
      expect(s.results.length, mode).to.equal(STEPS + 1);
      const connects = new Set(s.results.map((r) => r.connect));
      const sets = new Set(s.results.filter((r) => r.connect === 'ok').map((r) => r.set));
      expect(
        [...connects].filter((c) => !['ok', 'ERR_CLIENT_SOCKET', 'ERR_CLIENT_TIMEOUT'].includes(c)),
        mode,
      ).to.deep.equal([]);
      expect(
        [...sets].filter((c) => !['ok', 'ERR_CLIENT_SOCKET'].includes(c)),
        mode,
      ).to.deep.equal([]);
      expect(s.results[0]!.connect, `${mode}: no descriptor free`).to.equal('ERR_CLIENT_SOCKET');
      expect(s.results[STEPS], `${mode}: enough free`).to.include({ connect: 'ok', set: 'ok' });
      expect(
        s.results.filter((r) => r.leaked > 0),
        `${mode}: descriptors left open after close`,
      ).to.deep.equal([]);
    });
    // The timer's path, which ended the process: a plain CHP client whose SUB could not open.
    expect(sweeps[0]!.warnings.some((w) => w.includes('could not open a SUB'))).to.equal(true);
    expect(
      sweeps[0]!.results.some((r) => r.set === 'ERR_CLIENT_SOCKET'),
      'a write whose collector PUB could not open',
    ).to.equal(true);
  });
});
