/**
 * Read-your-writes on a real pair: once set() or delete() resolves, the same client's get() sees
 * that write (or something newer). Before the fix, acknowledgements (snapshot socket) overtook the
 * updates (publisher): 1 in 200 sequential set-then-get read the old value, and with 2,000
 * concurrent writes the replica was at sequence 714 when every acknowledgement had resolved.
 */
import { expect } from 'chai';
import { connect, type Client } from '../../src/index.js';
import { pairOptions, pairPorts, ServerProcess, waitFor, within } from '../helpers/index.js';

describe('read-your-writes against a real pair', function () {
  this.timeout(120_000);
  let primary: ServerProcess;
  let backup: ServerProcess;
  const clients: Client[] = [];

  async function client(subtree: string): Promise<Client> {
    const c = await connect({
      servers: [primary.endpoint, backup.endpoint],
      subtree,
      connectTimeoutMs: 15_000,
      writeTimeoutMs: 30_000,
    });
    clients.push(c);
    return c;
  }

  before(async () => {
    const ports = await pairPorts();
    primary = new ServerProcess(pairOptions(ports).primary);
    backup = new ServerProcess(pairOptions(ports).backup);
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 15_000, 'the passive to attach');
  });

  after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all([primary, backup].filter((p) => p !== undefined).map((p) => p.kill()));
  });

  for (const subtree of ['/ryw/', '']) {
    it(`2,000 concurrent sets (subtree ${JSON.stringify(subtree)}): each write, when it resolves, is seen by get(), and the replica is at or past every acknowledged sequence`, async () => {
      const c = await client(subtree);
      const stale: string[] = [];
      let maxAck = 0;
      const writes = Array.from({ length: 2000 }, (_, i) => {
        const key = `/ryw/${subtree === '' ? 'all' : 'sub'}/${i % 500}`;
        const value = `v${i}`;
        return c.set(key, value).then((seq) => {
          maxAck = Math.max(maxAck, seq);
          // Something newer may have replaced it (four writes share each key), never something older.
          const seen = c.get(key);
          const seenIndex = seen === undefined ? -1 : Number(seen.toString().slice(1));
          if (seenIndex < i) stale.push(`${key}: wrote ${value} (seq ${seq}), get() saw ${String(seen)}`);
          if (c.sequence < seq) stale.push(`${key}: replica at ${c.sequence} < acknowledged ${seq}`);
        });
      });
      await within(Promise.all(writes), 90_000, '2,000 writes');
      expect(stale.slice(0, 5), `${stale.length} stale reads`).to.deep.equal([]);
      expect(c.sequence, 'replica sequence once every write resolved').to.be.at.least(maxAck);
      for (let k = 0; k < 500; k++) {
        const key = `/ryw/${subtree === '' ? 'all' : 'sub'}/${k}`;
        expect(c.getString(key), key).to.equal(`v${1500 + k}`);
      }
    });
  }

  it('200 sequential set-then-get and delete-then-get on one key never see an older value', async () => {
    const c = await client('/ryw/seq/');
    const stale: string[] = [];
    for (let i = 0; i < 200; i++) {
      await within(c.set('/ryw/seq/k', `s${i}`), 10_000, `set ${i}`);
      if (c.getString('/ryw/seq/k') !== `s${i}`) stale.push(`set ${i}: ${String(c.getString('/ryw/seq/k'))}`);
      if (i % 20 === 19) {
        await within(c.delete('/ryw/seq/k'), 10_000, `delete ${i}`);
        if (c.get('/ryw/seq/k') !== undefined)
          stale.push(`delete ${i}: ${String(c.getString('/ryw/seq/k'))}`);
      }
    }
    expect(stale, 'stale reads').to.deep.equal([]);
  });
});
