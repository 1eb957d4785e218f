/**
 * A child process for client-worker.test.ts. Its main thread runs `rounds` worker threads one
 * after another for each mode; each worker (the compiled client: run `npm run build`) connects a
 * client, writes one key, closes the client and ends: on its own (odd rounds) or by
 * `worker.terminate()` right after the close (even rounds). Prints one JSON line: the outcome of
 * each worker and how many descriptors were open before the first and after the last. A process
 * that aborts prints nothing.
 */
import { Worker } from 'node:worker_threads';
import { openDescriptors } from '../helpers/child-host.js';

/** What each worker runs: the compiled client (a worker thread does not get this process's loader). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { servers, mode, round } = workerData;
(async () => {
  const { connect } = await import(${JSON.stringify(new URL('../../dist/src/index.js', import.meta.url).href)});
  const client = await connect({ servers, mode, connectTimeoutMs: 5000 });
  await client.set('/workers/' + mode + '/' + round, 'v');
  await client.close();
  parentPort.postMessage('closed');
})().catch((error) => parentPort.postMessage('failed: ' + error.message));
`;

const [servers, rounds] = [process.argv[2]!.split(','), Number(process.argv[3])];
const before = openDescriptors();
const outcomes: Record<string, number> = {};
for (const mode of ['native', 'chp', 'auto']) {
  for (let round = 0; round < rounds; round++) {
    const worker = new Worker(WORKER, { eval: true, workerData: { servers, mode, round } });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    const outcome = await new Promise<string>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (error) => resolve(`error: ${error.message}`));
    });
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (round % 2 === 0) await worker.terminate();
    await exited;
  }
}
console.log(JSON.stringify({ outcomes, before, after: openDescriptors() }));
process.exit(0);
