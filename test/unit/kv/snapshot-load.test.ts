/**
 * Loading a snapshot (src/kv/snapshot-load.ts): the first load's fast path (`loadIntoEmpty`) must
 * give exactly what the general path (`loadOver`) gives on an empty map, the same map in the same
 * order and the same changes in the same order, and a replica's first load must emit exactly those
 * changes followed by its held updates.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { listChanges, loadIntoEmpty, loadOver, type ChangeList } from '../../../src/kv/snapshot-load.js';
import { Replica } from '../../../src/kv/replica.js';
import type { Entry } from '../../../src/kv/kvmap.js';

function entry(key: string, sequence: number, body: string, properties = ''): Entry {
  return { key, sequence, uuid: 'u', properties, body: Buffer.from(body), expiresAt: 0 };
}

const plain = (changes: ChangeList) =>
  listChanges(changes).map((c) => ({ ...c, value: c.value?.toString('hex') }));
const plainMap = (map: Map<string, Entry>) =>
  [...map].map(([key, e]) => [key, e.sequence, e.body.toString()]);

/** Snapshots as servers may send them: in or out of sequence order, keys outside the subtree, tombstones, repeats. */
const snapshotArb = fc.array(
  fc.record({
    key: fc.constantFrom('/a/1', '/a/2', '/a/3', '/a/4/x', '/b/1', '/ab'),
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
  it('fast-check: loadIntoEmpty gives the same map and the same changes, in the same order, as loadOver on an empty map', () => {
    fc.assert(
      fc.property(snapshotArb, subtreeArb, fc.boolean(), (rows, subtree, sorted) => {
        const entries = toEntries(rows);
        if (sorted) entries.sort((a, b) => a.sequence - b.sequence);
        const fast = new Map<string, Entry>();
        const slow = new Map<string, Entry>();
        const fastChanges = loadIntoEmpty(entries, subtree, fast);
        const slowChanges = loadOver(entries, subtree, slow, 100);
        expect(plain(fastChanges)).to.deep.equal(plain(slowChanges));
        expect(plainMap(fast)).to.deep.equal(plainMap(slow));
      }),
      { numRuns: 500 },
    );
  });

  it('fast-check: loadIntoEmpty takes any iterable, not only arrays, with the same result', () => {
    fc.assert(
      fc.property(snapshotArb, subtreeArb, (rows, subtree) => {
        const entries = toEntries(rows);
        const fromArray = loadIntoEmpty(entries, subtree, new Map());
        const fromIterator = loadIntoEmpty(entries.values(), subtree, new Map());
        expect(plain(fromIterator)).to.deep.equal(plain(fromArray));
      }),
      { numRuns: 200 },
    );
  });

  it('sorts the changes of a snapshot streamed out of sequence order, stably, and leaves an ordered one as it is', () => {
    const unordered = [entry('/a', 5, 'a'), entry('/b', 2, 'b'), entry('/c', 5, 'c'), entry('/d', 1, 'd')];
    const changes = loadIntoEmpty(unordered, '', new Map());
    expect(listChanges(changes).map((c) => `${c.key}@${c.sequence}`)).to.deep.equal([
      '/d@1',
      '/b@2',
      '/a@5',
      '/c@5',
    ]);
    const ordered = [entry('/z', 1, 'z'), entry('/y', 2, 'y'), entry('/x', 2, 'x')];
    expect(listChanges(loadIntoEmpty(ordered, '', new Map())).map((c) => c.key)).to.deep.equal([
      '/z',
      '/y',
      '/x',
    ]);
  });

  it('a key that comes twice in a first snapshot is one change, as over a loaded replica (not two)', () => {
    const twice = [entry('/a', 1, 'v'), entry('/b', 2, 'b'), entry('/a', 1, 'v')];
    const changes = loadIntoEmpty(twice, '', new Map());
    expect(listChanges(changes).map((c) => `${c.key}@${c.sequence}`)).to.deep.equal(['/a@1', '/b@2']);
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
