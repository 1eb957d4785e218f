/**
 * The sequenced key-value map (src/kv/kvmap.ts): CHP delete semantics, subtrees, point-in-time
 * snapshots and the TTL heap with lazy invalidation and compaction.
 */
import { expect } from 'chai';
import fc from 'fast-check';
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

    it('clear() empties entries and deadlines', () => {
      const map = new KvMap();
      map.put(entry('/a', '1', 100));
      map.clear();
      expect(map.size).to.equal(0);
      expect(map.nextDeadline()).to.equal(undefined);
      expect(map.expired(1e12)).to.deep.equal([]);
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

  describe('TTL', () => {
    it('expired(now) returns entries only once due (deadline <= now), in deadline order', () => {
      const map = new KvMap();
      map.put(entry('/c', 'c', 300));
      map.put(entry('/a', 'a', 100));
      map.put(entry('/none', 'x'));
      map.put(entry('/b', 'b', 200));
      expect(map.expired(99)).to.deep.equal([]);
      expect(keys(map.expired(100))).to.deep.equal(['/a']);
      expect(keys(map.expired(1000))).to.deep.equal(['/b', '/c']);
      expect(map.expired(1e15)).to.deep.equal([]);
    });

    it('expired entries stay in the map (the caller turns them into sequenced deletes)', () => {
      const map = new KvMap();
      map.put(entry('/a', 'a', 10));
      expect(keys(map.expired(10))).to.deep.equal(['/a']);
      expect(map.get('/a')!.body.toString()).to.equal('a');
      expect(map.expired(20)).to.deep.equal([], 'an entry is reported once');
    });

    it('expired(now, max) returns at most max entries and leaves the rest for later', () => {
      const map = new KvMap();
      for (let i = 0; i < 5; i++) map.put(entry(`/k${i}`, 'v', 10 + i));
      expect(keys(map.expired(100, 2))).to.deep.equal(['/k0', '/k1']);
      expect(keys(map.expired(100))).to.deep.equal(['/k2', '/k3', '/k4']);
    });

    it('a key overwritten without a TTL is not expired by its old deadline', () => {
      const map = new KvMap();
      map.put(entry('/a', 'v1', 100));
      map.put(entry('/a', 'v2'));
      expect(map.expired(1e12)).to.deep.equal([]);
      expect(map.nextDeadline()).to.equal(undefined);
    });

    it('a key re-set with a new TTL expires at its new deadline only', () => {
      const map = new KvMap();
      map.put(entry('/later', 'v1', 100));
      map.put(entry('/later', 'v2', 500));
      map.put(entry('/sooner', 'v1', 500));
      map.put(entry('/sooner', 'v2', 50));
      expect(keys(map.expired(60))).to.deep.equal(['/sooner']);
      expect(map.expired(499)).to.deep.equal([]);
      const [gone] = map.expired(500);
      expect(gone!.key).to.equal('/later');
      expect(gone!.body.toString()).to.equal('v2');
    });

    it('deleted keys never come back from expired()', () => {
      const map = new KvMap();
      map.put(entry('/a', 'v', 100));
      map.put(entry('/b', 'v', 100));
      map.put(del('/a'));
      expect(keys(map.expired(1000))).to.deep.equal(['/b']);
      map.put(entry('/a', 'again')); // re-created without TTL
      expect(map.expired(1e12)).to.deep.equal([]);
    });

    it('nextDeadline() is the earliest live deadline, skipping superseded ones', () => {
      const map = new KvMap();
      expect(map.nextDeadline()).to.equal(undefined);
      map.put(entry('/a', 'v', 300));
      map.put(entry('/b', 'v', 100));
      expect(map.nextDeadline()).to.equal(100);
      map.put(del('/b'));
      expect(map.nextDeadline()).to.equal(300);
      map.put(entry('/a', 'v', 0));
      expect(map.nextDeadline()).to.equal(undefined);
    });

    it('fast-check: expired() agrees with a naive model under random puts, deletes and expiry sweeps', () => {
      type Op =
        | { kind: 'put'; key: number; ttl: number }
        | { kind: 'del'; key: number }
        | { kind: 'sweep'; advance: number };
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        fc.record({
          kind: fc.constant('put' as const),
          key: fc.nat(5),
          ttl: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50 })),
        }),
        fc.record({ kind: fc.constant('del' as const), key: fc.nat(5) }),
        fc.record({ kind: fc.constant('sweep' as const), advance: fc.nat(30) }),
      );
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
          const map = new KvMap();
          const model = new Map<string, Entry>();
          let now = 0;
          let seq = 0;
          for (const op of ops) {
            if (op.kind === 'put') {
              const e = entry(`/k${op.key}`, `v${seq}`, op.ttl === 0 ? 0 : now + op.ttl, ++seq);
              map.put(e);
              model.set(e.key, e);
            } else if (op.kind === 'del') {
              map.put(entry(`/k${op.key}`, '', 0, ++seq));
              model.delete(`/k${op.key}`);
            } else {
              now += op.advance;
              const due = [...model.values()].filter((e) => e.expiresAt > 0 && e.expiresAt <= now);
              const got = map.expired(now);
              // deadline order (ties in any order), exactly the due ones, each the current entry
              expect(got.map((e) => e.expiresAt)).to.deep.equal(
                [...got.map((e) => e.expiresAt)].sort((a, b) => a - b),
              );
              expect(got.map((e) => e.sequence).sort()).to.deep.equal(due.map((e) => e.sequence).sort());
              for (const e of got) model.delete(e.key); // the caller deletes what expired
              for (const e of got) map.put(entry(e.key, '', 0, ++seq));
            }
            const live = [...model.values()].filter((e) => e.expiresAt > 0).map((e) => e.expiresAt);
            expect(map.nextDeadline()).to.equal(live.length === 0 ? undefined : Math.min(...live));
          }
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('heap compaction', () => {
    it('100k TTL re-sets on a few keys: expired() stays exact and fast, the heap stays proportional', () => {
      const map = new KvMap();
      const KEYS = 8;
      const N = 100_000;
      const started = process.hrtime.bigint();
      for (let i = 0; i < N; i++) map.put(entry(`/k${i % KEYS}`, 'v', 1_000 + i, i + 1));
      // the last write of each key sets its deadline to 1000 + index
      const last = Array.from({ length: KEYS }, (_, k) => N - KEYS + k);
      expect(map.nextDeadline()).to.equal(1_000 + last[0]!);
      expect(map.expired(1_000 + last[0]! - 1)).to.deep.equal([], 'no superseded deadline fires');
      const due = map.expired(1e12);
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      expect(due.map((e) => e.sequence)).to.deep.equal(last.map((i) => i + 1));
      expect(map.nextDeadline()).to.equal(undefined);
      // Superseded heap items must be compacted away, not pile up with every write. The bound in
      // kvmap.ts is 2 * size + 1024; reading the private heap is the one direct way to see it.
      const heap = (map as unknown as { deadlines: unknown[] }).deadlines;
      expect(heap.length).to.be.at.most(2 * KEYS + 1024 + 1);
      expect(elapsedMs).to.be.below(2_000);
    });

    it('a passive that never sweeps keeps its heap bounded while deletes churn keys', () => {
      const map = new KvMap();
      for (let i = 0; i < 50_000; i++) {
        map.put(entry(`/k${i % 3}`, 'v', 10 + i, 2 * i + 1));
        map.put(entry(`/k${i % 3}`, '', 0, 2 * i + 2));
      }
      map.put(entry('/keep', 'v', 5, 200_000));
      expect((map as unknown as { deadlines: unknown[] }).deadlines.length).to.be.at.most(
        2 * map.size + 1024 + 1,
      );
      expect(keys(map.expired(1e12))).to.deep.equal(['/keep']);
    });
  });
});
