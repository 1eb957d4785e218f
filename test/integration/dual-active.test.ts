/**
 * Two actives meeting, deterministically: two real nodes in this process (real client sockets on
 * loopback) joined by a fake peer channel that the test cuts and heals on cue. Each case makes a
 * dual active on purpose (cut the link, vote for the passive), lets each side serve a chosen number
 * of writes, heals the link, and checks the resolution rule of docs/binary-star.md: both fence, the
 * node that sequenced more changes since the fork wins, and the loser reports only the updates the
 * winner does not hold, marked acknowledged or not. At no poll do both nodes sequence at once.
 */
import { expect } from 'chai';
import { newUuid } from '../../src/core/index.js';
import { waitFor } from '../helpers/index.js';
import { startNode, vote, Wire, write, type Started } from '../helpers/in-process-pair.js';

describe('dual active, resolved by who served more since the fork (two nodes, fake peer link)', function () {
  this.timeout(20_000);
  let wire: Wire;
  let a: Started;
  let b: Started;
  let poll: NodeJS.Timeout | undefined;
  let bothSequencing = 0;
  let polls = 0;

  beforeEach(async () => {
    wire = new Wire();
    a = await startNode('primary', wire);
    b = await startNode('backup', wire);
    await waitFor(
      // not degraded: the active counts the passive (its first write is 'replicated'), which it
      // decides a moment after the passive has the history (seen once in CI under load)
      () =>
        a.node.state === 'ACTIVE' &&
        b.node.state === 'PASSIVE' &&
        b.node.hasHistory() &&
        !a.node.isDegraded(),
      5000,
      'a healthy pair',
    );
    expect(await write(a.endpoint, '/k/before')).to.deep.equal(['TACK', 'replicated']);
    bothSequencing = polls = 0;
    // "Exactly one active" once the nodes hear each other: from the moment each has heard the
    // other after the heal, at no poll may both sequence changes. (During the cut, and until the
    // first heartbeat crosses, both do: that is the dual active being made.)
    poll = setInterval(() => {
      if (!wire.met) return;
      polls++;
      if (a.node.serving() && b.node.serving()) bothSequencing++;
    }, 5);
  });

  afterEach(async () => {
    clearInterval(poll);
    await a?.node.close();
    await b?.node.close();
  });

  /** Cut the link, promote the backup with one vote once it finds the primary silent. */
  async function split(): Promise<void> {
    wire.cut();
    await waitFor(() => !b.node.peerUp(), 3000, 'the backup to find the primary silent');
    await waitFor(async () => (await vote(b.endpoint)) === 'TPONG ACTIVE', 3000, 'the vote to be accepted');
    expect(b.node.state).to.equal('ACTIVE');
    expect(a.node.state).to.equal('ACTIVE');
  }

  async function heal(): Promise<{ winner: Started; loser: Started }> {
    const delivered = wire.delivered;
    wire.heal();
    await waitFor(
      () =>
        (a.node.state === 'PASSIVE') !== (b.node.state === 'PASSIVE') &&
        [a, b].every((n) => n.node.hasHistory() && !n.node.status().fenced),
      8000,
      'the dual active to resolve and the loser to resync',
    );
    expect(wire.delivered, 'the healed link carried messages').to.be.greaterThan(delivered);
    const winner = a.node.state === 'ACTIVE' ? a : b;
    return { winner, loser: winner === a ? b : a };
  }

  function divergenceLine(n: Started): Record<string, unknown> | undefined {
    return n.logs.find((l) => String(l.msg).startsWith('dual active lost'));
  }

  it('the issue case: a passive promoted by a stray vote that served nobody loses; every write of the old active survives', async () => {
    await split();
    for (const k of ['/k/1', '/k/2', '/k/3'])
      expect(await write(a.endpoint, k)).to.deep.equal(['TACK', 'degraded']);
    const { winner, loser } = await heal();
    expect(winner).to.equal(a);
    expect(loser.node.store.map.get('/k/3')?.body.toString()).to.equal('v-/k/3');
    expect(await loser.node.digest()).to.deep.equal(await winner.node.digest());
    // the loser sequenced nothing after the fork: nothing to report, and it says so at info level
    expect(divergenceLine(loser)?.level).to.equal(30);
    expect(divergenceLine(loser)?.msg).to.include('holds every update');
    expect(a.logs.some((l) => String(l.msg).includes('fenced'))).to.equal(true);
    expect(polls, 'polls after the heal').to.be.greaterThan(3);
    expect(bothSequencing, 'polls where both nodes sequenced').to.equal(0);
  });

  it('both served: the side with fewer changes since the fork loses them, and reports each as acknowledged', async () => {
    await split();
    for (const k of ['/a/1', '/a/2', '/a/3'])
      expect(await write(a.endpoint, k)).to.deep.equal(['TACK', 'degraded']);
    expect(await write(b.endpoint, '/b/1')).to.deep.equal(['TACK', 'degraded']);
    const { winner, loser } = await heal();
    expect(winner).to.equal(a);
    const line = divergenceLine(loser)!;
    expect(line.level).to.equal(50);
    expect(line.count).to.equal(1);
    expect(line.acknowledged).to.equal(1);
    expect((line.updates as { key: string; acknowledged: boolean }[])[0]).to.include({
      key: '/b/1',
      acknowledged: true,
    });
    expect(loser.node.store.map.get('/b/1')).to.equal(undefined);
    expect(bothSequencing).to.equal(0);
  });

  it('the promoted node served more: it wins, although the primary was the old active', async () => {
    await split();
    expect(await write(a.endpoint, '/a/1')).to.deep.equal(['TACK', 'degraded']);
    for (const k of ['/b/1', '/b/2']) expect(await write(b.endpoint, k)).to.deep.equal(['TACK', 'degraded']);
    const { winner, loser } = await heal();
    expect(winner).to.equal(b);
    const line = divergenceLine(loser)!;
    expect(line.count).to.equal(1);
    expect((line.updates as { key: string }[])[0]!.key).to.equal('/a/1');
    expect(await loser.node.digest()).to.deep.equal(await winner.node.digest());
    expect(bothSequencing).to.equal(0);
  });

  it('a write the loser applied and a client re-sent to the winner (same uuid) is not reported as lost', async () => {
    await split();
    const uuid = newUuid();
    expect(await write(a.endpoint, '/both', uuid)).to.deep.equal(['TACK', 'degraded']);
    expect(await write(b.endpoint, '/both', uuid)).to.deep.equal(['TACK', 'degraded']);
    expect(await write(b.endpoint, '/b/1')).to.deep.equal(['TACK', 'degraded']);
    const { winner, loser } = await heal();
    expect(winner).to.equal(b);
    expect(divergenceLine(loser)?.level, 'the loser reports nothing lost').to.equal(30);
    expect(loser.node.store.map.get('/both')?.body.toString()).to.equal('v-/both');
    expect(bothSequencing).to.equal(0);
  });
});
