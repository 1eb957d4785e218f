/**
 * The pair says it is no longer degraded only once the passive holds everything that was
 * acknowledged while it did not count (promise 2). The chaos soak lost acknowledged writes when a
 * passive re-attached after catching up to the sequence at the moment it was detached, while
 * writes acknowledged `degraded` after that moment were still on their way to it: `/status` said
 * "not degraded", the test's next fault killed the active, and those writes were gone.
 *
 * Two real nodes on a fake peer link: cut it so the active runs degraded, keep writing through the
 * heal, and check at every poll that whenever the active reports itself not degraded, the passive
 * already holds every write acknowledged `degraded`.
 */
import { expect } from 'chai';
import { waitFor } from '../helpers/index.js';
import { startNode, Wire, write, type Started } from '../helpers/in-process-pair.js';

describe('attachment: not degraded means the passive holds every degraded write', function () {
  this.timeout(30_000);
  let a: Started | undefined;
  let b: Started | undefined;

  afterEach(async () => {
    await a?.node.close();
    await b?.node.close();
  });

  it('after a cut heals under write load, the active reports not degraded only once the passive holds all it acknowledged alone', async () => {
    const wire = new Wire();
    a = await startNode('primary', wire);
    b = await startNode('backup', wire);
    const [primary, backup] = [a, b];
    await waitFor(() => !primary.node.isDegraded() && backup.node.hasHistory(), 5000, 'a healthy pair');

    // A link with latency, as between two hosts: the passive's "synced" heartbeat is 20 ms old
    // when it arrives, and the writes acknowledged meanwhile are still on their way to it.
    wire.latencyMs = 20;
    wire.cut();
    await waitFor(() => primary.node.isDegraded(), 5000, 'the active to run degraded');
    const degradedKeys: string[] = [];
    let stop = false;
    let written = 0;
    const writer = (async () => {
      for (let i = 0; !stop && i < 5000; i++) {
        const [tag, durability] = await write(primary.endpoint, `/w/${i}`);
        expect(tag).to.equal('TACK');
        if (durability === 'degraded') degradedKeys.push(`/w/${i}`);
        written++;
      }
    })();
    await waitFor(() => degradedKeys.length >= 200, 10_000, 'writes acknowledged while degraded');

    let checks = 0;
    let holes = 0;
    const poll = setInterval(() => {
      if (primary.node.isDegraded()) return;
      checks++;
      for (const key of degradedKeys) if (backup.node.store.map.get(key) === undefined) holes++;
    }, 1);
    wire.heal();
    try {
      await waitFor(() => checks >= 50, 10_000, 'the active to report itself attached for a while');
    } finally {
      clearInterval(poll);
      stop = true;
      await writer;
    }
    expect(written).to.be.greaterThan(degradedKeys.length, 'writes continued after the heal');
    expect(holes, 'degraded writes missing on the passive while the active said not degraded').to.equal(0);
  });
});
