/**
 * The JavaScript part of a delivery, alone (issue 18): a real Client on the unit tests' fake
 * transport (test/unit/client/fake-server.ts), ready, following '/w/'; then published updates
 * (5-frame KVPUBs, as the SUB hands them over: fresh Buffers) are fed straight to its update
 * handler, 1,000 per event-loop turn, and counted on `client.on('update')`. The figure is the
 * process's CPU per update: decode, replica, bookkeeping, the 'update' event, GC. No sockets,
 * no other process: steady enough to compare a change with the build before it on a busy machine.
 *
 *   node --import tsx bench/watchers-js.ts [--updates 200000] [--rounds 5] [--ttl]
 */
import { setImmediate as turn } from 'node:timers/promises';
import { Client } from '../src/client/client.js';
import type { LinkHandlers } from '../src/client/link.js';
import { encodeKvMsg } from '../src/wire/index.js';
import { FakeNetwork } from '../test/unit/client/fake-server.js';

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}
const UPDATES = Number(arg('updates', '200000'));
const ROUNDS = Number(arg('rounds', '5'));
const TTL = process.argv.includes('--ttl');
const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';

async function main(): Promise<void> {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  net.addServer(A, { state: 'ACTIVE' });
  net.addServer(B, { state: 'PASSIVE' });
  let handlers: LinkHandlers | undefined;
  const client = new Client({
    servers: [A, B],
    subtree: '/w/',
    mode: 'native',
    transport: (address, h) => {
      if (address.snapshot === A) handlers = h;
      return net.transport(address, h);
    },
    clock: net.clock,
    random: () => 0,
  });
  const ready = client.ready();
  await net.settle();
  await ready;
  let delivered = 0;
  client.on('update', (u) => {
    if (u.value !== undefined) delivered++;
  });
  let sequence = 1000;
  const uuid = Buffer.alloc(16, 7).toString('latin1');
  const results: number[] = [];
  for (let r = 0; r < ROUNDS + 1; r++) {
    // Frames made before the clock starts: the SUB hands over new Buffers for every message.
    const all: Buffer[][] = [];
    for (let i = 0; i < UPDATES; i++) {
      const body = Buffer.alloc(100, 0x61);
      all.push(
        encodeKvMsg({
          key: `/w/${i % 1000}`,
          sequence: ++sequence,
          uuid,
          properties: TTL ? 'ttl=60\n' : '',
          body,
        }).map((f) => Buffer.from(f)),
      );
    }
    const before = delivered;
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < UPDATES; i++) {
      handlers!.update(all[i]!);
      if (i % 1000 === 999) await turn();
    }
    await turn();
    const cpu = process.cpuUsage(cpu0);
    if (delivered - before !== UPDATES) throw new Error(`delivered ${delivered - before} of ${UPDATES}`);
    const us = (cpu.user + cpu.system) / UPDATES;
    if (r > 0) results.push(us); // the first round warms the JIT
    console.log(`  round ${r}${r === 0 ? ' (warm-up)' : ''}: ${us.toFixed(2)} µs CPU per update`);
  }
  results.sort((a, b) => a - b);
  console.log(
    `median ${results[results.length >> 1]!.toFixed(2)} µs CPU per update (${TTL ? 'ttl=60' : 'no TTL'})`,
  );
  await client.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
