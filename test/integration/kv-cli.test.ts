/**
 * The etcdctl-grade commands of issue 17 as a user runs them: real `twinstar` processes against a
 * real single server. `endpoint` finds the HTTP port from the server's HUGZ; `get` shows
 * revisions and TTLs. Every error path checks its exit code (etcdctl's: 1 failed, 128 bad usage).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { connect } from '../../src/index.js';
import { freePorts, startSingle, type ServerProcess } from '../helpers/index.js';
import { describeRun, runCli } from '../helpers/cli.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** The non-empty lines of an output. */
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

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
      const port = await freePorts(8);
      server = startSingle(port, port + 3);
      dead = `tcp://127.0.0.1:${port + 4}`; // nothing listens there
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

  describe('endpoint against a server that does not advertise HTTP', () => {
    let server: ServerProcess;
    before(async () => {
      const port = await freePorts(4);
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
      const port = await freePorts(4);
      server = startSingle(port, port + 3);
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
});
