/**
 * The key-value state machine (src/core/kv-machine.ts): TTL deadlines with lazy invalidation and
 * compaction, expired keys as deletes for the sequencer, snapshot and restore.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { KvMachine } from '../../../src/core/kv-machine.js';
import type { StateMachine } from '../../../src/core/state-machine.js';
import type { Entry } from '../../../src/kv/kvmap.js';

let nextSeq = 1;
function entry(key: string, body: string, expiresAt = 0, sequence = nextSeq++): Entry {
  return { key, sequence, uuid: '', properties: '', body: Buffer.from(body), expiresAt };
}
const del = (key: string) => entry(key, '');
const keys = (entries: readonly Entry[]) => entries.map((e) => e.key);

describe('KvMachine', () => {
  beforeEach(() => {
    nextSeq = 1;
  });

  describe('as a state machine', () => {
    it('apply stores and deletes like the map; snapshot is the whole map', async () => {
      const machine: StateMachine = new KvMachine();
      machine.apply(entry('/a', '1'), 0);
      machine.apply(entry('/b', '2'), 0);
      machine.apply(del('/a'), 0);
      expect(keys(await machine.snapshot())).to.deep.equal(['/b']);
    });

    it('empty() is a fresh machine; restore() loads entries and their deadlines into it', async () => {
      const machine = new KvMachine();
      machine.apply(entry('/old', 'v', 50));
      const fresh = machine.empty();
      fresh.restore([entry('/x', '1', 300), entry('/y', '2'), del('/z')]);
      expect(keys(await fresh.snapshot()).sort()).to.deep.equal(['/x', '/y']);
      expect(fresh.nextDeadline()).to.equal(300);
      expect(machine.nextDeadline(), 'the original is untouched').to.equal(50);
    });

    it('due(now, max) asks for a delete per expired key, at most max', async () => {
      const machine = new KvMachine();
      for (let i = 0; i < 3; i++) machine.apply(entry(`/k${i}`, 'v', 10 + i));
      const due = machine.due(100, 2);
      expect(due.map((c) => [c.key, c.body.length, c.expiresAt, c.properties])).to.deep.equal([
        ['/k0', 0, 0, ''],
        ['/k1', 0, 0, ''],
      ]);
      expect(keys(await machine.snapshot()), 'the map keeps them until the deletes apply').to.have.length(3);
      expect(machine.due(100, 10).map((c) => c.key)).to.deep.equal(['/k2']);
    });
  });

  describe('TTL', () => {
    it('expired(now) returns entries only once due (deadline <= now), in deadline order', () => {
      const map = new KvMachine();
      map.apply(entry('/c', 'c', 300));
      map.apply(entry('/a', 'a', 100));
      map.apply(entry('/none', 'x'));
      map.apply(entry('/b', 'b', 200));
      expect(map.expired(99)).to.deep.equal([]);
      expect(keys(map.expired(100))).to.deep.equal(['/a']);
      expect(keys(map.expired(1000))).to.deep.equal(['/b', '/c']);
      expect(map.expired(1e15)).to.deep.equal([]);
    });

    it('expired entries stay in the map (the caller turns them into sequenced deletes)', () => {
      const map = new KvMachine();
      map.apply(entry('/a', 'a', 10));
      expect(keys(map.expired(10))).to.deep.equal(['/a']);
      expect(map.map.get('/a')!.body.toString()).to.equal('a');
      expect(map.expired(20)).to.deep.equal([], 'an entry is reported once');
    });

    it('expired(now, max) returns at most max entries and leaves the rest for later', () => {
      const map = new KvMachine();
      for (let i = 0; i < 5; i++) map.apply(entry(`/k${i}`, 'v', 10 + i));
      expect(keys(map.expired(100, 2))).to.deep.equal(['/k0', '/k1']);
      expect(keys(map.expired(100))).to.deep.equal(['/k2', '/k3', '/k4']);
    });

    it('a key overwritten without a TTL is not expired by its old deadline', () => {
      const map = new KvMachine();
      map.apply(entry('/a', 'v1', 100));
      map.apply(entry('/a', 'v2'));
      expect(map.expired(1e12)).to.deep.equal([]);
      expect(map.nextDeadline()).to.equal(undefined);
    });

    it('a key re-set with a new TTL expires at its new deadline only', () => {
      const map = new KvMachine();
      map.apply(entry('/later', 'v1', 100));
      map.apply(entry('/later', 'v2', 500));
      map.apply(entry('/sooner', 'v1', 500));
      map.apply(entry('/sooner', 'v2', 50));
      expect(keys(map.expired(60))).to.deep.equal(['/sooner']);
      expect(map.expired(499)).to.deep.equal([]);
      const [gone] = map.expired(500);
      expect(gone!.key).to.equal('/later');
      expect(gone!.body.toString()).to.equal('v2');
    });

    it('deleted keys never come back from expired()', () => {
      const map = new KvMachine();
      map.apply(entry('/a', 'v', 100));
      map.apply(entry('/b', 'v', 100));
      map.apply(del('/a'));
      expect(keys(map.expired(1000))).to.deep.equal(['/b']);
      map.apply(entry('/a', 'again')); // re-created without TTL
      expect(map.expired(1e12)).to.deep.equal([]);
    });

    it('nextDeadline() is the earliest live deadline, skipping superseded ones', () => {
      const map = new KvMachine();
      expect(map.nextDeadline()).to.equal(undefined);
      map.apply(entry('/a', 'v', 300));
      map.apply(entry('/b', 'v', 100));
      expect(map.nextDeadline()).to.equal(100);
      map.apply(del('/b'));
      expect(map.nextDeadline()).to.equal(300);
      map.apply(entry('/a', 'v', 0));
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
          const map = new KvMachine();
          const model = new Map<string, Entry>();
          let now = 0;
          let seq = 0;
          for (const op of ops) {
            if (op.kind === 'put') {
              const e = entry(`/k${op.key}`, `v${seq}`, op.ttl === 0 ? 0 : now + op.ttl, ++seq);
              map.apply(e);
              model.set(e.key, e);
            } else if (op.kind === 'del') {
              map.apply(entry(`/k${op.key}`, '', 0, ++seq));
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
              for (const e of got) map.apply(entry(e.key, '', 0, ++seq));
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
      const map = new KvMachine();
      const KEYS = 8;
      const N = 100_000;
      const started = process.hrtime.bigint();
      for (let i = 0; i < N; i++) map.apply(entry(`/k${i % KEYS}`, 'v', 1_000 + i, i + 1));
      // the last write of each key sets its deadline to 1000 + index
      const last = Array.from({ length: KEYS }, (_, k) => N - KEYS + k);
      expect(map.nextDeadline()).to.equal(1_000 + last[0]!);
      expect(map.expired(1_000 + last[0]! - 1)).to.deep.equal([], 'no superseded deadline fires');
      const due = map.expired(1e12);
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      expect(due.map((e) => e.sequence)).to.deep.equal(last.map((i) => i + 1));
      expect(map.nextDeadline()).to.equal(undefined);
      // Superseded heap items must be compacted away, not pile up with every write. The bound in
      // deadlines.ts is 2 * size + 1024.
      expect(map.deadlinesHeld).to.be.at.most(2 * KEYS + 1024 + 1);
      expect(elapsedMs).to.be.below(2_000);
    });

    it('a passive that never sweeps keeps its heap bounded while deletes churn keys', () => {
      const map = new KvMachine();
      for (let i = 0; i < 50_000; i++) {
        map.apply(entry(`/k${i % 3}`, 'v', 10 + i, 2 * i + 1));
        map.apply(entry(`/k${i % 3}`, '', 0, 2 * i + 2));
      }
      map.apply(entry('/keep', 'v', 5, 200_000));
      expect(map.deadlinesHeld).to.be.at.most(2 * map.map.size + 1024 + 1);
      expect(keys(map.expired(1e12))).to.deep.equal(['/keep']);
    });
  });
});
