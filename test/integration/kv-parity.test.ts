/**
 * KV parity with real processes (issue 17, "Tests"): compare-and-set races through a SIGKILL of
 * the active, leases whose holder is SIGKILLed or lives through a failover, and a watch from a
 * sequence across a failover.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ConflictError, HistoryUnavailableError, type Client } from '../../src/index.js';
import { pairOptions, pairPorts, Started, waitFor, within } from '../helpers/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOLDER = fileURLToPath(new URL('./lease-holder-host.ts', import.meta.url));

describe('KV parity with real processes: CAS, leases, watch from a sequence', function () {
  this.timeout(180_000);
  const started = new Started();
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    await started.cleanup();
  });

  async function pair(extraArgs: string[] = []) {
    const options = pairOptions(await pairPorts(), { heartbeatMs: 100, failoverMs: 1000, extraArgs });
    const primary = started.server(options.primary);
    const backup = started.server(options.backup);
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 20_000, 'the passive to attach');
    return { primary, backup, servers: [primary.endpoint, backup.endpoint] };
  }

  /** Adds one to the counter with compare-and-set, reading and retrying on conflict. */
  async function increment(client: Client, key: string): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const entry = client.getEntry(key);
      const current = entry === undefined ? 0 : Number(entry.value.toString());
      try {
        const write =
          entry === undefined
            ? client.create(key, String(current + 1))
            : client.set(key, String(current + 1), { ifSequence: entry.sequence });
        await write;
        return attempt;
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        // Someone else won: wait until the replica holds at least the sequence the key is at now.
        await waitFor(
          () => (client.getEntry(key)?.sequence ?? 0) >= error.currentSequence,
          10_000,
          'the winner',
        );
      }
    }
  }

  it('8 clients increment one counter 1,000 times with compare-and-set while the active is SIGKILLed: exactly 1,000', async () => {
    const { primary, backup, servers } = await pair();
    const clients = await Promise.all(Array.from({ length: 8 }, () => started.client(servers)));
    let done = 0;
    let retries = 0;
    const killed = (async () => {
      await waitFor(() => done >= 300, 60_000, '300 increments before the kill');
      await primary.kill();
    })();
    await within(
      Promise.all(
        clients.map(async (client, i) => {
          for (let n = 0; n < 125; n++) {
            retries += await increment(client, '/cas/counter');
            done++;
          }
          return i;
        }),
      ),
      150_000,
      '1,000 increments',
    );
    await killed;
    await backup.ready('ACTIVE', 20_000);
    const reader = await started.client(servers);
    expect(reader.getString('/cas/counter')).to.equal('1000');
    console.log(
      `      1,000 increments by 8 clients, ${retries} conflicts retried, the active killed after 300`,
    );
  });

  function holder(
    servers: string[],
    ttlMs: number,
    key: string,
  ): { child: ChildProcess; line: Promise<Record<string, unknown>> } {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', HOLDER, servers.join(','), String(ttlMs), key],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    const line = new Promise<Record<string, unknown>>((resolve) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
      });
    });
    return { child, line };
  }

  it('a lease: its key lives 10x its TTL with its holder, through a failover, with no watch traffic; it goes within the TTL once the holder is SIGKILLed', async () => {
    const { primary, backup, servers } = await pair();
    // A lease outlives a failover when its TTL is longer than the failover takes (here about 1 s):
    // the holder's client gives up after a whole TTL without an answer (docs/kv.md).
    const ttlMs = 3_000;
    const watcher = await started.client(servers);
    const seen: { key: string; seq: number }[] = [];
    const watch = watcher.watch('/svc/', { initial: false });
    void (async () => {
      for await (const u of watch) seen.push({ key: u.key, seq: u.seq });
    })();
    const h = holder(servers, ttlMs, '/svc/worker-1');
    const first = await within(h.line, 30_000, 'the holder');
    await waitFor(() => watcher.getString('/svc/worker-1') !== undefined, 10_000, 'the watcher sees the key');
    const registered = seen.length;
    expect(registered, 'the watcher saw the write').to.equal(1);

    // 10 TTLs with the holder alive, a failover in the middle.
    const until = Date.now() + 10 * ttlMs;
    await waitFor(() => Date.now() >= until - 5 * ttlMs, 10 * ttlMs, 'half way');
    await primary.kill();
    await backup.ready('ACTIVE', 20_000);
    await waitFor(() => Date.now() >= until, 10 * ttlMs, 'ten TTLs');
    const after = await started.client([backup.endpoint]);
    expect(after.getString('/svc/worker-1'), 'the key is still there').to.not.equal(undefined);
    expect(after.getEntry('/svc/worker-1')!.sequence).to.equal(first.seq);
    expect(seen.slice(registered), 'no watch event from keep-alives').to.deep.equal([]);

    // The holder dies: the key goes within its TTL (plus the active's 100 ms timer).
    h.child.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(() => after.getString('/svc/worker-1') === undefined, 10_000, 'the key to go');
    const gone = Date.now() - killedAt;
    expect(gone, 'gone within the TTL (and a timer tick, and a publication)').to.be.below(ttlMs + 1_000);
    console.log(`      key gone ${gone} ms after its holder was killed (TTL ${ttlMs} ms)`);
  });

  it('watch from a sequence across a failover: every change once, in order; a sequence the window lost is HistoryUnavailableError', async () => {
    const { primary, backup, servers } = await pair(['--replay-log-size', '150']);
    const writer = await started.client(servers);
    const from = await writer.set('/w/0', 'v0');
    for (let i = 1; i < 50; i++) await writer.set(`/w/${i}`, `v${i}`);
    const watcher = await started.client(servers);
    const got: number[] = [];
    const watch = watcher.watch('/w/', { fromSequence: from - 1 });
    void (async () => {
      for await (const u of watch) got.push(Number(u.key.slice(3)));
    })();
    await waitFor(() => got.length >= 50, 20_000, 'the replay');
    await primary.kill();
    for (let i = 50; i < 100; i++) await within(writer.set(`/w/${i}`, `v${i}`), 20_000, `write ${i}`);
    await backup.ready('ACTIVE', 20_000);
    await waitFor(() => got.length >= 100, 30_000, 'the live changes after the failover');
    expect(got).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));

    // The window holds 150 changes here: after 100 more writes, the first sequences are gone.
    for (let i = 100; i < 200; i++) await within(writer.set(`/w/${i}`, `v${i}`), 20_000, `write ${i}`);
    const late = await started.client([backup.endpoint]);
    const lost = late.watch('/w/', { fromSequence: from - 1 });
    const error = await within(
      (async () => {
        try {
          for await (const _ of lost) return undefined;
        } catch (e) {
          return e;
        }
        return undefined;
      })(),
      10_000,
      'the watch to fail',
    );
    expect(error).to.be.instanceOf(HistoryUnavailableError);
    expect((error as HistoryUnavailableError).message).to.match(/oldest \d+/);
  });
});
