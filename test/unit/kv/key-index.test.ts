/**
 * The packed map's hash index (src/kv/key-index.ts) with a fake owner and hashes the test picks:
 * colliding hashes, runs that wrap around the end of the table, backward-shift deletes, growing
 * and shrinking, checked against a plain Map.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  directoryBits,
  directoryBitsOf,
  hashBytes,
  hashByte,
  hashEnd,
  hashStart,
  KeyIndex,
  signatureOf,
} from '../../../src/kv/key-index.js';

/** Records are numbered keys; handle = key * 10 + version, so a handle names its key. */
class FakeRecords {
  probe = -1;
  matches(handle: number): boolean {
    return Math.floor(handle / 10) === this.probe;
  }
}

function indexWith(hashOf: (key: number) => number) {
  const records = new FakeRecords();
  const index = new KeyIndex(records);
  const on = (key: number) => {
    records.probe = key;
    return hashOf(key);
  };
  return {
    index,
    set: (key: number, version: number) => index.set(on(key), key * 10 + version, 1 << (key & 31)),
    find: (key: number) => index.find(on(key)),
    remove: (key: number) => index.remove(on(key)),
  };
}

describe('KeyIndex', () => {
  it('finds keys whose hashes collide, across the end of the table, after deletes in the run', () => {
    // 1023 is the last of the 1024 first slots: the run wraps to slot 0 onwards
    const { index, set, find, remove } = indexWith((key) => (key < 6 ? 1023 : key - 6));
    for (let key = 0; key < 10; key++) expect(set(key, 1)).to.equal(-1);
    expect(index.size).to.equal(10);
    expect(remove(0)).to.equal(1); // the head of the colliding run
    expect(remove(3)).to.equal(31); // one in its middle
    expect(find(0)).to.equal(-1);
    expect(find(3)).to.equal(-1);
    for (const key of [1, 2, 4, 5, 6, 7, 8, 9]) expect(find(key)).to.equal(key * 10 + 1);
    expect(set(4, 2)).to.equal(41); // replaces, does not add
    expect(find(4)).to.equal(42);
    expect(index.size).to.equal(8);
  });

  it('holds and moves a handle only while it is the current one', () => {
    const { index, set } = indexWith(() => 7);
    set(1, 1);
    set(2, 1);
    expect(index.holds(7, 21)).to.equal(true);
    expect(index.move(7, 21, 25)).to.equal(true);
    expect(index.holds(7, 21)).to.equal(false);
    expect(index.holds(7, 25)).to.equal(true);
    expect(index.move(7, 21, 26)).to.equal(false);
    expect([...index.all()].sort()).to.deep.equal([11, 25]);
  });

  it('agrees with a Map through growth, shrinking and deletes, from few distinct hashes to many', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('set' as const),
        key: fc.nat(3000),
        version: fc.integer({ min: 1, max: 9 }),
      }),
      fc.record({ kind: fc.constant('remove' as const), key: fc.nat(3000) }),
    );
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1000, maxLength: 4000 }),
        fc.integer({ min: 1, max: 100_000 }),
        (ops, spread) => {
          const { index, set, find, remove } = indexWith((key) => ((key * 2654435761) % spread) >>> 0);
          const model = new Map<number, number>();
          for (const o of ops) {
            if (o.kind === 'set') {
              expect(set(o.key, o.version)).to.equal(model.get(o.key) ?? -1);
              model.set(o.key, o.key * 10 + o.version);
            } else {
              expect(remove(o.key)).to.equal(model.get(o.key) ?? -1);
              model.delete(o.key);
            }
          }
          expect(index.size).to.equal(model.size);
          for (let key = 0; key <= 3000; key++) expect(find(key)).to.equal(model.get(key) ?? -1);
          // each key's signature (here one bit, from its low 5 bits) moved with it through every shift and resize
          const sorted = (handles: Iterable<number>) => [...handles].sort((a, b) => a - b);
          for (let bit = 0; bit < 32; bit++) {
            const expected = [...model.entries()].filter(([k]) => (k & 31) === bit).map(([, h]) => h);
            expect(sorted(index.signed(1 << bit))).to.deep.equal(sorted(expected));
          }
          expect([...index.all()].sort((a, b) => a - b)).to.deep.equal(
            [...model.values()].sort((a, b) => a - b),
          );
        },
      ),
      { numRuns: 30 },
    );
  });

  it('a resize moves a few slots per change; every key stays found, set, moved and removed meanwhile', () => {
    // Re-indexing a million keys in one call took ~300 ms: a node loading keys at full speed
    // stalled long enough for its peer to take it for dead.
    const { index, set, find, remove } = indexWith((key) => (key * 2654435761) >>> 0);
    let key = 0;
    for (; index.resizing === 0 && key < 10_000; key++) set(key, 1);
    expect(key, 'the table grew at half full').to.equal(513);
    expect(index.resizing, 'left for later changes').to.be.above(900);
    for (let k = 0; k < key; k++) expect(find(k), `key ${k}`).to.equal(k * 10 + 1);
    // while it moves: replace, relocate and remove keys of both tables, add new ones
    for (let k = 0; k < key; k += 3) expect(set(k, 2)).to.equal(k * 10 + 1);
    for (let k = 1; k < key; k += 3)
      expect(index.move((k * 2654435761) >>> 0, k * 10 + 1, k * 10 + 5)).to.equal(true);
    for (let k = 2; k < key; k += 9) expect(remove(k)).to.equal(k * 10 + 1);
    const expected = (k: number) =>
      k % 3 === 0 ? k * 10 + 2 : k % 3 === 1 ? k * 10 + 5 : k % 9 === 2 ? -1 : k * 10 + 1;
    expect(index.resizing, 'done by now').to.equal(0);
    for (let k = 0; k < key; k++) expect(find(k), `key ${k}`).to.equal(expected(k));
    for (; key < 700; key++) set(key, 1);
    expect([...index.all()].length).to.equal(index.size);
    expect(index.slots).to.equal(2048);
  });

  it('grows past half full and shrinks back once mostly empty', () => {
    const { index, set, remove } = indexWith((key) => key);
    for (let key = 0; key < 3000; key++) set(key, 1);
    expect(index.slots).to.equal(8192);
    for (let key = 0; key < 2990; key++) remove(key);
    expect(index.slots).to.be.below(8192);
    expect(index.size).to.equal(10);
  });

  it("a key's signature has the two bits of each directory it lies in, but the root's", () => {
    const bits = (directory: string) => {
      let h = hashStart();
      for (const byte of Buffer.from(directory)) h = hashByte(h, byte);
      return directoryBits(h, Buffer.byteLength(directory));
    };
    const signature = (key: string) => signatureOf(Buffer.from(key), Buffer.byteLength(key));
    expect(signature('/a/b/c')).to.equal(bits('/a/') | bits('/a/b/'));
    expect(signature('/日本/x')).to.equal(bits('/日本/'));
    expect(signature('a/b')).to.equal(bits('a/'));
    expect(signature('/abc')).to.equal(0);
    expect(signature('abc')).to.equal(0);
    // two bits, or one when both fall on the same (an unsigned count: bit 31 makes the number negative)
    const counts = ['/a/', '/b/c/', '/日本/'].map(
      (d) => (bits(d) >>> 0).toString(2).replace(/0/g, '').length,
    );
    for (const n of counts) expect(n).to.be.within(1, 2);
  });

  it("a directory's keys are signed apart from a sibling directory's in all but a few cases (2,000 pairs)", () => {
    // keys two directories deep, as /<app>/<kind>/<id>: a view of one kind should not take the
    // other's keys as candidates; with one bit per directory, root included, about 3 in 32 did
    let collisions = 0;
    const trials = 2000;
    for (let t = 0; t < trials; t++) {
      const mine = Buffer.from(`/app${t}/fan/`);
      const other = `/app${t}/snap/0000001`;
      const bitsOfMine = directoryBitsOf(mine, mine.length);
      const sig = signatureOf(Buffer.from(other), Buffer.byteLength(other));
      if ((sig & bitsOfMine) === bitsOfMine) collisions++;
    }
    expect(collisions / trials).to.be.below(0.035);
    expect(collisions, 'the check can find a collision at all').to.be.above(0);
  });

  it('hashes a string of char codes and its bytes the same way', () => {
    const bytes = Buffer.from('/orders/eu/1');
    let h = hashStart();
    for (const byte of bytes) h = hashByte(h, byte);
    expect(hashEnd(h, bytes.length)).to.equal(hashBytes(bytes, 0, bytes.length));
    expect(hashBytes(bytes, 0, bytes.length)).to.not.equal(hashBytes(Buffer.from('/orders/eu/2'), 0, 12));
  });
});
