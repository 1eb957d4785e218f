/**
 * The etcdctl-grade commands of issue 17 as a user runs them: real `twinstar` processes against a
 * real single server. `endpoint` finds the HTTP port from the server's HUGZ; `get` shows
 * revisions and TTLs. Every error path checks its exit code (etcdctl's: 1 failed, 128 bad usage).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from '../../src/index.js';
import {
  BIN,
  freePorts,
  pairOptions,
  pairPorts,
  ServerProcess,
  startSingle,
  waitFor,
  within,
} from '../helpers/index.js';
import { describeRun, runCli } from '../helpers/cli.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** The non-empty lines of an output. */
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** A CLI command that runs until interrupted (watch, lease keep-alive): its output so far. */
function startCli(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(timer));
  return { child, out, exited };
}

describe('twinstar CLI: issue 17 commands (real processes)', function () {
  this.timeout(90_000);

  it('--version and -v print the package version and exit 0', async () => {
    for (const flag of ['--version', '-v']) {
      const r = await runCli([flag]);
      expect(r.code, describeRun(r)).to.equal(0);
      expect(r.stdout.toString()).to.equal(`${VERSION}\n`);
    }
  });

  describe('endpoint', () => {
    let server: ServerProcess;
    let dead: string;
    before(async () => {
      // the server on P..P+3 with HTTP at P+4; a dead endpoint at P+5 (its P+5..P+8 free too)
      const port = await freePorts(9);
      server = startSingle(port, port + 4);
      dead = `tcp://127.0.0.1:${port + 5}`; // nothing listens there
      await server.ready('ACTIVE');
    });
    after(async () => {
      await server.kill();
    });

    it('health finds the HTTP port from the HUGZ and says healthy, exit 0', async () => {
      const r = await runCli(['endpoint', 'health', '--servers', server.endpoint]);
      expect(r.code, describeRun(r)).to.equal(0);
      expect(r.stdout.toString()).to.match(
        new RegExp(`^${server.endpoint} is healthy: ${server.http} answered /healthz: took = [\\d.]+ms\\n$`),
      );
    });

    it('health -w json and -w table, the servers from TWINSTAR_SERVERS', async () => {
      const json = await runCli(['endpoint', 'health', '-w', 'json'], {
        env: { TWINSTAR_SERVERS: server.endpoint },
      });
      expect(json.code, describeRun(json)).to.equal(0);
      const [one] = JSON.parse(json.stdout.toString()) as {
        endpoint: string;
        http: string;
        health: boolean;
      }[];
      expect(one).to.include({ endpoint: server.endpoint, http: server.http, health: true });
      const table = await runCli(['endpoint', 'health', '-w', 'table', '--servers', server.endpoint]);
      expect(table.code, describeRun(table)).to.equal(0);
      expect(table.stdout.toString()).to.match(/\| ENDPOINT +\| HTTP +\| HEALTH \| TOOK +\| ERROR \|/);
      expect(table.stdout.toString()).to.contain(`| ${server.endpoint} | ${server.http} | true `);
    });

    it('health with one endpoint down: the healthy one on stdout, the other on stderr, exit 1', async () => {
      const r = await runCli([
        'endpoint',
        'health',
        '--servers',
        `${server.endpoint},${dead}`,
        '--timeout',
        '1500',
      ]);
      expect(r.code, describeRun(r)).to.equal(1);
      expect(r.stdout.toString()).to.contain(`${server.endpoint} is healthy`);
      expect(lines(r.stderr)).to.deep.equal([
        `${dead} is unhealthy: no HUGZ from its publisher tcp://127.0.0.1:${Number(dead.split(':')[2]) + 1} within 1500 ms`,
        'twinstar endpoint: unhealthy: 1 of 2 endpoints',
      ]);
    });

    it('health through --nodes asks that address directly; an unreachable one exits 1', async () => {
      const ok = await runCli(['endpoint', 'health', '--nodes', server.http]);
      expect(ok.code, describeRun(ok)).to.equal(0);
      expect(ok.stdout.toString()).to.contain(`${server.http} is healthy`);
      const [port] = [Number(dead.split(':')[2])];
      const bad = await runCli(['endpoint', 'health', '--nodes', `127.0.0.1:${port}`, '--timeout', '1500']);
      expect(bad.code, describeRun(bad)).to.equal(1);
      expect(bad.stderr).to.contain(`http://127.0.0.1:${port} is unhealthy: /healthz: ECONNREFUSED`);
    });

    it('status shows the node as /status has it (json), and a table row', async () => {
      const expected = await server.status();
      const r = await runCli(['endpoint', 'status', '-w', 'json', '--servers', server.endpoint]);
      expect(r.code, describeRun(r)).to.equal(0);
      const [one] = JSON.parse(r.stdout.toString()) as { http: string; status: typeof expected }[];
      expect(one!.http).to.equal(server.http);
      expect(one!.status).to.include({
        name: expected.name,
        role: 'single',
        state: 'ACTIVE',
        term: expected.term,
      });
      const table = await runCli(['endpoint', 'status', '-w', 'table', '--servers', server.endpoint]);
      expect(table.code, describeRun(table)).to.equal(0);
      expect(table.stdout.toString()).to.match(/\| single +\| single \| ACTIVE \|/);
    });

    it('status with an endpoint down prints the others and exits 1, naming it', async () => {
      const r = await runCli([
        'endpoint',
        'status',
        '--servers',
        `${server.endpoint},${dead}`,
        '--timeout',
        '1500',
      ]);
      expect(r.code, describeRun(r)).to.equal(1);
      expect(r.stdout.toString()).to.match(
        new RegExp(`^${server.endpoint}, ${server.http}, single, single, ACTIVE, `),
      );
      expect(r.stderr).to.contain(`failed to get the status of ${dead}: no HUGZ`);
    });

    it('bad usage exits 128 with one line: subcommand, -w, --nodes with --servers, an endpoint', async () => {
      for (const args of [
        ['endpoint'],
        ['endpoint', 'members'],
        ['endpoint', 'health', 'extra'],
        ['endpoint', 'health', '-w', 'yaml'],
        ['endpoint', 'status', '--nodes', server.http, '--servers', server.endpoint],
        ['endpoint', 'status', '--servers', 'localhost:5556'],
        ['endpoint', 'status', '--key-file', 'x.key_secret'],
      ]) {
        const r = await runCli(args);
        expect(r.code, `${args.join(' ')}: ${describeRun(r)}`).to.equal(128);
        expect(lines(r.stderr), args.join(' ')).to.have.length(1);
      }
    });
  });

  describe('endpoint against a pair', () => {
    let primary: ServerProcess;
    let backup: ServerProcess;
    before(async () => {
      const opts = pairOptions(await pairPorts());
      primary = new ServerProcess(opts.primary);
      backup = new ServerProcess(opts.backup);
      await primary.ready('ACTIVE', 20_000);
      await backup.ready('PASSIVE', 20_000);
    });
    after(async () => {
      await primary.kill();
      await backup.kill();
    });

    it('status finds both nodes from their HUGZ, the passive too: ACTIVE and PASSIVE', async () => {
      const servers = `${primary.endpoint},${backup.endpoint}`;
      const r = await runCli(['endpoint', 'status', '-w', 'json', '--servers', servers]);
      expect(r.code, describeRun(r)).to.equal(0);
      const nodes = JSON.parse(r.stdout.toString()) as {
        endpoint: string;
        http: string;
        status: { state: string };
      }[];
      expect(nodes.map((n) => [n.endpoint, n.http, n.status.state])).to.deep.equal([
        [primary.endpoint, primary.http, 'ACTIVE'],
        [backup.endpoint, backup.http, 'PASSIVE'],
      ]);
      const health = await runCli(['endpoint', 'health', '--servers', servers]);
      expect(health.code, describeRun(health)).to.equal(0);
      expect(lines(health.stdout.toString())).to.have.length(2);
    });

    // last: it kills the primary
    it('lease keep-alive goes on through a failover of the pair, and the lease with it', async () => {
      const servers = `${primary.endpoint},${backup.endpoint}`;
      const grant = await runCli(['lease', 'grant', '3', '--servers', servers]);
      expect(grant.code, describeRun(grant)).to.equal(0);
      const id = Number(grant.stdout.toString());
      const keep = startCli(['lease', 'keep-alive', String(id), '--servers', servers, '--timeout', '15000']);
      await waitFor(() => lines(keep.out.stdout).length >= 2, 20_000, `keep-alives: ${keep.out.stderr}`);
      await primary.kill();
      await backup.ready('ACTIVE', 20_000);
      const before = lines(keep.out.stdout).length;
      await waitFor(
        () => lines(keep.out.stdout).length >= before + 2,
        30_000,
        `keep-alives to the new active: ${keep.out.stdout}${keep.out.stderr}`,
      );
      expect(keep.child.exitCode, keep.out.stderr).to.equal(null);
      const ls = await runCli(['lease', 'ls', '-w', 'json', '--servers', servers]);
      expect(ls.code, describeRun(ls)).to.equal(0);
      expect(
        (JSON.parse(ls.stdout.toString()) as { leases: { id: number }[] }).leases.map((l) => l.id),
      ).to.include(id);
      keep.child.kill('SIGINT');
      const [code] = await within(keep.exited, 15_000, 'keep-alive to stop on SIGINT');
      expect(code, keep.out.stderr).to.equal(0);
    });
  });

  describe('endpoint against a server that does not advertise HTTP', () => {
    let server: ServerProcess;
    before(async () => {
      const port = await freePorts(5);
      server = startSingle(port, 0);
    });
    after(async () => {
      await server.kill();
    });

    it('health says it advertises no HTTP port and exits 1', async () => {
      const r = await runCli(['endpoint', 'health', '--servers', server.endpoint, '--timeout', '10000']);
      expect(r.code, describeRun(r)).to.equal(1);
      expect(r.stderr).to.contain(`${server.endpoint} is unhealthy: it advertises no HTTP port`);
    });
  });

  describe('get with revisions and TTLs', () => {
    let server: ServerProcess;
    const seqs: Record<string, number> = {};
    const cli = (args: string[]) => runCli([...args, '--servers', server.endpoint]);
    before(async () => {
      const port = await freePorts(5);
      server = startSingle(port, port + 4);
      await server.ready('ACTIVE');
      const client = await connect({ servers: [server.endpoint], subtree: '/g' });
      try {
        seqs['/g/p/a'] = await client.set('/g/p/a', 'one');
        seqs['/g/p/b'] = await client.set('/g/p/b', 'two', { ttl: 300 });
        seqs['/g/p/a'] = await client.set('/g/p/a', 'uno'); // a later revision
        seqs['/g/q'] = await client.set('/g/q', 'outside');
      } finally {
        await client.close();
      }
    });
    after(async () => {
      await server.kill();
    });

    it('--prefix -w json: every key under the prefix with its revision and the TTL left', async () => {
      const r = await cli(['get', '/g/p/', '--prefix', '-w', 'json']);
      expect(r.code, describeRun(r)).to.equal(0);
      const out = JSON.parse(r.stdout.toString()) as {
        sequence: number;
        count: number;
        kvs: { key: string; value: string; seq: number; ttlRemainingMs?: number }[];
      };
      expect(out.count).to.equal(2);
      expect(out.sequence).to.be.at.least(seqs['/g/q']!);
      expect(out.kvs.map((kv) => [kv.key, kv.value, kv.seq])).to.deep.equal([
        ['/g/p/a', 'uno', seqs['/g/p/a']],
        ['/g/p/b', 'two', seqs['/g/p/b']],
      ]);
      expect(out.kvs[0]).to.not.have.property('ttlRemainingMs');
      expect(out.kvs[1]!.ttlRemainingMs).to.be.within(1, 300_000);
    });

    it('--prefix (simple): key and value lines; --keys-only: the keys', async () => {
      const simple = await cli(['get', '/g/p/', '--prefix']);
      expect(simple.code, describeRun(simple)).to.equal(0);
      expect(simple.stdout.toString()).to.equal('/g/p/a\nuno\n/g/p/b\ntwo\n');
      const keys = await cli(['get', '/g/', '--prefix', '--keys-only']);
      expect(keys.code, describeRun(keys)).to.equal(0);
      expect(keys.stdout.toString()).to.equal('/g/p/a\n/g/p/b\n/g/q\n');
    });

    it('-w table: one key, one row, with its SEQ and TTL', async () => {
      const r = await cli(['get', '/g/p/b', '-w', 'table']);
      expect(r.code, describeRun(r)).to.equal(0);
      const rows = lines(r.stdout.toString());
      expect(rows[1]).to.equal('| KEY    | VALUE | SEQ | TTL |');
      expect(rows[3]).to.match(new RegExp(`^\\| /g/p/b \\| two +\\| +${seqs['/g/p/b']} \\| +\\d+ \\|$`));
      expect(rows).to.have.length(5);
    });

    it('a missing key: one line on stderr and exit 1, in every output form', async () => {
      for (const w of [[], ['-w', 'json'], ['-w', 'table']]) {
        const r = await cli(['get', '/g/missing', ...w]);
        expect(r.code, describeRun(r)).to.equal(1);
        expect(r.stdout.length).to.equal(0);
        expect(lines(r.stderr)).to.deep.equal(['twinstar get: key not found: /g/missing']);
      }
    });

    it('a prefix with no keys: nothing, exit 0 (as etcdctl)', async () => {
      const r = await cli(['get', '/g/none/', '--prefix']);
      expect(r.code, describeRun(r)).to.equal(0);
      expect(r.stdout.length).to.equal(0);
    });

    it('bad usage exits 128 with one line', async () => {
      for (const args of [
        ['get'],
        ['get', '/a', '/b'],
        ['get', '/a', '-w', 'yaml'],
        ['get', ''],
        ['get', '/a', '-w'],
      ]) {
        const r = await cli(args);
        expect(r.code, `${args.join(' ')}: ${describeRun(r)}`).to.equal(128);
        expect(lines(r.stderr), args.join(' ')).to.have.length(1);
      }
    });
  });

  describe('conditional writes, delete by prefix, watch from a sequence, leases', () => {
    let server: ServerProcess;
    const cli = (args: string[]) => runCli([...args, '--servers', server.endpoint]);
    const seqOf = async (args: string[]) => {
      const r = await cli(args);
      expect(r.code, describeRun(r)).to.equal(0);
      return Number(r.stdout.toString());
    };
    before(async () => {
      const port = await freePorts(5);
      server = startSingle(port, port + 4);
      await server.ready('ACTIVE');
    });
    after(async () => {
      await server.kill();
    });

    it('set --create writes a new key; on an existing key exits 1 naming its sequence', async () => {
      const seq = await seqOf(['set', '/c/new', 'v1', '--create']);
      expect(seq).to.be.above(0);
      const again = await cli(['set', '/c/new', 'v2', '--create']);
      expect(again.code, describeRun(again)).to.equal(1);
      expect(again.stdout.length).to.equal(0);
      expect(lines(again.stderr)).to.deep.equal([
        `twinstar set: conflict: /c/new already exists, at sequence ${seq}`,
      ]);
      const get = await cli(['get', '/c/new']);
      expect(get.stdout.toString()).to.equal('v1');
    });

    it('set --if-seq N: applied at the key’s sequence; a stale N exits 1 naming the current one', async () => {
      const first = await seqOf(['set', '/c/cas', 'a']);
      const second = await seqOf(['set', '/c/cas', 'b', '--if-seq', String(first)]);
      expect(second).to.be.above(first);
      const stale = await cli(['set', '/c/cas', 'c', '--if-seq', String(first)]);
      expect(stale.code, describeRun(stale)).to.equal(1);
      expect(lines(stale.stderr)).to.deep.equal([
        `twinstar set: conflict: /c/cas is at sequence ${second}, not ${first}`,
      ]);
      const missing = await cli(['set', '/c/absent', 'x', '--if-seq', '5']);
      expect(missing.code, describeRun(missing)).to.equal(1);
      expect(lines(missing.stderr)).to.deep.equal([
        'twinstar set: conflict: /c/absent does not exist, not 5',
      ]);
      expect((await cli(['get', '/c/cas'])).stdout.toString()).to.equal('b');
    });

    it('set: bad conditions are bad usage (128); an unknown lease exits 1', async () => {
      for (const args of [
        ['set', '/c/u', 'v', '--create', '--if-seq', '3'],
        ['set', '/c/u', 'v', '--if-seq', '0'],
        ['set', '/c/u', 'v', '--if-seq', 'abc'],
        ['set', '/c/u', 'v', '--lease', '0'],
        ['get', '/c/u', '--if-seq', '3'],
      ]) {
        const r = await cli(args);
        expect(r.code, `${args.join(' ')}: ${describeRun(r)}`).to.equal(128);
        expect(lines(r.stderr), args.join(' ')).to.have.length(1);
      }
      const r = await cli(['set', '/c/u', 'v', '--lease', '987654321']);
      expect(r.code, describeRun(r)).to.equal(1);
      expect(lines(r.stderr)).to.have.length(1);
      expect(r.stderr).to.contain('ERR_LEASE_NOT_FOUND');
      expect((await cli(['get', '/c/u'])).code).to.equal(1);
    });

    it('del --prefix deletes every key under the prefix as one change and prints how many', async () => {
      for (const k of ['/d/p/a', '/d/p/b', '/d/p/c/d']) await seqOf(['set', k, 'v']);
      await seqOf(['set', '/d/q', 'kept']);
      const r = await cli(['del', '/d/p/', '--prefix']);
      expect(r.code, describeRun(r)).to.equal(0);
      expect(r.stdout.toString()).to.equal('3\n');
      const left = await cli(['get', '/d/', '--prefix', '--keys-only']);
      expect(left.stdout.toString()).to.equal('/d/q\n');
      const none = await cli(['del', '/d/p/', '--prefix']);
      expect(none.code, describeRun(none)).to.equal(1);
      expect(none.stdout.toString()).to.equal('0\n');
    });

    it('del --if-seq: a stale sequence exits 1 naming the current one; the right one deletes', async () => {
      const seq = await seqOf(['set', '/d/cas', 'v']);
      const stale = await cli(['del', '/d/cas', '--if-seq', String(seq - 1)]);
      expect(stale.code, describeRun(stale)).to.equal(1);
      expect(lines(stale.stderr)).to.deep.equal([
        `twinstar del: conflict: /d/cas is at sequence ${seq}, not ${seq - 1}`,
      ]);
      const ok = await cli(['del', '/d/cas', '--if-seq', String(seq)]);
      expect(ok.code, describeRun(ok)).to.equal(0);
      expect(ok.stdout.toString()).to.equal('1\n');
      const bad = await cli(['del', '/d/', '--prefix', '--if-seq', '3']);
      expect(bad.code, describeRun(bad)).to.equal(128);
    });

    it('watch --rev SEQ prints every change from SEQ on (SEQ included), then live ones', async () => {
      const s1 = await seqOf(['set', '/w/a', '1']);
      const s2 = await seqOf(['set', '/w/b', '2']);
      const s3 = await seqOf(['set', '/w/a', '3']);
      const watch = startCli(['watch', '/w/', '--rev', String(s2), '--servers', server.endpoint]);
      const parse = () => lines(watch.out.stdout).map((l) => JSON.parse(l) as { key: string; seq: number });
      await waitFor(
        () => parse().length >= 2,
        20_000,
        `two replayed changes: ${watch.out.stdout}${watch.out.stderr}`,
      );
      const s4 = await seqOf(['set', '/w/c', '4']);
      await waitFor(() => parse().length >= 3, 20_000, `the live change: ${watch.out.stdout}`);
      expect(parse().map((u) => [u.key, u.seq])).to.deep.equal([
        ['/w/b', s2],
        ['/w/a', s3],
        ['/w/c', s4],
      ]);
      expect(parse().some((u) => u.seq === s1)).to.equal(false);
      watch.child.kill('SIGINT');
      const [code] = await within(watch.exited, 15_000, 'watch to stop on SIGINT');
      expect(code, watch.out.stderr).to.equal(0);
    });

    it('watch: --rev 0, --rev with --no-initial, and a non-number are bad usage (128)', async () => {
      for (const args of [
        ['watch', '/w/', '--rev', '0'],
        ['watch', '/w/', '--rev', '2', '--no-initial'],
        ['watch', '--rev', 'x'],
      ]) {
        const r = await cli(args);
        expect(r.code, `${args.join(' ')}: ${describeRun(r)}`).to.equal(128);
      }
    });

    it('lease grant prints the id; set --lease attaches a key; ls shows it; revoke deletes the key', async () => {
      const grant = await cli(['lease', 'grant', '60']);
      expect(grant.code, describeRun(grant)).to.equal(0);
      expect(grant.stdout.toString()).to.match(/^\d+\n$/);
      const id = Number(grant.stdout.toString());
      await seqOf(['set', '/l/k', 'v', '--lease', String(id)]);
      const ls = await cli(['lease', 'ls', '-w', 'json']);
      expect(ls.code, describeRun(ls)).to.equal(0);
      const listed = (
        JSON.parse(ls.stdout.toString()) as { leases: { id: number; ttlMs: number; keys: number }[] }
      ).leases;
      expect(listed.find((l) => l.id === id)).to.include({ ttlMs: 60_000, keys: 1 });
      const simple = await cli(['lease', 'ls']);
      expect(lines(simple.stdout.toString())).to.include(String(id));
      const table = await cli(['get', '/l/k', '-w', 'table']);
      expect(table.stdout.toString()).to.match(new RegExp(`\\| /l/k \\| v +\\| +\\d+ \\| +- \\| ${id} +\\|`));
      const revoke = await cli(['lease', 'revoke', String(id)]);
      expect(revoke.code, describeRun(revoke)).to.equal(0);
      expect(revoke.stdout.toString()).to.equal(`lease ${id} revoked\n`);
      const gone = await cli(['get', '/l/k']);
      expect(gone.code, describeRun(gone)).to.equal(1);
      const again = await cli(['lease', 'revoke', String(id)]);
      expect(again.code, describeRun(again)).to.equal(1);
      expect(lines(again.stderr)).to.deep.equal([
        `twinstar lease: lease ${id} not found (expired or revoked)`,
      ]);
    });

    it('lease keep-alive prints the TTL left at every keep-alive until Ctrl-C; --once does one', async () => {
      const id = Number((await cli(['lease', 'grant', '3'])).stdout.toString());
      const one = await cli(['lease', 'keep-alive', String(id), '--once']);
      expect(one.code, describeRun(one)).to.equal(0);
      expect(one.stdout.toString()).to.equal(`lease ${id} keepalived with TTL(3)\n`);
      const keep = startCli(['lease', 'keep-alive', String(id), '--servers', server.endpoint]);
      await waitFor(
        () => lines(keep.out.stdout).length >= 2,
        20_000,
        `two keep-alives: ${keep.out.stdout}${keep.out.stderr}`,
      );
      for (const line of lines(keep.out.stdout))
        expect(line).to.match(new RegExp(`^lease ${id} keepalived with TTL\\([1-3]\\)$`));
      keep.child.kill('SIGINT');
      const [code] = await within(keep.exited, 15_000, 'keep-alive to stop on SIGINT');
      expect(code, keep.out.stderr).to.equal(0);
    });

    it('lease keep-alive of an unknown lease exits 1; bad usage exits 128', async () => {
      const r = await cli(['lease', 'keep-alive', '987654321', '--once']);
      expect(r.code, describeRun(r)).to.equal(1);
      expect(lines(r.stderr)).to.deep.equal(['twinstar lease: lease 987654321 expired or revoked']);
      for (const args of [
        ['lease'],
        ['lease', 'extend', '1'],
        ['lease', 'grant'],
        ['lease', 'grant', '0.5'],
        ['lease', 'grant', 'ten'],
        ['lease', 'grant', '5', '--once'],
        ['lease', 'revoke'],
        ['lease', 'revoke', 'x'],
        ['lease', 'ls', '-w', 'yaml'],
        ['lease', 'ls', '--mode', 'chp'],
      ]) {
        const u = await cli(args);
        expect(u.code, `${args.join(' ')}: ${describeRun(u)}`).to.equal(128);
        expect(lines(u.stderr), args.join(' ')).to.have.length(1);
      }
    });

    it('lease with no server answering exits 2', async () => {
      const r = await runCli(['lease', 'ls', '--servers', 'tcp://127.0.0.1:1', '--timeout', '500']);
      expect(r.code, describeRun(r)).to.equal(2);
    });
  });

  describe('watch --rev before the history kept', () => {
    let server: ServerProcess;
    before(async () => {
      const port = await freePorts(5);
      server = startSingle(port, port + 4, ['--replay-log-size', '5']);
      await server.ready('ACTIVE');
    });
    after(async () => {
      await server.kill();
    });

    it('says in one line that the history is unavailable (compacted) and exits 1', async () => {
      const client = await connect({ servers: [server.endpoint], subtree: '/h/' });
      try {
        for (let i = 0; i < 20; i++) await client.set(`/h/k${i % 3}`, String(i));
      } finally {
        await client.close();
      }
      const r = await runCli(['watch', '/h/', '--rev', '1', '--servers', server.endpoint]);
      expect(r.code, describeRun(r)).to.equal(1);
      expect(r.stdout.length).to.equal(0);
      const said = lines(r.stderr);
      expect(said, describeRun(r)).to.have.length(1);
      expect(said[0]).to.match(/^twinstar watch: history unavailable \(compacted\)/);
    });
  });
});
