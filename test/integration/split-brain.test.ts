/**
 * Promise 3's hardest case: a partition between the two nodes while clients reach both. Each side
 * ends up active; when the partition heals, both fence and exactly one wins (the one that served
 * more since the fork), the other demotes, reports every update it accepted that the winner lacks,
 * and resyncs; its clients converge on the winner with no stale key (promise 4).
 *
 * The nodes run in this process with real client-facing sockets, but the peer link between them
 * is a cable we can cut and mend (messages still go through the real peer codec), which makes the
 * partition deterministic without network namespaces.
 */
import { expect } from 'chai';
import { connect, type Client } from '../../src/index.js';
import { Node } from '../../src/pair/index.js';
import { startNode, Wire } from '../helpers/in-process-pair.js';
import { waitFor, within } from '../helpers/index.js';

describe('split brain: a partition between the nodes, then healing', function () {
  this.timeout(60_000);
  const nodes: Node[] = [];
  const clients: Client[] = [];

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.close()));
  });

  it('resolves the dual active in favour of the side that served more, reports the divergent updates, and the loser and its clients converge on the winner', async () => {
    const cable = new Wire();
    const [pn, bn] = [
      await startNode('primary', cable, { failoverMs: 300 }),
      await startNode('backup', cable, { failoverMs: 300 }),
    ];
    const { node: primary } = pn;
    const { node: backup } = bn;
    nodes.push(primary, backup);
    const divergent: number[] = [];
    primary.on('divergent', (count) => divergent.push(count));
    await waitFor(
      () => primary.state === 'ACTIVE' && backup.state === 'PASSIVE' && !primary.isDegraded(),
      5000,
      'the pair',
    );

    const both = [pn.endpoint, bn.endpoint];
    const a = await connect({ servers: both, subtree: '/sb/', serverTimeoutMs: 300 });
    clients.push(a);
    for (let i = 0; i < 20; i++) await a.set(`/sb/before/${i}`, 'shared');
    await waitFor(() => backup.store.sequence === primary.store.sequence, 5000, 'replication');

    // Partition: the nodes stop hearing each other; clients still reach both.
    cable.cut();
    await waitFor(() => primary.isDegraded(), 5000, 'the primary to notice and run degraded');
    const degraded = await a.set('/sb/during/probe', 'p');
    expect(degraded).to.be.greaterThan(0);
    expect(a.degraded).to.equal(true, 'the client was told its write is acknowledged by one node only');

    // A client that reaches only the backup votes for it: a second active, at a higher epoch.
    const onlyBackup = await connect({ servers: [both[1]!], subtree: '/sb/', serverTimeoutMs: 300 });
    clients.push(onlyBackup);
    expect(backup.state).to.equal('ACTIVE');
    expect(backup.status().epoch).to.be.greaterThan(primary.status().epoch);
    for (let i = 0; i < 20; i++) await onlyBackup.set(`/sb/winner/${i}`, 'w');
    // Meanwhile the primary keeps accepting writes from its own client: fewer (16 with the probe)
    // than the backup's 20, so these will be lost.
    for (let i = 0; i < 15; i++) await a.set(`/sb/during/${i}`, 'lost');
    expect(primary.state).to.equal('ACTIVE');

    // Heal. The backup served more since the fork (20 against 16) and wins; the primary demotes,
    // resyncs, and reports what it had alone.
    const failedOver = new Promise((resolve) => a.once('failover', resolve));
    const resynced = new Promise((resolve) => a.once('resync', resolve));
    cable.heal();
    await waitFor(() => primary.state === 'PASSIVE', 5000, 'the primary to demote');
    expect(backup.state).to.equal('ACTIVE');
    await waitFor(() => !backup.isDegraded(), 5000, 'the loser to resync and attach');
    // reported once the loser has synced from the winner and checked which uuids it holds
    await waitFor(() => divergent.length > 0, 5000, 'the divergence report');
    expect(divergent).to.deep.equal([16], 'the probe and the 15 writes accepted during the partition');
    expect(await primary.digest()).to.deep.equal(await backup.digest());

    // The primary's client converges on the winner: the lost keys are gone, the winner's are there.
    await within(failedOver, 5000, 'the client to fail over to the winner');
    await within(resynced, 5000, 'a full resync (its history forked from the winner)');
    await waitFor(() => a.get('/sb/winner/19') !== undefined, 5000, 'the winner state');
    expect([...a.entries().keys()].filter((k) => k.startsWith('/sb/during/'))).to.deep.equal([]);
    expect(a.entries().size).to.equal(40);
    expect(new Map(a.entries())).to.deep.equal(new Map(onlyBackup.entries()));
  });
});
