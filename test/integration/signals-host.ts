/**
 * A child process for client-signals.test.ts, run under `node --cpu-prof` with a short sampling
 * interval, so that a SIGPROF arrives every few tens of microseconds. First a control: bare libzmq
 * connects on a context of its own until one fails with EINTR (the proof that signals interrupt
 * such calls here; about 1 in 100 does). Then `cycles` clients, one after another, each
 * connected, given one write and closed. Prints one JSON line: the control's counts, each client
 * failure's code, and how many descriptors were still open once everything was closed. Run with
 * --expose-gc.
 */
import * as zmq from 'zeromq';
import { connect, type Mode } from '../../src/index.js';
import { descriptorsOver, openDescriptors } from '../helpers/child-host.js';

const [servers, mode, cycles] = [
  process.argv[2]!.split(','),
  process.argv[3] as Mode,
  Number(process.argv[4]),
];
/** most bare connects of the control (each on a new DEALER, as a client's) until one is interrupted */
const CONTROL_CONNECTS = 100_000;
const code = (error: unknown) => (error as { code?: string }).code ?? String(error);

const control = { connects: 0, interrupted: 0, reaperWaits: 0 };
const controlContext = new zmq.Context();

/**
 * A new DEALER on the control's context. A closed socket gives its slot back (1,023 per context)
 * only once libzmq's reaper thread has freed it, and this loop outruns the reaper (with the
 * context capped at 32 sockets, every run failed). The connects needed for one EINTR vary (54 to
 * 1,082 in 9 runs): past about 1,000 the context refused a new socket with EMFILE (seen in CI).
 * So on EMFILE, wait for the reaper and try again.
 */
async function controlDealer(): Promise<zmq.Dealer> {
  for (;;) {
    try {
      return new zmq.Dealer({ context: controlContext, linger: 0 });
    } catch (error) {
      if (code(error) !== 'EMFILE' || control.reaperWaits >= 1000) throw error;
      control.reaperWaits++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

while (control.interrupted === 0 && control.connects < CONTROL_CONNECTS) {
  const dealer = await controlDealer();
  control.connects++;
  try {
    dealer.connect('tcp://127.0.0.1:1');
  } catch (error) {
    if (code(error) !== 'EINTR') throw error;
    control.interrupted++;
  }
  dealer.close();
}

// The context of the server's host is made once and kept (contexts.ts): made here, before the baseline.
await (await connect({ servers, mode })).close();
const baseline = await descriptorsOver(0).then(openDescriptors);
const failures: Record<string, number> = {};
let ok = 0;
for (let i = 0; i < cycles; i++) {
  try {
    const client = await connect({ servers, mode, connectTimeoutMs: 5000 });
    try {
      await client.set(`/signals/${mode}/${i}`, 'v');
      ok++;
    } finally {
      await client.close();
    }
  } catch (error) {
    const what = `${code(error)}: ${(error as Error).message}`;
    failures[what] = (failures[what] ?? 0) + 1;
  }
}
console.log(JSON.stringify({ control, ok, failures, leaked: await descriptorsOver(baseline) }));
process.exit(0);
