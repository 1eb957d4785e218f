/**
 * A watcher that stops reading while writes go on must still converge (promise 4): its queue on
 * the update stream fills past `publisher-queue` messages. libzmq's PUB dropped what it could not
 * queue, and a subtree watcher cannot see that hole: it kept stale values until its next resync.
 * Now the server disconnects it (`twinstar_slow_subscribers_total`), and the client resumes from
 * what it holds when its subscriber connects again. Real processes: a pair, and the watcher in a
 * child frozen with SIGSTOP.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { metric, pairOptions, pairPorts, Started, waitFor } from '../helpers/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOST = fileURLToPath(new URL('./watcher-host.ts', import.meta.url));

/** The watcher child: its JSON lines, in order, as they come. */
function watcher(servers: string[]) {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ['--import', 'tsx', HOST, servers.join(','), '/s/'],
    { cwd: ROOT },
  );
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line)));
  const keys = async (): Promise<Record<string, string>> => {
    const before = lines.length;
    child.stdin.write('dump\n');
    const line = await waitFor(() => lines[before], 10_000, "the watcher's keys");
    return line.keys as Record<string, string>;
  };
  return { child, lines, keys };
}

describe('a watcher that stops reading (real processes, SIGSTOP)', function () {
  this.timeout(120_000);
  const started = new Started();
  let child: ChildProcessWithoutNullStreams | undefined;
  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await started.cleanup();
  });

  // Each bound alone: 5 messages, or 1 MiB (16 of the 64 KiB values below) under the default count.
  const bounds = [
    { name: 'publisher-queue 5 messages', args: ['--publisher-queue', '5'] },
    { name: 'publisher-queue-bytes 1 MiB', args: ['--publisher-queue-bytes', String(1024 * 1024)] },
  ];
  for (const bound of bounds)
    it(`is disconnected once its queue is full (${bound.name}), and converges after it wakes: no update missed`, async () => {
      const ports = await pairPorts();
      // The freeze below overflows the queue past the socket buffers.
      const { primary, backup } = pairOptions(ports, { extraArgs: bound.args });
      const a = started.server(primary);
      const b = started.server(backup);
      await a.ready((s) => s.state === 'ACTIVE' && !s.degraded);
      await b.ready((s) => s.state === 'PASSIVE');
      const servers = [a.endpoint, b.endpoint];
      const w = watcher(servers);
      child = w.child;
      await waitFor(() => w.lines[0]?.ready, 20_000, 'the watcher connected');
      // The writer mirrors another subtree, so the watcher is the only subscriber the writes reach.
      // A writer on /s/ would get the same 40 MB in this busy process, and on a loaded machine it
      // was disconnected as slow too (a count of 2).
      const writer = await started.client(servers, { subtree: '/w/' });
      // The channel works: a write before the freeze reaches the watcher.
      await writer.set('/s/first', 'before');
      await waitFor(
        async () => (await w.keys())['/s/first'] === 'before' || undefined,
        10_000,
        'the first write',
      );

      w.child.kill('SIGSTOP');
      // 40 MB in 64 KiB values, more than the kernel's loopback buffers hold, each key twice: the
      // second value of a key is what the watcher must end with.
      const filler = 'x'.repeat(64 * 1024);
      const expected: Record<string, string> = { '/s/first': 'before' };
      for (let round = 0; round < 2; round++) {
        const writes: Promise<number>[] = [];
        for (let i = 0; i < 320; i++) {
          const value = `${round}:${i}:${filler}`;
          expected[`/s/k${i}`] = value;
          writes.push(writer.set(`/s/k${i}`, value));
        }
        await Promise.all(writes);
      }
      expect(
        await metric(a.http, 'twinstar_slow_subscribers_total'),
        'the frozen watcher was disconnected',
      ).to.equal(1);
      const said = a.logs((l) => String(l.msg).startsWith('disconnected a slow update-stream subscriber'));
      expect(said.map((l) => l.count)).to.deep.equal([1]);
      w.child.kill('SIGCONT');

      await waitFor(
        async () => {
          const keys = await w.keys();
          const missing = Object.keys(expected).filter((k) => keys[k] !== expected[k]);
          return missing.length === 0 || undefined;
        },
        60_000,
        'the watcher to hold every key at its last value',
      );
    });
});
