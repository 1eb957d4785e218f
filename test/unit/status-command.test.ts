/**
 * `twinstar status`: the pure verdict (`judgePair`) over every shape a pair can be in, and the
 * command itself driven by a fake fetch (no sockets): table, JSON, exit codes, usage errors and
 * the per-node timeout.
 */
import { expect } from 'chai';
import type { NodeStatus, PeerStatus } from '../../src/pair/index.js';
import {
  formatAge,
  formatTable,
  judgePair,
  normaliseNodeUrl,
  statusCommand,
  type NodeProbe,
} from '../../src/cli/status-command.js';

const PRIMARY_URL = 'http://127.0.0.1:9556';
const BACKUP_URL = 'http://127.0.0.1:9566';

function peer(overrides: Partial<PeerStatus> = {}): PeerStatus {
  return {
    name: 'backup',
    state: 'PASSIVE',
    epoch: 1,
    sequence: 42,
    synced: true,
    lastHeardMs: 80,
    up: true,
    ...overrides,
  };
}

function status(overrides: Partial<NodeStatus> = {}): NodeStatus {
  return {
    name: 'primary',
    role: 'primary',
    state: 'ACTIVE',
    epoch: 1,
    term: 't1',
    sequence: 42,
    keys: 7,
    degraded: false,
    replicationLag: 0,
    pending: 0,
    peer: peer(),
    peerRefused: null,
    history: 'complete',
    fenced: false,
    unavailable: null,
    endpoints: {} as NodeStatus['endpoints'],
    pid: 1234,
    uptimeMs: 60_000,
    ...overrides,
  };
}

const primaryActive = () => status();
const backupPassive = (overrides: Partial<NodeStatus> = {}) =>
  status({
    name: 'backup',
    role: 'backup',
    state: 'PASSIVE',
    pid: 1235,
    peer: peer({ name: 'primary', state: 'ACTIVE' }),
    ...overrides,
  });

const ok = (url: string, s: NodeStatus): NodeProbe => ({ url, status: s });
const down = (url: string, error = 'ECONNREFUSED'): NodeProbe => ({ url, error });

describe('judgePair', () => {
  it('is healthy with one ACTIVE that hears its PASSIVE peer', () => {
    const verdict = judgePair([ok(PRIMARY_URL, primaryActive()), ok(BACKUP_URL, backupPassive())]);
    expect(verdict.healthy).to.equal(true);
    expect(verdict.problems).to.deep.equal([]);
    expect(verdict.summary).to.match(/^HEALTHY: primary is ACTIVE, backup is PASSIVE/);
  });

  it('is healthy after a failover: the backup ACTIVE, the restarted primary PASSIVE', () => {
    const verdict = judgePair([
      ok(PRIMARY_URL, status({ state: 'PASSIVE', epoch: 2, peer: peer({ state: 'ACTIVE', epoch: 2 }) })),
      ok(
        BACKUP_URL,
        backupPassive({ state: 'ACTIVE', epoch: 2, peer: peer({ name: 'primary', state: 'PASSIVE' }) }),
      ),
    ]);
    expect(verdict.healthy).to.equal(true);
    expect(verdict.summary).to.match(/^HEALTHY: backup is ACTIVE, primary is PASSIVE/);
  });

  it('is unhealthy with no ACTIVE node', () => {
    const verdict = judgePair([
      ok(PRIMARY_URL, status({ state: 'PRIMARY', peer: peer({ state: 'BACKUP' }) })),
      ok(BACKUP_URL, backupPassive({ state: 'BACKUP', peer: peer({ name: 'primary', state: 'PRIMARY' }) })),
    ]);
    expect(verdict.healthy).to.equal(false);
    expect(verdict.problems).to.deep.equal(['no node is ACTIVE: clients get no service']);
    expect(verdict.summary).to.equal('UNHEALTHY: no node is ACTIVE: clients get no service');
  });

  it('is unhealthy with two ACTIVE nodes', () => {
    const verdict = judgePair([
      ok(PRIMARY_URL, status({ peer: peer({ up: false, lastHeardMs: 9000 }) })),
      ok(BACKUP_URL, backupPassive({ state: 'ACTIVE', epoch: 2 })),
    ]);
    expect(verdict.healthy).to.equal(false);
    expect(verdict.problems.join('\n')).to.match(/2 nodes are ACTIVE \(primary, backup\): split brain/);
  });

  it('is unhealthy when the only ACTIVE it can see reports an ACTIVE peer', () => {
    const verdict = judgePair([
      ok(PRIMARY_URL, status({ peer: peer({ state: 'ACTIVE' }) })),
      down(BACKUP_URL),
    ]);
    expect(verdict.healthy).to.equal(false);
    expect(verdict.problems.join('\n')).to.match(/sees its peer backup as ACTIVE too/);
  });

  it('is unhealthy when the ACTIVE cannot hear its peer', () => {
    const verdict = judgePair([
      ok(PRIMARY_URL, status({ degraded: true, peer: peer({ up: false, lastHeardMs: 4200 }) })),
      ok(BACKUP_URL, backupPassive({ peer: peer({ name: 'primary', state: 'ACTIVE', up: false }) })),
    ]);
    expect(verdict.healthy).to.equal(false);
    expect(verdict.problems.join('\n')).to.match(
      /the active primary cannot hear its peer \(last heard 4\.2s ago\)/,
    );
    expect(verdict.warnings.join('\n')).to.match(/degraded/);
  });

  it('is unhealthy when the ACTIVE has never heard a peer, or refuses it', () => {
    expect(judgePair([ok(PRIMARY_URL, status({ peer: null }))]).problems.join()).to.match(/never heard/);
    const refused = judgePair([
      ok(PRIMARY_URL, status({ peer: peer({ up: false }), peerRefused: 'heartbeatMs differs' })),
    ]);
    expect(refused.healthy).to.equal(false);
    expect(refused.problems.join()).to.match(/refused: heartbeatMs differs/);
  });

  it('is unhealthy when a node is unreachable, even if the other is ACTIVE and fine', () => {
    const verdict = judgePair([
      ok(PRIMARY_URL, primaryActive()),
      down(BACKUP_URL, 'no answer within 2000 ms'),
    ]);
    expect(verdict.healthy).to.equal(false);
    expect(verdict.problems).to.deep.equal([`${BACKUP_URL} is unreachable (no answer within 2000 ms)`]);
  });

  it('is unhealthy when no node answers', () => {
    const verdict = judgePair([down(PRIMARY_URL), down(BACKUP_URL)]);
    expect(verdict.healthy).to.equal(false);
    expect(verdict.problems).to.deep.equal([
      'no node answered',
      `${PRIMARY_URL} is unreachable (ECONNREFUSED)`,
      `${BACKUP_URL} is unreachable (ECONNREFUSED)`,
    ]);
    expect(verdict.summary).to.match(/^UNHEALTHY: no node answered; /);
  });

  it('is unhealthy with nothing to judge', () => {
    expect(judgePair([]).healthy).to.equal(false);
  });

  it('stays healthy but warns while the passive syncs or the ACTIVE is degraded', () => {
    const syncing = judgePair([
      ok(PRIMARY_URL, status({ degraded: true, peer: peer({ synced: false }) })),
      ok(BACKUP_URL, backupPassive()),
    ]);
    expect(syncing.healthy).to.equal(true);
    expect(syncing.warnings.join('\n'))
      .to.match(/still syncing/)
      .and.to.match(/degraded/);
  });

  it('accepts a lone node of role single as healthy, with a warning', () => {
    const verdict = judgePair([ok(PRIMARY_URL, status({ name: 'single', role: 'single', peer: null }))]);
    expect(verdict.healthy).to.equal(true);
    expect(verdict.warnings.join()).to.match(/no standby/);
  });
});

describe('status formatting', () => {
  it('formats ages', () => {
    expect(formatAge(80)).to.equal('80ms');
    expect(formatAge(4200)).to.equal('4.2s');
    expect(formatAge(125_000)).to.equal('2m5s');
    expect(formatAge(-1)).to.equal('-');
    expect(formatAge(Infinity)).to.equal('-');
  });

  it('normalises node URLs', () => {
    expect(normaliseNodeUrl('127.0.0.1:9556')).to.equal('http://127.0.0.1:9556');
    expect(normaliseNodeUrl(' http://primary:9556/ ')).to.equal('http://primary:9556');
    expect(normaliseNodeUrl('https://lb.example/twinstar/a/')).to.equal('https://lb.example/twinstar/a');
    expect(() => normaliseNodeUrl('tcp://127.0.0.1:5556')).to.throw(/not an http URL/);
    expect(() => normaliseNodeUrl('http://')).to.throw();
  });

  it('prints one aligned row per node and DOWN for the unreachable', () => {
    const table = formatTable([ok(PRIMARY_URL, primaryActive()), down(BACKUP_URL)]);
    const lines = table.trimEnd().split('\n');
    expect(lines).to.have.length(3);
    expect(lines[0]).to.match(
      /^NODE\s+ROLE\s+STATE\s+EPOCH\s+SEQUENCE\s+KEYS\s+PEER\s+PEER HEARD\s+LAG\s+DEGRADED\s+PID$/,
    );
    expect(lines[1]!.split(/\s{2,}/)).to.deep.equal([
      'primary@127.0.0.1:9556',
      'primary',
      'ACTIVE',
      '1',
      '42',
      '7',
      'PASSIVE',
      '80ms',
      '0',
      'no',
      '1234',
    ]);
    expect(lines[2]).to.match(/^127\.0\.0\.1:9566\s+-\s+DOWN\b/);
    // columns line up: STATE starts at the same offset on every line
    const at = lines[0]!.indexOf('STATE');
    expect(lines[1]!.slice(at, at + 6)).to.equal('ACTIVE');
    expect(lines[2]!.slice(at, at + 4)).to.equal('DOWN');
  });
});

describe('statusCommand', () => {
  type Answer = NodeStatus | number | 'refuse' | 'hang' | 'junk';

  /** A fetch that answers from a table keyed by URL and records what was asked. */
  function fakeFetch(answers: Record<string, Answer>) {
    const asked: string[] = [];
    const impl = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = String(input);
      asked.push(url);
      const answer = answers[url];
      if (answer === undefined || answer === 'refuse') {
        throw new TypeError('fetch failed', {
          cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        });
      }
      if (answer === 'hang') {
        return new Promise<Response>((_, reject) => {
          const signal = init?.signal;
          if (!signal) return reject(new Error('the command must pass a timeout signal'));
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      }
      if (answer === 'junk') return new Response('{"hello":"world"}', { status: 200 });
      if (typeof answer === 'number') return new Response('nope', { status: answer });
      return new Response(JSON.stringify(answer), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    };
    return { fetch: impl as typeof fetch, asked };
  }

  async function run(args: string[], answers: Record<string, Answer>, timeoutMs = 2000) {
    let out = '';
    let err = '';
    const fake = fakeFetch(answers);
    const code = await statusCommand(args, {
      fetch: fake.fetch,
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
      timeoutMs,
    });
    return { code, out, err, asked: fake.asked };
  }

  const healthy = {
    [`${PRIMARY_URL}/status`]: primaryActive(),
    [`${BACKUP_URL}/status`]: backupPassive(),
  };

  it('asks both default nodes and exits 0 for a healthy pair', async () => {
    const { code, out, asked } = await run([], healthy);
    expect(code).to.equal(0);
    expect(asked).to.have.members([`${PRIMARY_URL}/status`, `${BACKUP_URL}/status`]);
    expect(out).to.match(/^NODE\s+ROLE/);
    expect(out.trimEnd().split('\n').at(-1)).to.match(/^HEALTHY: primary is ACTIVE/);
  });

  it('exits 1 and shows DOWN when a node refuses the connection', async () => {
    const { code, out } = await run([], { [`${PRIMARY_URL}/status`]: primaryActive() });
    expect(code).to.equal(1);
    expect(out).to.match(/127\.0\.0\.1:9566\s+-\s+DOWN/);
    expect(out).to.match(/UNHEALTHY: .*http:\/\/127\.0\.0\.1:9566 is unreachable \(ECONNREFUSED\)/);
  });

  it('gives up on a node that does not answer within the timeout, in parallel', async () => {
    const started = Date.now();
    const { code, out } = await run(
      [],
      { [`${PRIMARY_URL}/status`]: 'hang', [`${BACKUP_URL}/status`]: 'hang' },
      50,
    );
    expect(code).to.equal(1);
    expect(out).to.include('no answer within 50 ms');
    expect(Date.now() - started).to.be.below(1000);
  });

  it('treats HTTP errors and foreign answers as unreachable', async () => {
    const { code, out } = await run(['--nodes', 'a:1,b:2'], {
      'http://a:1/status': 404,
      'http://b:2/status': 'junk',
    });
    expect(code).to.equal(1);
    expect(out).to.include('http://a:1 is unreachable (HTTP 404)');
    expect(out).to.include('http://b:2 is unreachable (answer is not a twinstar /status)');
  });

  it('uses --nodes and prints JSON with --json', async () => {
    const { code, out, asked } = await run(['--nodes', 'http://primary:9556/,backup:9556', '--json'], {
      'http://primary:9556/status': primaryActive(),
      'http://backup:9556/status': status({ name: 'backup', role: 'backup', state: 'ACTIVE', epoch: 2 }),
    });
    expect(code).to.equal(1);
    expect(asked).to.have.members(['http://primary:9556/status', 'http://backup:9556/status']);
    const parsed = JSON.parse(out) as { healthy: boolean; problems: string[]; nodes: NodeProbe[] };
    expect(parsed.healthy).to.equal(false);
    expect(parsed.problems.join()).to.match(/split brain/);
    expect(parsed.nodes.map((n) => n.url)).to.deep.equal(['http://primary:9556', 'http://backup:9556']);
  });

  it('prints usage with --help and exits 0', async () => {
    const { code, out, asked } = await run(['--help'], {});
    expect(code).to.equal(0);
    expect(out).to.match(/^Usage: twinstar status/);
    expect(asked).to.deep.equal([]);
  });

  for (const args of [['--bogus'], ['extra'], ['--nodes'], ['--nodes', ','], ['--nodes', 'tcp://x:1']]) {
    it(`exits 2 for bad usage: ${args.join(' ')}`, async () => {
      const { code, err, asked } = await run(args, healthy);
      expect(code).to.equal(2);
      expect(err)
        .to.match(/^twinstar status: /)
        .and.to.include('Usage: twinstar status');
      expect(asked).to.deep.equal([]);
    });
  }
});
