/**
 * The sequenced store (src/core/store.ts): promise 1 (one order, no reuse), de-duplication of
 * retried writes, replication on the passive, the replay log, TTL expiry as sequenced deletes
 * and atomic state replacement at resync.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Store, isDedupeUuid, type Change } from '../../../src/core/store.js';
import type { Entry } from '../../../src/kv/kvmap.js';
import type { PartitionedMap } from '../../../src/kv/partitioned.js';

const OPTIONS = { replayLogSize: 1000, dedupeSize: 1000, dedupeMs: 60_000 };

let uuidCounter = 0;
/** A distinct, non-zero 16-byte uuid as a latin1 string. */
function uuid(n = ++uuidCounter): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0xabcd0000, 0);
  b.writeUInt32BE(n, 12);
  return b.toString('latin1');
}

function change(key: string, body: string, overrides: Partial<Change> = {}): Change {
  return { key, uuid: uuid(), properties: '', body: Buffer.from(body), expiresAt: 0, ...overrides };
}

function committed(store: Store, c: Change, now = 0): Entry {
  const result = store.commit(c, now);
  if (result.duplicate) throw new Error(`unexpected duplicate of ${c.key}`);
  return result.entry;
}

function state(store: Store): string[] {
  return (store.map as PartitionedMap)
    .snapshot('')
    .map(
      (e) =>
        `${e.key}=${e.body.toString('hex')}@${e.sequence}/${e.expiresAt}/${Buffer.from(e.uuid, 'latin1').toString('hex')}`,
    )
    .sort();
}

describe('Store', () => {
  describe('commit', () => {
    it('assigns sequences 1, 2, 3... to successive changes, deletes included', () => {
      const store = new Store(OPTIONS);
      expect(store.sequence).to.equal(0);
      const a = committed(store, change('/a', '1'));
      const b = committed(store, change('/b', '2'));
      const c = committed(store, change('/a', ''));
      const d = committed(store, change('/zzz', '')); // deleting an absent key still takes a number
      expect([a, b, c, d].map((e) => e.sequence)).to.deep.equal([1, 2, 3, 4]);
      expect(store.sequence).to.equal(4);
      expect(store.map.get('/a')).to.equal(undefined);
      expect(store.map.get('/b')!.sequence).to.equal(2);
    });

    it('a duplicate 16-byte uuid returns {duplicate: true, sequence: first} and changes nothing', () => {
      const store = new Store(OPTIONS);
      const id = uuid();
      committed(store, change('/x', 'before'));
      const first = committed(store, change('/a', 'v1', { uuid: id }));
      committed(store, change('/b', 'other'));
      const again = store.commit(change('/a', 'v2', { uuid: id }), 0);
      expect(again).to.deep.equal({ duplicate: true, sequence: first.sequence });
      expect(store.sequence).to.equal(3);
      expect(store.map.get('/a')!.body.toString()).to.equal('v1');
      expect(store.appliedSequence(id, '/a')).to.equal(2);
    });

    it('all-zero, short, long and empty uuids are never de-duplicated', () => {
      for (const id of ['\0'.repeat(16), '', 'abcde', 'x'.repeat(15), 'y'.repeat(17)]) {
        const store = new Store(OPTIONS);
        const r1 = store.commit(change('/a', '1', { uuid: id }), 0);
        const r2 = store.commit(change('/a', '2', { uuid: id }), 0);
        expect(r1.duplicate, JSON.stringify(id)).to.equal(false);
        expect(r2.duplicate, JSON.stringify(id)).to.equal(false);
        expect(store.sequence).to.equal(2);
        expect(store.map.get('/a')!.body.toString()).to.equal('2');
        expect(isDedupeUuid(id)).to.equal(false);
      }
      expect(isDedupeUuid(uuid())).to.equal(true);
    });

    it('remembers a uuid while its entry is current, however long and however many writes follow', () => {
      const store = new Store({ replayLogSize: 10, dedupeSize: 1_000_000, dedupeMs: 30_000 });
      const id = uuid();
      const first = committed(store, change('/k', 'v', { uuid: id }), 1000);
      // 150,000 writes in 1.5 s: more than the old count-based window (100,000) ever held
      for (let i = 0; i < 150_000; i++) committed(store, change(`/n/${i % 100}`, 'v'), 1000 + i / 100);
      const sequence = store.sequence;
      expect(store.commit(change('/k', 'retry', { uuid: id }), 3000)).to.deep.equal({
        duplicate: true,
        sequence: first.sequence,
      });
      expect(store.sequence).to.equal(sequence);
      expect(store.map.get('/k')!.body.toString()).to.equal('v');
      committed(store, change('/other', 'v'), 500_000); // long past dedupeMs: /k still holds its write
      expect(store.appliedSequence(id, '/k')).to.equal(first.sequence);
      expect(store.commit(change('/k', 'late', { uuid: id }), 500_000).duplicate).to.equal(true);
      // A write to another key with the same uuid is no retry of it: the window never held the uuid.
      expect(store.appliedSequence(id, '/elsewhere')).to.equal(undefined);
    });

    it('remembers a uuid for dedupeMs after its entry is replaced or deleted, then forgets it', () => {
      const store = new Store({ replayLogSize: 10, dedupeSize: 1_000_000, dedupeMs: 30_000 });
      const [put, deleted, del] = [uuid(), uuid(), uuid()];
      const first = committed(store, change('/k', 'v', { uuid: put }), 0);
      const second = committed(store, change('/d', 'v', { uuid: deleted }), 0);
      committed(store, change('/k', 'newer'), 100_000); // the window takes `put` over from here
      const gone = committed(store, change('/d', '', { uuid: del }), 100_000); // and `deleted`, and `del`
      for (let i = 0; i < 150_000; i++) committed(store, change(`/n/${i % 100}`, 'v'), 100_000 + i / 10);
      expect(store.commit(change('/k', 'retry', { uuid: put }), 129_999)).to.deep.equal({
        duplicate: true,
        sequence: first.sequence,
      });
      expect(store.appliedSequence(deleted, '/d')).to.equal(second.sequence);
      expect(store.appliedSequence(del, '/d')).to.equal(gone.sequence);
      committed(store, change('/other', 'v'), 130_000); // dedupeMs after they were replaced
      store.prune(130_000); // the node's timer
      expect([put, deleted, del].map((id) => store.appliedSequence(id, '/k'))).to.deep.equal([
        undefined,
        undefined,
        undefined,
      ]);
      expect(store.commit(change('/k', 'late', { uuid: put }), 130_000).duplicate).to.equal(false);
    });

    it('dedupeSize caps the uuids remembered; forcing one out before dedupeMs is reported', () => {
      const early: number[] = [];
      const store = new Store({
        replayLogSize: 10,
        dedupeSize: 2,
        dedupeMs: 60_000,
        onEvictedEarly: (ageMs) => early.push(ageMs),
      });
      // Each write replaces the one before: the window takes over ids 0 to 2 (at 100 to 300).
      const ids = [uuid(), uuid(), uuid(), uuid()];
      ids.forEach((id, i) => committed(store, change('/k', 'v', { uuid: id }), 100 * i));
      expect(early).to.deep.equal([200]);
      expect(ids.map((id) => store.appliedSequence(id, '/k'))).to.deep.equal([undefined, 2, 3, 4]);
      expect(store.commit(change('/k', 'again', { uuid: ids[2]! }), 300).duplicate).to.equal(true);
      expect(store.commit(change('/k', 'again', { uuid: ids[0]! }), 300).duplicate).to.equal(false);
    });
  });

  describe('replicate', () => {
    it("returns 'applied' for the next sequence, 'stale' at or below, 'gap' above", () => {
      const active = new Store(OPTIONS);
      const e1 = committed(active, change('/a', '1'));
      const e2 = committed(active, change('/b', '2'));
      const e3 = committed(active, change('/c', '3'));
      const passive = new Store(OPTIONS);
      expect(passive.replicate(e2, 0)).to.equal('gap');
      expect(passive.sequence).to.equal(0);
      expect(passive.map.size).to.equal(0);
      expect(passive.replicate(e1, 0)).to.equal('applied');
      expect(passive.replicate(e1, 0)).to.equal('stale');
      expect(passive.replicate(e3, 0)).to.equal('gap');
      expect(passive.replicate(e2, 0)).to.equal('applied');
      expect(passive.replicate(e3, 0)).to.equal('applied');
      expect(passive.replicate(e2, 0)).to.equal('stale');
      expect(passive.sequence).to.equal(3);
      expect(state(passive)).to.deep.equal(state(active));
    });

    it('replicated uuids count for de-duplication after promotion', () => {
      const active = new Store(OPTIONS);
      const id = uuid();
      const e1 = committed(active, change('/a', '1', { uuid: id }));
      const passive = new Store(OPTIONS);
      passive.replicate(e1, 0);
      expect(passive.commit(change('/a', 'retry', { uuid: id }), 0)).to.deep.equal({
        duplicate: true,
        sequence: 1,
      });
    });

    it('a replicated uuid is remembered for dedupeMs from when the passive applied its replacement', () => {
      const active = new Store(OPTIONS);
      const id = uuid();
      const e1 = committed(active, change('/a', '1', { uuid: id }), 0);
      const passive = new Store({ ...OPTIONS, dedupeMs: 1000 });
      passive.replicate(e1, 4000);
      passive.replicate(committed(active, change('/a', 'replaced'), 0), 5000); // it counts from then
      passive.replicate(committed(active, change('/b', '2'), 5999), 5999);
      expect(passive.appliedSequence(id, '/a')).to.equal(1);
      passive.replicate(committed(active, change('/b', '3'), 6000), 6000);
      expect(passive.appliedSequence(id, '/a')).to.equal(undefined);
    });
  });

  describe('snapshot', () => {
    it("is every machine's state: today the whole map, as a point-in-time array fixed at the call", async () => {
      const store = new Store(OPTIONS);
      committed(store, change('/a', '1'));
      committed(store, change('/b', '2'));
      const snap = store.snapshot();
      committed(store, change('/c', '3'));
      expect((await snap).entries.map((e) => e.key).sort()).to.deep.equal(['/a', '/b']);
      expect((await snap).sequence).to.equal(2);
      expect((await store.snapshot()).entries).to.have.length(3);
    });
  });

  describe('changesSince', () => {
    it('returns the changes after n from the replay log, optionally under a prefix', () => {
      const store = new Store(OPTIONS);
      committed(store, change('/a/1', 'x'));
      committed(store, change('/b/1', 'x'));
      committed(store, change('/a/2', 'x'));
      committed(store, change('/a/1', ''));
      expect(store.changesSince(0)!.map((e) => e.sequence)).to.deep.equal([1, 2, 3, 4]);
      expect(store.changesSince(1, '/a/')!.map((e) => e.sequence)).to.deep.equal([3, 4]);
      expect(store.changesSince(2, '/b/')).to.deep.equal([]);
      expect(store.changesSince(4)).to.deep.equal([]);
    });

    it('returns undefined once the log was trimmed past n, and for n ahead of the store', () => {
      const store = new Store({ replayLogSize: 3, dedupeSize: 10, dedupeMs: 60_000 });
      for (let i = 0; i < 6; i++) committed(store, change(`/k${i}`, 'v'));
      expect(store.changesSince(2)).to.equal(undefined);
      expect(store.changesSince(3)!.map((e) => e.sequence)).to.deep.equal([4, 5, 6]);
      expect(store.changesSince(6)).to.deep.equal([]);
      expect(store.changesSince(9)).to.equal(undefined);
    });

    it('after replaceWith the log starts over at the snapshot sequence', () => {
      const store = new Store(OPTIONS);
      for (let i = 0; i < 3; i++) committed(store, change(`/k${i}`, 'v'));
      const builder = store.builder();
      store.replaceWith(builder, 10);
      expect(store.changesSince(10)).to.deep.equal([]);
      expect(store.changesSince(2)).to.equal(undefined);
      committed(store, change('/n', 'v'));
      expect(store.changesSince(10)!.map((e) => e.sequence)).to.deep.equal([11]);
      expect(store.changesSince(9)).to.equal(undefined);
    });
  });

  describe('expire', () => {
    it('turns due TTL entries into sequenced deletes with fresh uuids, in deadline order', () => {
      const store = new Store(OPTIONS);
      committed(store, change('/late', 'v', { expiresAt: 2000 }));
      committed(store, change('/early', 'v', { expiresAt: 1000 }));
      committed(store, change('/forever', 'v'));
      const fresh = [uuid(), uuid()];
      let i = 0;
      expect(store.expire(999, () => fresh[i++]!)).to.deep.equal([]);
      const deletes = store.expire(5000, () => fresh[i++]!);
      expect(deletes.map((e) => [e.key, e.sequence, e.body.length, e.uuid])).to.deep.equal([
        ['/early', 4, 0, fresh[0]],
        ['/late', 5, 0, fresh[1]],
      ]);
      expect(store.sequence).to.equal(5);
      expect(store.map.get('/early')).to.equal(undefined);
      expect(store.map.get('/late')).to.equal(undefined);
      expect(store.map.get('/forever')).to.not.equal(undefined);
      expect(store.changesSince(3)!.map((e) => e.key)).to.deep.equal(['/early', '/late']);
      expect(store.expire(1e12, () => uuid())).to.deep.equal([]);
    });

    it('a key re-set without TTL before its deadline is not expired', () => {
      const store = new Store(OPTIONS);
      committed(store, change('/a', 'v', { expiresAt: 100 }));
      committed(store, change('/a', 'v2'));
      expect(store.expire(1000, () => uuid())).to.deep.equal([]);
      expect(store.sequence).to.equal(2);
    });

    it('the expiry deletes replicate to a passive like any other change', () => {
      const active = new Store(OPTIONS);
      const passive = new Store(OPTIONS);
      const all: Entry[] = [committed(active, change('/a', 'v', { expiresAt: 10 }))];
      all.push(...active.expire(10, () => uuid()));
      for (const e of all) expect(passive.replicate(e, 0)).to.equal('applied');
      expect(passive.map.size).to.equal(0);
      expect(passive.sequence).to.equal(2);
    });
  });

  describe('builder + replaceWith', () => {
    it('the current state stays whole while the builder fills, then swaps at once', () => {
      const store = new Store(OPTIONS);
      committed(store, change('/old', 'v'));
      const before = state(store);
      const builder = store.builder();
      const id = uuid();
      builder.add(
        [{ key: '/new/1', sequence: 40, uuid: id, properties: '', body: Buffer.from('a'), expiresAt: 0 }],
        0,
      );
      builder.add(
        [
          {
            key: '/new/2',
            sequence: 41,
            uuid: uuid(),
            properties: 'ttl=5\n',
            body: Buffer.from('b'),
            expiresAt: 7000,
          },
        ],
        0,
      );
      expect(state(store)).to.deep.equal(before, 'unchanged until replaceWith');
      expect(store.sequence).to.equal(1);
      store.replaceWith(builder, 42);
      expect(store.sequence).to.equal(42);
      expect(store.map.get('/old')).to.equal(undefined);
      expect(store.map.get('/new/1')!.sequence).to.equal(40);
      expect(store.nextDeadline()).to.equal(7000);
      // uuids of the snapshot are remembered: a retry of that write is a duplicate
      expect(store.commit(change('/new/1', 'retry', { uuid: id }), 0)).to.deep.equal({
        duplicate: true,
        sequence: 40,
      });
      // and the next commit continues the snapshot's sequence
      expect(committed(store, change('/c', 'v')).sequence).to.equal(43);
    });

    it("a snapshot's uuids are remembered while their entries are current, then for dedupeMs", () => {
      const early: number[] = [];
      const store = new Store({ ...OPTIONS, dedupeMs: 1000, onEvictedEarly: (age) => early.push(age) });
      const builder = store.builder();
      const [old, newer] = [uuid(), uuid()];
      const entry = (key: string, sequence: number, id: string): Entry => ({
        key,
        sequence,
        uuid: id,
        properties: '',
        body: Buffer.from('v'),
        expiresAt: 0,
      });
      // written long ago on the active (sequence 1), learnt by this node at t=10,000
      builder.add([entry('/old', 1, old)], 10_000);
      builder.add([entry('/newer', 2, newer)], 10_500);
      store.replaceWith(builder, 2);
      committed(store, change('/x', 'v'), 10_999);
      expect(store.commit(change('/old', 'retry', { uuid: old }), 10_999)).to.deep.equal({
        duplicate: true,
        sequence: 1,
      });
      committed(store, change('/old', 'replaced'), 11_000); // the window takes `old` over from here
      committed(store, change('/y', 'v'), 11_999);
      expect(store.appliedSequence(old, '/old')).to.equal(1, 'within dedupeMs of its replacement');
      committed(store, change('/y', 'v'), 12_000);
      expect(store.appliedSequence(old, '/old')).to.equal(undefined, 'dedupeMs after its replacement');
      expect(store.appliedSequence(newer, '/newer')).to.equal(2, 'its entry is current');
      expect(early).to.deep.equal([]);
    });

    it('the builder keeps the dedupeSize cap and reports what it forces out early', () => {
      const early: number[] = [];
      const store = new Store({ ...OPTIONS, dedupeSize: 2, onEvictedEarly: (age) => early.push(age) });
      const builder = store.builder();
      // Three deletes go to the window; the live entry's uuid stays with its entry, outside the cap.
      const ids = [uuid(), uuid(), uuid(), uuid()];
      builder.add(
        ids.map((id, i) => ({
          key: `/k${i}`,
          sequence: i + 1,
          uuid: id,
          properties: '',
          body: Buffer.from(i < 3 ? '' : 'v'),
          expiresAt: 0,
        })),
        500,
      );
      store.replaceWith(builder, 4);
      expect(early).to.deep.equal([0]);
      expect(ids.map((id, i) => store.appliedSequence(id, `/k${i}`))).to.deep.equal([undefined, 2, 3, 4]);
    });

    it('replaceWith drops the uuids of the replaced state', () => {
      const store = new Store(OPTIONS);
      const id = uuid();
      committed(store, change('/a', 'v', { uuid: id }));
      store.reset([], 5, 0);
      expect(store.appliedSequence(id, '/a')).to.equal(undefined);
      expect(store.commit(change('/a', 'v', { uuid: id }), 0).duplicate).to.equal(false);
    });

    it('reset() with deletes in the snapshot stores no tombstones', () => {
      const store = new Store(OPTIONS);
      store.reset(
        [
          { key: '/a', sequence: 1, uuid: '', properties: '', body: Buffer.from('x'), expiresAt: 0 },
          { key: '/b', sequence: 2, uuid: '', properties: '', body: Buffer.alloc(0), expiresAt: 0 },
        ],
        2,
        0,
      );
      expect(store.map.size).to.equal(1);
      expect(store.sequence).to.equal(2);
    });
  });

  describe('the passive mirrors the active', () => {
    it('fast-check: replicating every committed entry yields an identical map and sequence', () => {
      const opArb = fc.record({
        key: fc.constantFrom('/a', '/b', '/c/1', '/c/2', '/d'),
        body: fc.oneof(fc.constant(''), fc.string({ minLength: 1, maxLength: 6 })),
        ttl: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100 })),
        retry: fc.boolean(),
        expireAfter: fc.boolean(),
        advance: fc.nat(20),
      });
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
          const active = new Store(OPTIONS);
          const passive = new Store(OPTIONS);
          const log: Entry[] = [];
          const ids: string[] = [];
          let now = 0;
          for (const op of ops) {
            now += op.advance;
            const id = op.retry && ids.length > 0 ? ids[ids.length - 1]! : uuid();
            ids.push(id);
            const result = active.commit(
              {
                key: op.key,
                uuid: id,
                properties: op.ttl ? `ttl=${op.ttl}\n` : '',
                body: Buffer.from(op.body),
                expiresAt: op.ttl ? now + op.ttl : 0,
              },
              now,
            );
            if (!result.duplicate) log.push(result.entry);
            if (op.expireAfter) log.push(...active.expire(now, () => uuid()));
          }
          for (const e of log) expect(passive.replicate(e, now)).to.equal('applied');
          expect(passive.sequence).to.equal(active.sequence);
          expect(state(passive)).to.deep.equal(state(active));
          expect(passive.nextDeadline()).to.equal(active.nextDeadline());
          // sequences are exactly 1..n, never reused
          expect(log.map((e) => e.sequence)).to.deep.equal(log.map((_, i) => i + 1));
        }),
        { numRuns: 200 },
      );
    });
  });
});
