/**
 * A restart of both nodes (issue 15) with real processes and real data directories: the node with
 * the newer history serves whatever its role, a node restarted from its data waits to hear its peer
 * before it takes a vote, and the other node rejoins.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { connect } from '../../src/index.js';
import {
  metric,
  pairOptions,
  pairPorts,
  Started,
  type ServerProcess,
  waitFor,
  within,
  type ServerProcessOptions,
} from '../helpers/index.js';

describe('restart of both nodes (real processes, real data directories)', function () {
  this.timeout(180_000);
  const started = new Started();
  const start = (options: ServerProcessOptions) => started.server(options);
  const client = (servers: string[]) => started.client(servers);
  afterEach(() => started.cleanup());

  /** A pair with a data directory each (default fsync mode). */
  async function pairWithData(): Promise<{
    primary: ServerProcess;
    backup: ServerProcess;
    servers: string[];
  }> {
    const root = started.dir('twinstar-restart-');
    const options = pairOptions(await pairPorts());
    const primary = start({ ...options.primary, dataDir: join(root, 'primary') });
    const backup = start({ ...options.backup, dataDir: join(root, 'backup') });
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 20_000, 'the passive to attach');
    return { primary, backup, servers: [primary.endpoint, backup.endpoint] };
  }

  it('the backup was the last active and the primary restarts first: the primary waits for it, and the backup’s newer writes win', async () => {
    const { primary, backup, servers } = await pairWithData();
    const c = await client(servers);
    const acked = new Map<string, number>();
    for (let i = 0; i < 20; i++) acked.set(`/r/first${i}`, await c.set(`/r/first${i}`, `v${i}`));

    // The primary dies; the backup takes over (the client votes) and acknowledges more writes alone.
    await primary.kill();
    await backup.ready('ACTIVE', 20_000);
    for (let i = 0; i < 20; i++) {
      const key = `/r/second${i}`;
      acked.set(key, await within(c.set(key, `v${i}`), 20_000, `the write of ${key}`));
    }
    const last = Math.max(...acked.values());
    await c.close();
    await backup.kill();

    // The primary comes back first, from its older data. It must not serve: it cannot know alone
    // that the backup served after it. A client asking it to serve (a vote) is refused.
    primary.restart();
    const waiting = await primary.ready((s) => s.unavailable === 'peer-unknown', 20_000);
    expect(waiting.state).to.equal('PRIMARY');
    expect(waiting.sequence, 'the primary holds only the first writes').to.be.below(last);
    expect(await metric(primary.http, 'twinstar_unavailable', { reason: 'peer-unknown' })).to.equal(1);
    const early = connect({ servers: [primary.endpoint], connectTimeoutMs: 1_500 });
    const refused = await early.then(
      (x) => (started.track(x), 'connected'),
      (error: Error) => error.name,
    );
    expect(refused, 'a vote to the waiting primary').to.not.equal('connected');
    expect((await primary.status()).state, 'still waiting after a vote').to.equal('PRIMARY');

    // The backup comes back: it holds the newer history and serves; the primary follows it.
    backup.restart();
    const active = await backup.ready('ACTIVE', 20_000);
    await primary.ready('PASSIVE', 20_000);
    expect(active.sequence).to.be.at.least(last);
    const reader = await client(servers);
    await reader.ready(20_000);
    const missing = [...acked.keys()].filter((key) => reader.get(key) === undefined);
    expect(missing, 'acknowledged writes lost').to.deep.equal([]);
    const next = await within(reader.set('/r/after', 'x'), 20_000, 'a write after the restart');
    expect(next, 'no sequence number reused').to.be.above(last);
    await waitFor(
      async () => (await primary.status()).sequence === (await backup.status()).sequence,
      20_000,
      'the primary to catch up as passive',
    );
    const chose = backup.logs((l) => l.msg === 'BACKUP -> ACTIVE');
    expect(chose.map((l) => l.event)).to.deep.equal(['newer-history']);
  });

  it('both nodes SIGKILLed and restarted together, the passive behind: the histories agree, so it resumes from its stored sequence (no snapshot)', async () => {
    const { primary, backup, servers } = await pairWithData();
    const c = await client(servers);
    const acked = new Map<string, number>();
    for (let i = 0; i < 200; i++) acked.set(`/r/k${i}`, await c.set(`/r/k${i}`, `v${i}`));
    // The passive goes first; the primary acknowledges 100 more alone, then dies too.
    await backup.kill();
    const behind = Math.max(...acked.values());
    for (let i = 200; i < 300; i++) acked.set(`/r/k${i}`, await c.set(`/r/k${i}`, `v${i}`));
    await c.close();
    const last = Math.max(...acked.values());
    await primary.kill();

    backup.restart();
    primary.restart();
    await primary.ready('ACTIVE', 20_000);
    await backup.ready('PASSIVE', 20_000);
    await waitFor(async () => (await primary.status()).degraded === false, 20_000, 'the passive to attach');
    const resumed = primary.logs((l) => l.msg === 'the passive resumes from its sequence');
    const snapshots = primary.logs((l) => String(l.msg).startsWith('the passive gets a snapshot'));
    // the first start gave the empty backup a snapshot; the restart must not need one
    expect(snapshots, primary.tail(5)).to.have.length(1);
    expect(resumed.at(-1), primary.tail(5)).to.deep.include({ fromSequence: behind, changes: last - behind });
    const reader = await client(servers);
    await reader.ready(20_000);
    const missing = [...acked.keys()].filter((key) => reader.get(key) === undefined);
    expect(missing).to.deep.equal([]);
    expect(await within(reader.set('/r/after', 'x'), 20_000, 'a write')).to.be.above(last);
  });
});
