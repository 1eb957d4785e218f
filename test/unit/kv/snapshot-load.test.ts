/**
 * Loading a snapshot (src/kv/snapshot-load.ts): the first load's fast path (`loadIntoEmpty`) must
 * give exactly what the general path (`loadOver`) gives on an empty map, the same map in the same
 * order and the same changes in the same order, and a replica's first load must emit exactly those
 * changes followed by its held updates.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  listChanges,
  loadBatchesIntoEmpty,
  loadIntoEmpty,
  loadOver,
  type ChangeList,
} from '../../../src/kv/snapshot-load.js';
import { Replica } from '../../../src/kv/replica.js';
import { PackedKvMap } from '../../../src/kv/packed-map.js';
import { ReplicaMap } from '../../../src/kv/replica-map.js';
import type { Entry } from '../../../src/kv/kvmap.js';
import { PackedBatch } from '../../../src/wire/packed.js';

function entry(key: string, sequence: number, body: string, properties = ''): Entry {
  return { key, sequence, uuid: 'u', properties, body: Buffer.from(body), expiresAt: 0 };
}

const plain = (changes: ChangeList) =>
  listChanges(changes).map((c) => ({ ...c, value: c.value?.toString('hex') }));
const plainMap = (map: ReplicaMap) =>
  map
    .values('')
    .map((e) => [e.key, e.sequence, e.body.toString(), e.properties])
    .sort();
/** The entries as received native batches: cut where `cuts` say, each checked as a client checks it. */
const asBatches = (entries: Entry[], cuts: number[]) => {
  const bounds = [...new Set([0, ...cuts.map((c) => c % (entries.length + 1)), entries.length])].sort(
    (a, b) => a - b,
  );
  const batches = bounds.slice(1).map((end, i) => PackedBatch.of(entries.slice(bounds[i], end)));
  return batches.map((b) => PackedBatch.checked(b.frame));
};
const hasRepeat = (entries: Entry[], subtree: string) => {
  const kept = entries.filter((e) => e.body.length > 0 && e.key.startsWith(subtree)).map((e) => e.key);
  return new Set(kept).size !== kept.length;
};

/** Snapshots as servers may send them: in or out of sequence order, keys outside the subtree, tombstones, repeats. */
const snapshotArb = fc.array(
  fc.record({
    key: fc.constantFrom('/a/1', '/a/2', '/a/3', '/a/4/x', '/b/1', '/ab', '/a/é'),
    sequence: fc.integer({ min: 1, max: 50 }),
    body: fc.constantFrom('', 'v', 'w', 'long value'),
    properties: fc.constantFrom('', 'ttl=5\n'),
  }),
  { maxLength: 30 },
);
const subtreeArb = fc.constantFrom('', '/a/', '/b/', '/nothing/');
const toEntries = (rows: { key: string; sequence: number; body: string; properties: string }[]) =>
  rows.map((r) => entry(r.key, r.sequence, r.body, r.properties));

describe('snapshot-load', () => {
  it('fast-check: loadIntoEmpty and loadBatchesIntoEmpty give the same map and the same changes, in the same order, as loadOver on an empty map (or give up on a repeated key)', () => {
    let compared = 0;
    fc.assert(
      fc.property(
        snapshotArb,
        subtreeArb,
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 4 }),
        (rows, subtree, sorted, cuts) => {
          const entries = toEntries(rows);
          if (sorted) entries.sort((a, b) => a.sequence - b.sequence);
          const slow = new ReplicaMap();
          const slowChanges = loadOver(entries, subtree, slow, 100);
          const fast = new ReplicaMap();
          const fastChanges = loadIntoEmpty(entries, subtree, fast);
          const packed = new ReplicaMap();
          const packedChanges = loadBatchesIntoEmpty(asBatches(entries, cuts), subtree, packed.loaded);
          if (hasRepeat(entries, subtree)) {
            expect(fastChanges).to.equal(undefined);
            expect(packedChanges).to.equal(undefined);
            return;
          }
          compared++;
          expect(plain(fastChanges!)).to.deep.equal(plain(slowChanges));
          expect(plain(packedChanges!)).to.deep.equal(plain(slowChanges));
          expect(plainMap(fast)).to.deep.equal(plainMap(slow));
          expect(plainMap(packed)).to.deep.equal(plainMap(slow));
        },
      ),
      { numRuns: 500 },
    );
    expect(compared).to.be.greaterThan(100);
  });

  it("fast-check: a replica's first load from native batches equals its first load from the same entries, repeats included", () => {
    fc.assert(
      fc.property(snapshotArb, subtreeArb, fc.array(fc.nat(), { maxLength: 4 }), (rows, subtree, cuts) => {
        const entries = toEntries(rows);
        const fromEntries = new Replica(subtree);
        const fromBatches = new Replica(subtree);
        const a = fromEntries.loadSnapshot(entries, 60);
        const b = fromBatches.loadSnapshot({ batches: asBatches(entries, cuts) }, 60);
        expect(plain(b)).to.deep.equal(plain(a));
        expect(
          fromBatches
            .values()
            .map((e) => e.key)
            .sort(),
        ).to.deep.equal(
          fromEntries
            .values()
            .map((e) => e.key)
            .sort(),
        );
        for (const e of fromEntries.values()) expect(fromBatches.get(e.key)).to.deep.equal(e);
      }),
      { numRuns: 300 },
    );
  });

  it('sorts the changes of a snapshot streamed out of sequence order, stably, and leaves an ordered one as it is', () => {
    const unordered = [entry('/a', 5, 'a'), entry('/b', 2, 'b'), entry('/c', 5, 'c'), entry('/d', 1, 'd')];
    const order = ['/d@1', '/b@2', '/a@5', '/c@5'];
    const read = (changes: ChangeList | undefined) =>
      listChanges(changes!).map((c) => `${c.key}@${c.sequence}`);
    expect(read(loadIntoEmpty(unordered, '', new ReplicaMap()))).to.deep.equal(order);
    expect(read(loadBatchesIntoEmpty(asBatches(unordered, [2]), '', new PackedKvMap()))).to.deep.equal(order);
    const ordered = [entry('/z', 1, 'z'), entry('/y', 2, 'y'), entry('/x', 2, 'x')];
    expect(read(loadIntoEmpty(ordered, '', new ReplicaMap()))).to.deep.equal(['/z@1', '/y@2', '/x@2']);
    expect(read(loadBatchesIntoEmpty(asBatches(ordered, []), '', new PackedKvMap()))).to.deep.equal([
      '/z@1',
      '/y@2',
      '/x@2',
    ]);
  });

  it('a key that comes twice in a first snapshot is one change, as over a loaded replica (not two), in either form', () => {
    const twice = [entry('/a', 1, 'v'), entry('/b', 2, 'b'), entry('/a', 1, 'v')];
    for (const synced of [twice, { batches: asBatches(twice, [1]) }]) {
      const replica = new Replica('');
      const changes = replica.loadSnapshot(synced, 2);
      expect(listChanges(changes).map((c) => `${c.key}@${c.sequence}`)).to.deep.equal(['/a@1', '/b@2']);
      expect(replica.size).to.equal(2);
    }
  });

  it('a batch that is not canonical (a lone newline of properties) loads through the decoded entries, as checked', () => {
    const odd = [entry('/a', 1, 'v', '\n'), entry('/b', 2, 'b')];
    const batches = asBatches(odd, []);
    expect(batches[0]!.canonical).to.equal(false);
    const replica = new Replica('');
    replica.loadSnapshot({ batches }, 2);
    expect(replica.get('/a')!.properties).to.equal('');
  });

  it("a replica's first load emits one change per key in sequence order, then its held updates above the snapshot", () => {
    const replica = new Replica('/a/');
    replica.beginSync();
    replica.offer(entry('/a/1', 3, 'old')); // covered by the snapshot: dropped
    replica.offer(entry('/a/2', 9, 'live')); // above it: applied after the snapshot's changes
    const changes = replica.loadSnapshot(
      [entry('/a/3', 7, 'c'), entry('/b/1', 2, 'outside'), entry('/a/1', 4, 'a'), entry('/a/4', 5, '')],
      8,
    );
    expect(listChanges(changes).map((c) => `${c.key}@${c.sequence}=${c.value?.toString()}`)).to.deep.equal([
      '/a/1@4=a',
      '/a/3@7=c',
      '/a/2@9=live',
    ]);
    expect(replica.sequence).to.equal(9);
    expect(replica.size).to.equal(3);
    expect(replica.isSyncing).to.equal(false);
  });

  it('a second snapshot over a loaded replica still diffs: unchanged keys are silent, vanished keys are deleted', () => {
    const replica = new Replica('');
    replica.beginSync();
    replica.loadSnapshot([entry('/a', 1, 'a'), entry('/b', 2, 'b'), entry('/c', 3, 'c')], 3);
    replica.beginSync();
    const changes = replica.loadSnapshot([entry('/a', 1, 'a'), entry('/c', 6, 'c2')], 7);
    expect(
      listChanges(changes).map((c) => `${c.key}@${c.sequence}${c.deleted ? ' deleted' : ''}`),
    ).to.deep.equal(['/c@6', '/b@7 deleted']);
  });
});
