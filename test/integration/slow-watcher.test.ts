/**
 * A watcher that stops reading while writes go on must still converge (promise 4): its queue on
 * the update stream fills past `publisher-queue` messages. libzmq's PUB dropped what it could not
 * queue, and a subtree watcher cannot see that hole: it kept stale values until its next resync.
 * Now the server disconnects it (`twinstar_slow_subscribers_total`), and the client resumes from
 * what it holds when its subscriber connects again. Real processes: a pair, and the watcher in a
 * child frozen with SIGSTOP.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { metric, pairOptions, pairPorts, Started, waitFor } from '../helpers/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOST = fileURLToPath(new URL('./watcher-host.ts', import.meta.url));

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/** The watcher child: its JSON lines, in order, as they come (keys map to their value's SHA-256). */
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
        async () => (await w.keys())['/s/first'] === sha256('before') || undefined,
        10_000,
        'the first write',
      );

      w.child.kill('SIGSTOP');
      // 40 MB in 64 KiB values, more than the kernel's loopback buffers hold, each key twice: the
      // second value of a key is what the watcher must end with. Written 16 at a time, so that the
      // stream carries at least 40 messages: the active publishes what the passive has confirmed in
      // one batch per prefix, and 320 writes sent at once can be confirmed together, too few
      // messages to reach a bound of 5.
      const filler = 'x'.repeat(64 * 1024);
      const expected: Record<string, string> = { '/s/first': sha256('before') };
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 320; i += 16) {
          const writes: Promise<number>[] = [];
          for (let k = i; k < i + 16; k++) {
            const value = `${round}:${k}:${filler}`;
            expected[`/s/k${k}`] = sha256(value);
            writes.push(writer.set(`/s/k${k}`, value));
          }
          await Promise.all(writes);
        }
      }
      // A write resolves on the passive's acknowledgement, which can come before the active has
      // published it (it publishes once the passive confirms): the count read then was 0, once,
      // with the suite beside a busy loop. The writer's own subtree resolves a write only once its
      // replica has it from the active's stream, so after this one everything before it has been
      // published.
      await writer.set('/w/published', 'after');
      expect(
        await metric(a.http, 'twinstar_slow_subscribers_total'),
        'the frozen watcher was disconnected',
      ).to.equal(1);
      const slowLine = (l: { msg?: unknown }) =>
        String(l.msg).startsWith('disconnected a slow update-stream subscriber');
      await waitFor(() => a.logs(slowLine).length > 0 || undefined, 10_000, 'the slow-subscriber log line');
      expect(a.logs(slowLine).map((l) => l.count)).to.deep.equal([1]);
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
