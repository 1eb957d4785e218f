/**
 * A client replica's map (src/kv/replica-map.ts) against a plain Map: after a first load adopted
 * into its packed part and any puts and deletes after it, the same keys, entries, size, stamps
 * and answers to "was the key held", with each key in one part at most.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ReplicaMap } from '../../../src/kv/replica-map.js';
import { loadBatchesIntoEmpty } from '../../../src/kv/snapshot-load.js';
import type { Entry } from '../../../src/kv/kvmap.js';
import { PackedBatch } from '../../../src/wire/packed.js';

const plain = (e: Entry | undefined) => e && { ...e, body: e.body.toString('hex') };
const byKey = (a: Entry, b: Entry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

describe('ReplicaMap', () => {
  it('agrees with a Map after a packed first load and any puts and deletes', () => {
    const keyArb = fc.constantFrom('/a', '/a/1', '/a/2', '/b', '/b/ü', '/c', '/d', '/e');
    const op = fc.record({ key: keyArb, size: fc.nat(40), expiresAt: fc.constantFrom(0, 5_000) });
    fc.assert(
      fc.property(fc.uniqueArray(keyArb), fc.array(op, { maxLength: 60 }), (loadedKeys, ops) => {
        let sequence = 1;
        const make = (key: string, size: number, expiresAt = 0): Entry => ({
          key,
          sequence: sequence++,
          uuid: 'u',
          properties: '',
          body: Buffer.alloc(size, sequence & 0xff),
          expiresAt,
        });
        const map = new ReplicaMap();
        const model = new Map<string, Entry>();
        const first = loadedKeys.map((key) => make(key, 3, 7_000));
        expect(loadBatchesIntoEmpty([PackedBatch.of(first)], '', map.loaded)).to.not.equal(undefined);
        for (const e of first) model.set(e.key, e);
        for (const o of ops) {
          const e = make(o.key, o.size, o.expiresAt); // size 0: a delete
          expect(map.put(e), `held ${o.key}`).to.equal(model.has(o.key));
          if (e.body.length === 0) model.delete(o.key);
          else model.set(o.key, e);
        }
        expect(map.size).to.equal(model.size);
        for (const key of ['/a', '/a/1', '/a/2', '/b', '/b/ü', '/c', '/d', '/e']) {
          const e = model.get(key);
          expect(plain(map.get(key)), key).to.deep.equal(plain(e));
          const stamp = map.stamp(key);
          expect(stamp && { sequence: stamp.sequence, expiresAt: stamp.expiresAt }, key).to.deep.equal(
            e && { sequence: e.sequence, expiresAt: e.expiresAt },
          );
        }
        for (const prefix of ['', '/a', '/b/']) {
          const expected = [...model.values()].filter((e) => e.key.startsWith(prefix)).sort(byKey);
          expect(map.values(prefix).sort(byKey).map(plain)).to.deep.equal(expected.map(plain));
        }
        // a key lives in one part at most: the packed part holds only keys never put since
        expect(map.loaded.size).to.equal(loadedKeys.filter((k) => !ops.some((o) => o.key === k)).length);
      }),
      { numRuns: 300 },
    );
  });
});
