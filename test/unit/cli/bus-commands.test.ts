/**
 * `twinstar stream` and `twinstar group`: choosing the ACTIVE node's answer (`chooseActive`),
 * the tables and info pages with plain data, and the commands driven by a fake fetch (no
 * sockets): which node they ask, exit codes, usage errors and an unknown group.
 */
import { expect } from 'chai';
import type { NodeStatus } from '../../../src/pair/index.js';
import type { GroupView, StreamView } from '../../../src/metrics/index.js';
import { chooseActive, formatBytes, formatMs } from '../../../src/cli/bus-query.js';
import { formatGroupInfo, formatGroupList, groupCommand } from '../../../src/cli/group-command.js';
import { formatStreamInfo, formatStreamList, streamCommand } from '../../../src/cli/stream-command.js';

const PRIMARY = 'http://127.0.0.1:9556';
const BACKUP = 'http://127.0.0.1:9566';

function status(name: string, state: NodeStatus['state'], epoch = 1): NodeStatus {
  return {
    name,
    role: name === 'primary' ? 'primary' : 'backup',
    state,
    epoch,
    term: 't',
    sequence: 10,
    keys: 1,
    degraded: false,
    replicationLag: 0,
    pending: 0,
    peer: null,
    peerRefused: null,
    history: 'complete',
    fenced: false,
    unavailable: null,
    endpoints: {} as NodeStatus['endpoints'],
    pid: 1,
    uptimeMs: 1,
  };
}

const BILLING: GroupView = {
  name: 'billing',
  pattern: 'orders.>',
  config: { name: 'billing', ackWaitMs: 30_000, maxDeliver: 5, maxAckPending: 1000, durable: true },
  stats: {
    lag: 1234,
    pending: 3,
    waiting: 1,
    acked: 10_500,
    termed: 2,
    redeliveries: 7,
    deadLetters: 1,
    ignored: 0,
    members: [
      { id: 'svc-1:1', inFlight: 2 },
      { id: 'svc-2:1', inFlight: 1 },
    ],
  },
};

const EMAIL: GroupView = {
  name: 'email',
  pattern: 'orders.created',
  config: { name: 'email', ackWaitMs: 1500, maxDeliver: 3, maxAckPending: 10, durable: false },
  stats: {
    lag: 0,
    pending: 0,
    waiting: 0,
    acked: 0,
    termed: 0,
    redeliveries: 0,
    deadLetters: 0,
    ignored: 0,
    members: [],
  },
};

const STREAMS: StreamView[] = [
  {
    prefix: '',
    rule: { prefix: '' },
    stats: { events: 0, bytes: 0, firstSequence: null, lastSequence: null, dropped: 0 },
  },
  {
    prefix: 'orders',
    rule: { prefix: 'orders', maxEvents: 10_000, maxAgeMs: 3_600_000, maxBytes: 50 * 1024 * 1024 },
    stats: { events: 2500, bytes: 3 * 1024, firstSequence: 17, lastSequence: 2600, dropped: 40 },
  },
];

describe('twinstar stream and group', () => {
  describe('chooseActive', () => {
    it('takes the ACTIVE node, whatever its place in the list', () => {
      const choice = chooseActive([
        { url: PRIMARY, status: status('primary', 'PASSIVE') },
        { url: BACKUP, status: status('backup', 'ACTIVE') },
      ]);
      expect(choice).to.deep.include({ url: BACKUP });
      expect(choice).not.to.have.property('warning');
    });

    it('no ACTIVE node: an error naming what each node said', () => {
      const choice = chooseActive([
        { url: PRIMARY, status: status('primary', 'PASSIVE') },
        { url: BACKUP, error: 'ECONNREFUSED' },
      ]);
      expect(choice).to.deep.equal({
        error: `no ACTIVE node answered (${PRIMARY}: PASSIVE; ${BACKUP}: ECONNREFUSED)`,
      });
    });

    it('two ACTIVE nodes: the higher epoch, with a split-brain warning', () => {
      const choice = chooseActive([
        { url: PRIMARY, status: status('primary', 'ACTIVE', 3) },
        { url: BACKUP, status: status('backup', 'ACTIVE', 4) },
      ]);
      expect(choice).to.deep.include({ url: BACKUP });
      expect((choice as { warning: string }).warning).to.match(/split brain.*backup@127\.0\.0\.1:9566/);
    });
  });

  describe('formatting', () => {
    it('durations and sizes', () => {
      expect([
        formatMs(500),
        formatMs(1500),
        formatMs(30_000),
        formatMs(300_000),
        formatMs(3_600_000),
      ]).to.deep.equal(['500ms', '1500ms', '30s', '5m', '1h']);
      expect([formatBytes(512), formatBytes(1536), formatBytes(50 * 1024 * 1024)]).to.deep.equal([
        '512 B',
        '1.5 KiB',
        '50.0 MiB',
      ]);
    });

    it('group ls: one aligned line per group', () => {
      const lines = formatGroupList([BILLING, EMAIL]).trimEnd().split('\n');
      expect(lines).to.have.length(3);
      expect(lines[0]).to.match(
        /^GROUP\s+PATTERN\s+DURABLE\s+MEMBERS\s+LAG\s+PENDING\s+WAITING\s+ACKED\s+REDELIVERED\s+DEAD LETTERS$/,
      );
      expect(lines[1]!.split(/\s{2,}/)).to.deep.equal([
        'billing',
        'orders.>',
        'yes',
        '2',
        '1,234',
        '3',
        '1',
        '10,500',
        '7',
        '1',
      ]);
      expect(lines[2]!.split(/\s{2,}/)).to.deep.equal([
        'email',
        'orders.created',
        'no',
        '0',
        '0',
        '0',
        '0',
        '0',
        '0',
        '0',
      ]);
      // columns line up: every row starts its PATTERN at the header's column
      const at = lines[0]!.indexOf('PATTERN');
      for (const line of lines.slice(1)) expect(line[at - 1]).to.equal(' ');
      expect(lines[1]!.slice(at).startsWith('orders.>')).to.equal(true);
      expect(formatGroupList([])).to.equal('No consumer groups.\n');
    });

    it('group info: settings, state and each member with its events in flight', () => {
      const text = formatGroupInfo(BILLING, 'primary@127.0.0.1:9556');
      expect(text).to.match(/^Group billing on primary@127\.0\.0\.1:9556\n/);
      expect(text).to.match(/^ {2}Pattern: +orders\.>$/m);
      expect(text).to.match(/^ {2}Ack wait: +30s$/m);
      expect(text).to.match(/^ {2}Max deliver: +5$/m);
      expect(text).to.match(/^ {2}Max ack pending: +1,000 per member$/m);
      expect(text).to.match(/^ {2}Lag: +1,234 /m);
      expect(text).to.match(/^ {2}Pending: +3 /m);
      expect(text).to.match(/^ {2}Waiting: +1 /m);
      expect(text).to.match(/^ {2}Acked: +10,500$/m);
      expect(text).to.match(/^ {2}Redeliveries: +7$/m);
      expect(text).to.match(/^ {2}Dead letters: +1 \(sent to \$dlq\.billing\)$/m);
      expect(text).to.match(/^Members \(2\):\n {2}MEMBER +IN FLIGHT\n {2}svc-1:1 +2\n {2}svc-2:1 +1\n$/m);
      expect(formatGroupInfo(EMAIL)).to.match(/^Members \(0\):\n {2}none\n$/m);
    });

    it('stream ls and info: the default rule shown as quotes, limits and state', () => {
      const lines = formatStreamList(STREAMS).trimEnd().split('\n');
      expect(lines[0]).to.match(
        /^PREFIX\s+EVENTS\s+BYTES\s+FIRST\s+LAST\s+DROPPED\s+MAX EVENTS\s+MAX AGE\s+MAX BYTES$/,
      );
      expect(lines[1]!.split(/\s{2,}/)).to.deep.equal(["''", '0', '0 B', '-', '-', '0', '-', '-', '-']);
      expect(lines[2]!.split(/\s{2,}/)).to.deep.equal([
        'orders',
        '2,500',
        '3.0 KiB',
        '17',
        '2600',
        '40',
        '10,000',
        '1h',
        '50.0 MiB',
      ]);
      const info = formatStreamInfo(STREAMS[1]!);
      expect(info).to.match(/^ {2}Max age: +1h$/m);
      expect(info).to.match(/^ {2}First sequence: +17$/m);
      expect(info).to.match(/^ {2}Dropped: +40 /m);
      expect(formatStreamInfo(STREAMS[0]!)).to.match(/^ {2}Max events: +unlimited$/m);
    });
  });

  describe('the commands (fake fetch)', () => {
    type Answer = { code?: number; body: unknown } | 'down';

    async function run(
      command: typeof groupCommand,
      args: string[],
      answers: Record<string, Answer>,
    ): Promise<{ code: number; out: string; err: string; asked: string[] }> {
      const asked: string[] = [];
      const fakeFetch = async (input: string | URL | Request): Promise<Response> => {
        const url = String(input);
        asked.push(url);
        const answer = answers[url];
        if (answer === undefined || answer === 'down')
          throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
        return new Response(JSON.stringify(answer.body), {
          status: answer.code ?? 200,
          headers: { 'content-type': 'application/json' },
        });
      };
      let out = '';
      let err = '';
      const code = await command(args, {
        fetch: fakeFetch as typeof fetch,
        stdout: (t) => (out += t),
        stderr: (t) => (err += t),
      });
      return { code, out, err, asked };
    }

    const pair = (extra: Record<string, Answer>): Record<string, Answer> => ({
      [`${PRIMARY}/status`]: { body: status('primary', 'PASSIVE') },
      [`${BACKUP}/status`]: { body: status('backup', 'ACTIVE', 2) },
      ...extra,
    });

    it("group ls prints the ACTIVE node's groups and never asks the passive for them", async () => {
      const r = await run(groupCommand, ['ls'], pair({ [`${BACKUP}/groups`]: { body: [BILLING, EMAIL] } }));
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.equal(formatGroupList([BILLING, EMAIL]));
      expect(r.asked).to.include(`${BACKUP}/groups`);
      expect(r.asked).not.to.include(`${PRIMARY}/groups`);
    });

    it('group info NAME: the info page with the source node; --json the raw answer', async () => {
      const answers = pair({ [`${BACKUP}/groups/billing`]: { body: BILLING } });
      const r = await run(groupCommand, ['info', 'billing'], answers);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.equal(formatGroupInfo(BILLING, 'backup@127.0.0.1:9566'));
      const j = await run(groupCommand, ['info', 'billing', '--json'], answers);
      expect(JSON.parse(j.out)).to.deep.equal(BILLING);
    });

    it('an unknown group: exit 1 and one clear line', async () => {
      const r = await run(
        groupCommand,
        ['info', 'nope'],
        pair({ [`${BACKUP}/groups/nope`]: { code: 404, body: { error: 'no group named "nope"' } } }),
      );
      expect(r.code).to.equal(1);
      expect(r.out).to.equal('');
      expect(r.err).to.equal('twinstar group: no group named "nope" on backup@127.0.0.1:9566\n');
    });

    it('no ACTIVE node: exit 1 naming each node', async () => {
      const r = await run(groupCommand, ['ls', '--nodes', `${PRIMARY},${BACKUP}`], {
        [`${PRIMARY}/status`]: { body: status('primary', 'PASSIVE') },
        [`${BACKUP}/status`]: 'down',
      });
      expect(r.code).to.equal(1);
      expect(r.err).to.equal(
        `twinstar group: no ACTIVE node answered (${PRIMARY}: PASSIVE; ${BACKUP}: ECONNREFUSED)\n`,
      );
      expect(r.asked.some((u) => u.endsWith('/groups'))).to.equal(false);
    });

    it('bad usage exits 2 with the help', async () => {
      for (const args of [[], ['rm'], ['info'], ['ls', 'extra'], ['ls', '--bogus'], ['ls', '--nodes', ',']]) {
        const r = await run(groupCommand, args, {});
        expect(r.code, args.join(' ')).to.equal(2);
        expect(r.err, args.join(' ')).to.include('Usage: twinstar group');
        expect(r.asked, args.join(' ')).to.deep.equal([]);
      }
      for (const args of [[], ['info'], ['ls', 'x']]) {
        const r = await run(streamCommand, args, {});
        expect(r.code, args.join(' ')).to.equal(2);
        expect(r.err).to.include('Usage: twinstar stream');
      }
    });

    it("stream ls and info read the ACTIVE node's /streams; an unknown prefix exits 1", async () => {
      const answers = pair({ [`${BACKUP}/streams`]: { body: STREAMS } });
      const ls = await run(streamCommand, ['ls'], answers);
      expect(ls.code, ls.err).to.equal(0);
      expect(ls.out).to.equal(formatStreamList(STREAMS));
      const info = await run(streamCommand, ['info', 'orders'], answers);
      expect(info.code, info.err).to.equal(0);
      expect(info.out).to.equal(formatStreamInfo(STREAMS[1]!, 'backup@127.0.0.1:9566'));
      const all = await run(streamCommand, ['info', ''], answers);
      expect(all.out).to.equal(formatStreamInfo(STREAMS[0]!, 'backup@127.0.0.1:9566'));
      const none = await run(streamCommand, ['info', 'metrics'], answers);
      expect(none.code).to.equal(1);
      expect(none.err).to.equal(
        "twinstar stream: no retention rule for prefix metrics (rules: '', orders)\n",
      );
    });
  });
});
