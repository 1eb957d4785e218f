/**
 * twinstar's client and CLI against a pair of STRICT Model Six servers (ZeroMQ guide, RFC 12 plus
 * Binary Star), played by test/compat/strict_chp_server.py on Debian's python3-zmq. Such a server
 * knows ICANHAZ? and nothing else: any other request on its snapshot socket kills it ("E: bad
 * request, aborting"), as it kills the guide's clonesrv6.py. It advertises nothing (no `twinstar=1`,
 * no `hugz-ms`) and sends HUGZ once a second, twice the client's default server timeout.
 *
 * So these tests prove that the client, in `mode: 'chp'` and in the default `mode: 'auto'`:
 * never sends a native command to a plain CHP pair; does not take the 1 s HUGZ gap for a dead
 * server (no failover, no resync while idle); sees a TTL expiry once; fails over to the backup
 * when the primary is killed and converges on the backup's state; and that `twinstar set --mode
 * chp` delivers its write before it exits.
 *
 * Needs the compiled CLI for the CLI tests: `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Client, type FailoverInfo, type Update } from '../../src/index.js';
import { BIN, requireTool, waitFor, within } from '../helpers/index.js';
import { PYTHON, startStrictPair, type StrictDump, type StrictPair } from '../helpers/strict-chp.js';

const CHP_CLIENT = fileURLToPath(new URL('../compat/chp_client.py', import.meta.url));

/** What a client told the application, in order, and its own log (for failure messages). */
class Recorder {
  readonly logLines: string[] = [];
  readonly updates: Update[] = [];
  readonly failovers: FailoverInfo[] = [];
  readonly resyncs: { sequence: number; server: string }[] = [];
  readonly ready: { server: string; sequence: number }[] = [];
  readonly modes: string[] = [];

  listen(client: Client): void {
    client.on('update', (u) => this.updates.push(u));
    client.on('failover', (f) => this.failovers.push(f));
    client.on('resync', (r) => this.resyncs.push(r));
    client.on('ready', (r) => this.ready.push(r));
    client.on('mode', (m) => this.modes.push(m));
  }

  /** A debug logger whose lines (with times) this recorder keeps. */
  logger() {
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.logLines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    return pino({ level: 'debug', timestamp: pino.stdTimeFunctions.isoTime }, sink);
  }

  /** The client's log (the last 80 lines), for a failure message. */
  get warnings(): string {
    return this.logLines.slice(-80).join('\n');
  }
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[], ms = 20_000): Promise<Run> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  try {
    const [code] = (await within(once(child, 'close'), ms, `${command} ${args.join(' ')}`)) as [
      number | null,
    ];
    return { code, stdout, stderr };
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\nstdout: ${stdout}\nstderr: ${stderr}`);
  }
}

/** The values under `prefix` in a strict server's dump, keys sorted (for JSON comparison). */
function valuesOf(dump: StrictDump, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(dump.entries).sort())
    if (key.startsWith(prefix)) out[key] = dump.entries[key]!.value;
  return out;
}

/** The same for a client's replica. */
function valuesOfClient(client: Client, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = client.entries(prefix);
  for (const key of [...entries.keys()].sort()) out[key] = entries.get(key)!.toString();
  return out;
}

function expectNoAbort(pair: StrictPair): void {
  for (const server of [pair.primary, pair.backup]) {
    expect(server.aborted, `a strict server aborted: ${server.describe()}`).to.equal(false);
  }
}

function requirePython(ctx: Mocha.Context): void {
  requireTool(
    ctx,
    PYTHON,
    ['-c', 'import zmq'],
    "install Debian's python3-zmq (apt-get install -y python3-zmq)",
  );
}

for (const mode of ['chp', 'auto'] as const) {
  describe(`twinstar's client (mode '${mode}') against a strict Model Six pair (pyzmq)`, function () {
    this.timeout(90_000);

    let pair: StrictPair;
    const clients: Client[] = [];

    beforeEach(async function () {
      requirePython(this);
      pair = await startStrictPair(1000);
    });

    afterEach(async function () {
      for (const client of clients.splice(0)) await client.close();
      await pair?.stop();
    });

    /** A client on the pair with default timings, ready; the servers' logs if it never gets there. */
    async function open(subtree: string): Promise<{ client: Client; events: Recorder }> {
      const events = new Recorder();
      const client = new Client({ servers: pair.servers, subtree, mode, log: events.logger() });
      events.listen(client);
      clients.push(client);
      try {
        await client.ready(15_000);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${pair.primary.describe()}\n${pair.backup.describe()}`);
      }
      return { client, events };
    }

    it('connects with ICANHAZ? only, writes through the collectors, reads and watches its writes', async function () {
      const { client, events } = await open('/rw/');
      expect(client.server).to.equal(pair.primary.endpoint);
      expect(client.mode).to.equal('chp');
      if (mode === 'auto') expect(events.modes).to.deep.equal(['chp']);
      const watch = client.watch('/rw/', { initial: false });

      await client.set('/rw/a', 'alpha');
      await client.set('/rw/b', 'beta');
      const first = await within(watch.next(), 10_000, 'the first watched update');
      const second = await within(watch.next(), 10_000, 'the second watched update');
      expect([first.value.key, first.value.value?.toString()]).to.deep.equal(['/rw/a', 'alpha']);
      expect([second.value.key, second.value.value?.toString()]).to.deep.equal(['/rw/b', 'beta']);
      expect(client.getString('/rw/a')).to.equal('alpha');
      expect(client.getString('/rw/b')).to.equal('beta');

      // The strict active holds them with the sequences the client saw; the passive follows it.
      const dump = await pair.primary.dump();
      expect(dump.entries['/rw/a']!.seq).to.equal(first.value.seq);
      expect(dump.entries['/rw/b']!.seq).to.equal(second.value.seq);
      await waitFor(
        async () =>
          JSON.stringify(valuesOf(await pair.backup.dump(), '/rw/')) ===
          JSON.stringify(valuesOf(dump, '/rw/')),
        10_000,
        'the strict passive to hold the writes',
      );
      // Binary Star order (RFC 12 clients, the wire contract): ask the primary first and the backup
      // only after the primary was silent for the server timeout. An ICANHAZ? to a passive is a
      // vote; this one would have been refused (the primary is alive), but it should not be sent.
      expect(
        pair.backup.votesIgnored,
        `ICANHAZ? the client sent the passive while the primary answered\n${pair.primary.describe()}\n${pair.backup.describe()}\nclient:\n${events.warnings}`,
      ).to.equal(0);
      await watch.return?.();
      expectNoAbort(pair);
    });

    it('sees a TTL expiry exactly once', async function () {
      const { client, events } = await open('/ttl/');
      await client.set('/ttl/short', 'soon gone', { ttl: 1 });
      await waitFor(
        () => events.updates.some((u) => u.key === '/ttl/short' && u.deleted),
        15_000,
        'the expiry of /ttl/short to reach the client',
      );
      // A later write arriving proves the stream still flows; a second delete would be before it.
      await client.set('/ttl/marker', 'after the expiry');
      await waitFor(() => client.getString('/ttl/marker') === 'after the expiry', 10_000, 'the marker');

      const seen = events.updates.filter((u) => u.key === '/ttl/short');
      const summary = seen.map((u) => ({ deleted: u.deleted, seq: u.seq, resync: u.resync }));
      // once set, once deleted: no second delete, and no re-delivery of the set by a needless
      // resync (the strict server, like the guide's, stores the ttl as an expiry time, so a
      // snapshot shows the key with other properties than its KVPUB had)
      expect(
        seen.length,
        `every update of /ttl/short the client delivered: ${JSON.stringify(summary)}\nclient:\n${events.warnings}`,
      ).to.equal(2);
      expect(seen[0]!.deleted).to.equal(false);
      expect(seen[1]!.deleted).to.equal(true);
      expect(seen[1]!.seq).to.be.greaterThan(seen[0]!.seq);
      expect(client.get('/ttl/short')).to.equal(undefined);
      expect((await pair.primary.dump()).entries).to.not.have.property('/ttl/short');
      expectNoAbort(pair);
    });

    it('stays with the active through 5 s of idle (HUGZ every 1 s): no failover, no resync', async function () {
      const { client, events } = await open('/idle/');
      await client.set('/idle/k', 'v');
      await waitFor(() => client.getString('/idle/k') === 'v', 10_000, 'the first write');
      const snapshots = pair.primary.snapshotsServed('/idle/');
      expect(snapshots, 'the client took one snapshot to connect').to.equal(1);

      // Nothing happens for 5 s: that is the scenario, so the wait is the idle time itself. It ends
      // early if the client already did what it must not.
      const start = Date.now();
      await waitFor(
        () => Date.now() - start >= 5000 || events.failovers.length > 0 || events.resyncs.length > 0,
        10_000,
        'five idle seconds',
      );
      expect(events.failovers, `failovers while idle; client:\n${events.warnings}`).to.deep.equal([]);
      expect(events.resyncs, `resyncs while idle; client:\n${events.warnings}`).to.deep.equal([]);
      expect(events.ready, 'ready events').to.have.length(1);
      expect(pair.primary.snapshotsServed('/idle/'), 'snapshots the primary served').to.equal(snapshots);
      expect(
        pair.backup.votesIgnored,
        `ICANHAZ? votes the passive dropped\n${pair.backup.describe()}\nclient:\n${events.warnings}`,
      ).to.equal(0);
      expect(pair.backup.states).to.deep.equal(['PASSIVE']);

      // The negative checks mean something only if the client still listens: a write from an
      // independent RFC 12 client (to the active's collector) reaches it.
      const write = await run(PYTHON, [
        CHP_CLIENT,
        '--endpoint',
        pair.primary.endpoint,
        'set',
        '/idle/py',
        'from python',
      ]);
      expect(write.code, write.stderr).to.equal(0);
      await waitFor(() => client.getString('/idle/py') === 'from python', 10_000, 'the python write');
      expect(client.server).to.equal(pair.primary.endpoint);
      expectNoAbort(pair);
    });

    it('fails over to the backup when the strict primary is SIGKILLed and converges on its state', async function () {
      const { client, events } = await open('/fo/');
      for (let i = 0; i < 5; i++) await client.set(`/fo/k${i}`, `v${i}`);
      await waitFor(() => client.getString('/fo/k4') === 'v4', 10_000, 'the writes before the kill');
      await waitFor(
        async () => (await pair.backup.dump()).entries['/fo/k4']?.value === 'v4',
        10_000,
        'the passive to hold the writes before the kill',
      );
      expectNoAbort(pair);

      await pair.primary.kill();
      // Written while the primary is dead and the backup still passive: a Model Six client sends
      // it to both collectors, and the passive applies its pending list when a vote promotes it.
      const during = client.set('/fo/during', 'in the gap');
      await waitFor(
        () => events.failovers.find((f) => f.to === pair.backup.endpoint),
        30_000,
        `a failover to the backup (failovers so far: ${JSON.stringify(events.failovers)})`,
      );
      await pair.backup.waitState('ACTIVE');
      expect(client.server).to.equal(pair.backup.endpoint);
      await within(during, 15_000, 'the write issued during the failover');

      await client.set('/fo/after', 'on the backup');
      await client.delete('/fo/k0');
      let dump: StrictDump | undefined;
      await waitFor(
        async () => {
          dump = await pair.backup.dump();
          return (
            client.getString('/fo/after') === 'on the backup' &&
            client.getString('/fo/during') === 'in the gap' &&
            JSON.stringify(valuesOfClient(client, '/fo/')) === JSON.stringify(valuesOf(dump, '/fo/')) &&
            client.sequence === dump.sequence
          );
        },
        15_000,
        'the replica to equal the backup',
      ).catch((error: Error) => {
        throw new Error(
          `${error.message}\nclient ${client.sequence} ${JSON.stringify(valuesOfClient(client, '/fo/'))}\nbackup ${JSON.stringify(dump)}\nclient log ${JSON.stringify(events).slice(0, 3000)}`,
        );
      });
      expect(valuesOfClient(client, '/fo/')).to.deep.equal({
        '/fo/after': 'on the backup',
        '/fo/during': 'in the gap',
        '/fo/k1': 'v1',
        '/fo/k2': 'v2',
        '/fo/k3': 'v3',
        '/fo/k4': 'v4',
      });
      expect(pair.backup.exited).to.equal(false);
      expectNoAbort(pair);
    });
  });
}

describe('the twinstar CLI against a strict Model Six pair (pyzmq)', function () {
  this.timeout(90_000);
  let pair: StrictPair;

  before(async function () {
    requirePython(this);
    pair = await startStrictPair(1000);
  });

  after(async function () {
    await pair?.stop();
  });

  async function cli(args: string[]): Promise<Run> {
    return run(process.execPath, [BIN, ...args, '--servers', pair.servers.join(','), '--timeout', '10000']);
  }

  it('`twinstar set --mode chp KEY VALUE` delivers the write before it exits, and `get` reads it', async function () {
    const set = await cli(['set', '--mode', 'chp', '/cli/chp', 'written by the CLI']);
    expect(set.code, `twinstar set exited ${set.code}: ${set.stderr}`).to.equal(0);
    await waitFor(
      async () => (await pair.primary.dump()).entries['/cli/chp']?.value === 'written by the CLI',
      10_000,
      `/cli/chp on the strict active (twinstar set printed ${JSON.stringify(set.stdout)}, ${JSON.stringify(set.stderr)})`,
    );
    const get = await cli(['get', '--mode', 'chp', '/cli/chp']);
    expect(get.code, get.stderr).to.equal(0);
    expect(get.stdout).to.equal('written by the CLI'); // raw bytes, no newline off a terminal
    expectNoAbort(pair);
  });

  it('`twinstar set KEY VALUE` (default mode auto) delivers the write without killing the servers', async function () {
    const set = await cli(['set', '/cli/auto', 'auto mode']);
    expect(set.code, `twinstar set exited ${set.code}: ${set.stderr}\n${pair.primary.describe()}`).to.equal(
      0,
    );
    expectNoAbort(pair);
    await waitFor(
      async () => (await pair.primary.dump()).entries['/cli/auto']?.value === 'auto mode',
      10_000,
      `/cli/auto on the strict active (twinstar set printed ${JSON.stringify(set.stdout)}, ${JSON.stringify(set.stderr)})`,
    );
    expectNoAbort(pair);
  });
});
