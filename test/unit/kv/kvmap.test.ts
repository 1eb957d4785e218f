/**
 * The sequenced key-value map (src/kv/kvmap.ts): CHP delete semantics, subtrees and point-in-time
 * snapshots. TTL scheduling is tested with the key-value machine (test/unit/core/kv-machine.test.ts).
 */
import { expect } from 'chai';
import { KvMap, type Entry } from '../../../src/kv/kvmap.js';

let nextSeq = 1;
function entry(key: string, body: string, expiresAt = 0, sequence = nextSeq++): Entry {
  return { key, sequence, uuid: '', properties: '', body: Buffer.from(body), expiresAt };
}
const del = (key: string) => entry(key, '');
const keys = (entries: readonly Entry[]) => entries.map((e) => e.key);

describe('KvMap', () => {
  beforeEach(() => {
    nextSeq = 1;
  });

  describe('put/get/delete', () => {
    it('stores and returns the latest entry per key', () => {
      const map = new KvMap();
      map.put(entry('/a', '1'));
      map.put(entry('/b', '2'));
      map.put(entry('/a', '3'));
      expect(map.size).to.equal(2);
      expect(map.get('/a')!.body.toString()).to.equal('3');
      expect(map.get('/a')!.sequence).to.equal(3);
      expect(map.get('/b')!.body.toString()).to.equal('2');
      expect(map.get('/c')).to.equal(undefined);
    });

    it('an empty body deletes the key', () => {
      const map = new KvMap();
      map.put(entry('/a', '1'));
      map.put(del('/a'));
      expect(map.get('/a')).to.equal(undefined);
      expect(map.size).to.equal(0);
    });

    it('deleting an absent key is harmless and stores nothing', () => {
      const map = new KvMap();
      map.put(del('/nope'));
      expect(map.size).to.equal(0);
      expect(map.get('/nope')).to.equal(undefined);
    });

    it('clear() empties the map', () => {
      const map = new KvMap();
      map.put(entry('/a', '1', 100));
      map.clear();
      expect(map.size).to.equal(0);
      expect(map.get('/a')).to.equal(undefined);
      expect(map.snapshot('')).to.deep.equal([]);
    });

    it("keeps an entry with a TTL as is: expiry is the key-value machine's business", () => {
      const map = new KvMap();
      map.put(entry('/a', '1', 100));
      expect(map.get('/a')!.expiresAt).to.equal(100);
    });
  });

  describe('subtrees and snapshots', () => {
    it('subtree(prefix) yields only keys under the prefix; "" yields all', () => {
      const map = new KvMap();
      for (const k of ['/orders/1', '/orders/2', '/ordersX', '/users/1', 'orders/3']) map.put(entry(k, 'v'));
      expect(keys([...map.subtree('/orders/')]).sort()).to.deep.equal(['/orders/1', '/orders/2']);
      expect(keys([...map.subtree('/orders')]).sort()).to.deep.equal(['/orders/1', '/orders/2', '/ordersX']);
      expect([...map.subtree('')]).to.have.length(5);
      expect([...map.subtree('/none/')]).to.have.length(0);
      expect(keys(map.snapshot('/users/'))).to.deep.equal(['/users/1']);
    });

    it('snapshot() is point-in-time: later puts and deletes do not change the array', () => {
      for (const prefix of ['', '/s/']) {
        const map = new KvMap();
        map.put(entry('/s/a', 'a1'));
        map.put(entry('/s/b', 'b1'));
        const snap = map.snapshot(prefix);
        const before = snap.map((e) => `${e.key}=${e.body.toString()}@${e.sequence}`);
        map.put(entry('/s/a', 'a2'));
        map.put(del('/s/b'));
        map.put(entry('/s/c', 'c1'));
        map.clear();
        expect(
          snap.map((e) => `${e.key}=${e.body.toString()}@${e.sequence}`),
          `prefix ${prefix}`,
        ).to.deep.equal(before);
        expect(snap).to.have.length(2);
      }
    });
  });
});
