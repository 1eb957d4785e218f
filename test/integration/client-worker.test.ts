/**
 * Clients in worker threads (worker-host.ts, a child process, so that an abort cannot take the
 * test runner down). A worker that connected a client, closed it and then ended (on its own, or by
 * `terminate()`) aborted the whole process before: "terminate called after throwing an instance
 * of 'Napi::Error'". zeromq.js stops a socket's event observer some milliseconds after the socket
 * closes, and settles the observer's pending read while Node tears the thread down. close() now
 * resolves once the observers have stopped.
 */
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freePorts, startSingle, type ServerProcess } from '../helpers/index.js';
import { runHost } from '../helpers/child-host.js';

const HOST = fileURLToPath(new URL('./worker-host.ts', import.meta.url));
const ROUNDS = 6;

describe('client: in worker threads (real server, a child process)', function () {
  this.timeout(120_000);
  let server: ServerProcess | undefined;

  after(async () => {
    await server?.kill();
  });

  it(`${ROUNDS} workers per mode each connect, write, close and end (on their own or terminated) without aborting the process or leaving descriptors open`, async () => {
    const port = await freePorts(5);
    server = startSingle(port, port + 4);
    await server.ready('ACTIVE');
    const { code, signal, stderr, result } = await runHost<{
      outcomes: Record<string, number>;
      before: number;
      after: number;
    }>(process.execPath, ['--import', 'tsx', HOST, `tcp://127.0.0.1:${port}`, String(ROUNDS)]);
    expect({ code, signal }, `the child ended early:\n${stderr}`).to.deep.equal({ code: 0, signal: null });
    expect(result).to.not.equal(undefined);
    expect(result!.outcomes).to.deep.equal({ closed: 3 * ROUNDS });
    expect(result!.after, 'descriptors open after the last worker').to.be.at.most(result!.before);
  });
});
