/**
 * `twinstar pub` and `twinstar sub` against a real server (issue 16, "CLI"): what a user types,
 * what it prints, how it exits.
 */
import { expect } from 'chai';
import { freePorts, startSingle, waitFor, type ServerProcess } from '../helpers/index.js';
import { describeRun, runCli } from '../helpers/cli.js';

describe('twinstar pub and sub (real processes)', function () {
  this.timeout(60_000);
  let server: ServerProcess;
  let servers: string[];
  before(async () => {
    const port = await freePorts(6);
    server = startSingle(port, port + 5, ['--heartbeat-port', String(port + 4)]);
    await server.ready('ACTIVE');
    servers = ['--servers', server.endpoint];
  });
  after(() => server.kill());

  it('pub prints the sequence; sub --from first prints the events as JSON lines and exits after --count', async () => {
    const one = await runCli(['pub', 'cli.orders.created', 'first', '--header', 'id=1,src=cli', ...servers]);
    expect(one.code, describeRun(one)).to.equal(0);
    const seq = Number(one.stdout.toString().trim());
    expect(Number.isSafeInteger(seq) && seq > 0, describeRun(one)).to.equal(true);
    const two = await runCli(['pub', 'cli.orders.paid', '-', ...servers], {
      stdin: Buffer.from('from stdin'),
    });
    expect(two.code, describeRun(two)).to.equal(0);

    const sub = await runCli(['sub', 'cli.orders.*', '--from', 'first', '--count', '2', ...servers]);
    expect(sub.code, describeRun(sub)).to.equal(0);
    const lines = sub.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).to.deep.equal([
      { topic: 'cli.orders.created', data: 'first', headers: { id: '1', src: 'cli' }, seq, deliveries: 1 },
      {
        topic: 'cli.orders.paid',
        data: 'from stdin',
        headers: {},
        seq: Number(two.stdout.toString()),
        deliveries: 1,
      },
    ]);
  });

  it('sub --group --ack: joins the group, gets the next event, acks it and exits', async () => {
    const sequence = async () =>
      ((await (await fetch(`${server.http}/status`)).json()) as { sequence: number }).sequence;
    const before = await sequence();
    const member = runCli(['sub', 'cli.jobs', '--group', 'cliworkers', '--ack', '--count', '1', ...servers]);
    // The group starts at its cursor ('new'): publish once the server has sequenced the group's
    // creation and the member's join (two entries on the log).
    await waitFor(
      async () => (await sequence()) >= before + 2,
      20_000,
      'the group and its member on the log',
    );
    const pub = await runCli(['pub', 'cli.jobs', 'job-1', ...servers]);
    expect(pub.code, describeRun(pub)).to.equal(0);
    const got = await member;
    expect(got.code, describeRun(got)).to.equal(0);
    const line = JSON.parse(got.stdout.toString()) as { data: string; deliveries: number; seq: number };
    expect(line).to.include({ data: 'job-1', deliveries: 1, seq: Number(pub.stdout.toString()) });
  });

  it('bad usage exits 128 with one line, and so does a topic with a wildcard (refused before anything is sent)', async () => {
    const usage = await runCli(['sub', 'a.b', '--group', 'g', '--from', 'first', ...servers]);
    expect(usage.code, describeRun(usage)).to.equal(128);
    expect(usage.stderr).to.contain('--from is for a subscriber without a group');
    const bad = await runCli(['pub', 'orders.*', 'x', ...servers]);
    expect(bad.code, describeRun(bad)).to.equal(128);
    expect(bad.stderr).to.match(/wildcard/);
  });
});
