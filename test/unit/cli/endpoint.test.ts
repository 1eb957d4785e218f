/**
 * `twinstar endpoint`'s pure parts: reading the HTTP port from a HUGZ, the etcdctl-style table,
 * the -w check, and the three renderings of health and status, with plain data. The commands
 * against real servers are in test/integration/kv-cli.test.ts.
 */
import { expect } from 'chai';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeStatus } from '../../../src/pair/index.js';
import { encodeHugz, encodeKvMsg } from '../../../src/wire/index.js';
import { httpFromHugz, splitEndpoint } from '../../../src/cli/discover-http.js';
import { renderHealth, renderStatus } from '../../../src/cli/endpoint-command.js';
import { renderTable, writeOutOf } from '../../../src/cli/table.js';
import { UsageError } from '../../../src/cli/args.js';
import { packageVersion } from '../../../src/version.js';

const STATUS: NodeStatus = {
  name: 'primary',
  role: 'primary',
  state: 'ACTIVE',
  epoch: 3,
  term: 'abc123',
  sequence: 42,
  keys: 7,
  degraded: false,
  replicationLag: 0,
  pending: 0,
  peer: { name: 'backup', state: 'PASSIVE', up: true, synced: true, lastHeardMs: 120 } as NodeStatus['peer'],
  peerRefused: null,
  history: 'complete',
  fenced: false,
  unavailable: null,
  endpoints: {
    snapshot: 'tcp://127.0.0.1:5556',
    publisher: 'tcp://127.0.0.1:5557',
    collector: 'tcp://127.0.0.1:5558',
  },
  pid: 1,
  uptimeMs: 1000,
};

describe('cli endpoint: discovery from HUGZ', () => {
  it('reads http= from a twinstar HUGZ as a URL on the endpoint host', () => {
    const frames = encodeHugz(9, 'twinstar=1\nhugz-ms=1000\nhttp=9556\n');
    expect(httpFromHugz(frames, '10.0.0.5')).to.deep.equal({ http: 'http://10.0.0.5:9556' });
  });

  it('a twinstar HUGZ without http= says the node advertises no HTTP port', () => {
    const found = httpFromHugz(encodeHugz(9, 'twinstar=1\nhugz-ms=1000\n'), '127.0.0.1');
    expect(found).to.have.property('error').that.contains('advertises no HTTP port');
  });

  it('a plain CHP HUGZ (no properties) is not a twinstar server', () => {
    const found = httpFromHugz(encodeHugz(9), '127.0.0.1');
    expect(found).to.have.property('error').that.contains('not a twinstar server');
  });

  it('refuses a bad port, a message that is not a HUGZ, and malformed frames', () => {
    expect(httpFromHugz(encodeHugz(1, 'twinstar=1\nhttp=99999\n'), 'h')).to.have.property('error');
    expect(httpFromHugz(encodeHugz(1, 'twinstar=1\nhttp=x\n'), 'h')).to.have.property('error');
    const kvpub = encodeKvMsg({ key: '/a', sequence: 1, uuid: '', properties: '', body: Buffer.from('v') });
    expect(httpFromHugz(kvpub, 'h')).to.have.property('error').that.contains('not a HUGZ');
    expect(httpFromHugz([Buffer.from('HUGZ')], 'h'))
      .to.have.property('error')
      .that.contains('malformed');
  });

  it('splits tcp://HOST:PORT into the host and the publisher (port + 1)', () => {
    expect(splitEndpoint('tcp://127.0.0.1:5556')).to.deep.equal({
      host: '127.0.0.1',
      publisher: 'tcp://127.0.0.1:5557',
    });
    expect(splitEndpoint('tcp://[::1]:7000')).to.deep.equal({ host: '[::1]', publisher: 'tcp://[::1]:7001' });
    expect(splitEndpoint('http://127.0.0.1:5556')).to.equal(undefined);
    expect(splitEndpoint('tcp://127.0.0.1:65535')).to.equal(undefined);
  });
});

describe('cli tables and -w', () => {
  it('renders a bordered table, numbers right-aligned, newlines escaped', () => {
    const out = renderTable(
      ['KEY', 'SEQ'],
      [
        ['/a', '7'],
        ['/bb\nx', '12'],
      ],
      ['SEQ'],
    );
    expect(out).to.equal(
      [
        '+--------+-----+',
        '| KEY    | SEQ |',
        '+--------+-----+',
        '| /a     |   7 |',
        '| /bb\\nx |  12 |',
        '+--------+-----+',
        '',
      ].join('\n'),
    );
  });

  it('-w takes simple, table or json, with a fallback when absent', () => {
    expect(writeOutOf(undefined, 'table')).to.equal('table');
    expect(writeOutOf('json', 'simple')).to.equal('json');
    expect(() => writeOutOf('yaml', 'simple')).to.throw(UsageError, /simple, table or json/);
  });
});

describe('cli endpoint: renderings', () => {
  const ok = { endpoint: 'tcp://127.0.0.1:5556', http: 'http://127.0.0.1:9556', health: true, took: 1.5 };
  const bad = { endpoint: 'tcp://127.0.0.1:5566', health: false, error: 'no HUGZ' };

  it('health simple: healthy lines on stdout, unhealthy ones on stderr', () => {
    const { out, err } = renderHealth([ok, bad], 'simple');
    expect(out).to.equal(
      'tcp://127.0.0.1:5556 is healthy: http://127.0.0.1:9556 answered /healthz: took = 1.5ms\n',
    );
    expect(err).to.equal('tcp://127.0.0.1:5566 is unhealthy: no HUGZ\n');
  });

  it('health table and json carry every endpoint', () => {
    const table = renderHealth([ok, bad], 'table').out;
    expect(table).to.match(
      /\| tcp:\/\/127\.0\.0\.1:5556 \| http:\/\/127\.0\.0\.1:9556 \| true +\| +1\.5ms \|/,
    );
    expect(table).to.match(/\| tcp:\/\/127\.0\.0\.1:5566 \| - +\| false +\| +- \| no HUGZ \|/);
    expect(JSON.parse(renderHealth([ok, bad], 'json').out)).to.deep.equal([ok, bad]);
  });

  it('status shows state, sequence, term, keys, peer and role; a failure names its endpoint', () => {
    const up = { endpoint: 'tcp://127.0.0.1:5556', http: 'http://127.0.0.1:9556', status: STATUS };
    const down = { endpoint: 'tcp://127.0.0.1:5566', error: 'no HUGZ' };
    const simple = renderStatus([up, down], 'simple');
    expect(simple.out).to.equal(
      'tcp://127.0.0.1:5556, http://127.0.0.1:9556, primary, primary, ACTIVE, 42, abc123, 7, backup PASSIVE, -\n',
    );
    expect(simple.err).to.equal('failed to get the status of tcp://127.0.0.1:5566: no HUGZ\n');
    const table = renderStatus([up, down], 'table').out.split('\n');
    expect(table[1]).to.match(
      /ENDPOINT.*HTTP.*NAME.*ROLE.*STATE.*SEQUENCE.*TERM.*KEYS.*PEER.*VERSION.*ERRORS/,
    );
    expect(table[3]).to.match(/primary \| primary \| ACTIVE \| +42 \| abc123 \| +7 \| backup PASSIVE/);
    expect(table[4]).to.contain('no HUGZ');
    expect(JSON.parse(renderStatus([up, down], 'json').out)).to.deep.equal([up, down]);
  });

  it('status shows a version when /status carries one, and problems in ERRORS', () => {
    const status = { ...STATUS, version: '0.2.0', fenced: true, unavailable: 'no-history' } as NodeStatus;
    const row = renderStatus([{ endpoint: 'e', http: 'h', status }], 'table').out.split('\n')[3]!;
    expect(row).to.contain('| 0.2.0 ').and.to.contain('no-history; fenced');
  });
});

describe('cli --version', () => {
  it('is the version in package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(packageVersion()).to.equal(pkg.version);
  });

  it('walks up to the twinstar package.json, skipping others', () => {
    const root = mkdtempSync(join(tmpdir(), 'twinstar-version-'));
    try {
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'twinstar', version: '9.8.7' }));
      mkdirSync(join(root, 'dist', 'src', 'cli'), { recursive: true });
      writeFileSync(join(root, 'dist', 'package.json'), JSON.stringify({ type: 'module' }));
      expect(packageVersion(join(root, 'dist', 'src', 'cli'))).to.equal('9.8.7');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
