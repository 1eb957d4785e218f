/**
 * A child process for client-fds.test.ts: it fills its descriptor table with /dev/null, leaves
 * `free` descriptors open (0, 1, 2, ...), and connects a client and writes one key in each state,
 * so that every socket a client opens (context, DEALER, observers, SUB, collector PUB) is, at
 * some step, the one that finds no descriptor. Prints one JSON line: each step's outcome and how
 * many descriptors were still open once everything was closed. Run with --expose-gc: a ZeroMQ
 * context gives its descriptors back when it is collected.
 */
import { closeSync, openSync } from 'node:fs';
import { connect, type Client, type Mode } from '../../src/index.js';
import { descriptorsOver, openDescriptors } from '../helpers/child-host.js';

const [servers, mode, steps] = [
  process.argv[2]!.split(','),
  process.argv[3] as Mode,
  Number(process.argv[4]),
];
const warnings: string[] = [];
process.on('warning', (w) => warnings.push(w.message));

const fillers: number[] = [];
const code = (error: unknown) => (error as { code?: string }).code ?? String(error);

/** Fills the table, then closes `free` fillers. */
function leave(free: number): void {
  for (;;) {
    try {
      fillers.push(openSync('/dev/null', 'r'));
    } catch {
      break;
    }
  }
  for (let i = 0; i < free && fillers.length > 0; i++) closeSync(fillers.pop()!);
}

// The context of the server's host is made once and kept (contexts.ts): made here, before the baseline.
await (await connect({ servers, mode })).close();
const baseline = await descriptorsOver(0).then(openDescriptors);
const results: { free: number; connect: string; set: string; leaked: number }[] = [];
for (let free = 0; free <= steps; free++) {
  leave(free);
  const client = await connect({ servers, mode, connectTimeoutMs: 1500 }).catch((e: unknown) => e);
  let set = '';
  if (!(client instanceof Error))
    set = await (client as Client).set(`/fd/${free}`, 'v').then(
      () => 'ok',
      (e: unknown) => code(e),
    );
  for (const fd of fillers.splice(0)) closeSync(fd);
  if (!(client instanceof Error)) await (client as Client).close();
  results.push({
    free,
    connect: client instanceof Error ? code(client) : 'ok',
    set,
    leaked: await descriptorsOver(baseline),
  });
}
console.log(JSON.stringify({ results, warnings }));
process.exit(0);
