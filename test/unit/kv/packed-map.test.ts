/**
 * The packed key-value map (src/kv/packed-map.ts) against a plain Map of entries: the same answers
 * after any sequence of puts, deletes and adopted batches (a client's first load), point-in-time
 * views that stay true while the map changes and compacts under them, and garbage kept within its
 * bound. Pages are shrunk to a few hundred bytes so that page turns, big records and compaction
 * all happen.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { PackedKvMap, type PackedMapOptions } from '../../../src/kv/packed-map.js';
import { readAll, type Entry, type KvView } from '../../../src/kv/index.js';
import { packBatch, packedSize } from '../../../src/wire/index.js';

const SMALL: PackedMapOptions = { pageBytes: 256, garbageFloor: 512 };

let nextSeq = 1;
function entry(key: string, body: string | Buffer, extra: Partial<Entry> = {}): Entry {
  return {
    key,
    sequence: nextSeq++,
    uuid: '',
    properties: '',
    body: typeof body === 'string' ? Buffer.from(body) : body,
    expiresAt: 0,
    ...extra,
  };
}

const plain = (e: Entry) => ({ ...e, body: e.body.toString('hex') });
const byKey = (a: Entry, b: Entry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

function readView(view: KvView): Entry[] {
  const out: Entry[] = [];
  for (let run = view.next(3); run.length > 0; run = view.next(3)) out.push(...run);
  return out;
}

describe('PackedKvMap', () => {
  it('stores, replaces and deletes entries, every field kept', () => {
    const map = new PackedKvMap(SMALL);
    const a = entry('/a', 'one', {
      uuid: 'u'.repeat(16),
      properties: 'ttl=5\nx=y\n',
      expiresAt: 1_700_000_000_123,
    });
    map.put(a);
    map.put(entry('/b', 'two'));
    expect(plain(map.get('/a')!)).to.deep.equal(plain(a));
    const a2 = entry('/a', 'three');
    map.put(a2);
    expect(plain(map.get('/a')!)).to.deep.equal(plain(a2));
    expect(map.size).to.equal(2);
    map.put(entry('/a', ''));
    expect(map.get('/a')).to.equal(undefined);
    map.put(entry('/missing', '')); // deleting what is not there changes nothing
    expect(map.size).to.equal(1);
    expect(map.get('/b')!.body.toString()).to.equal('two');
  });

  it('finds keys that are not ASCII, and tells apart keys that share their bytes up to a point', () => {
    const map = new PackedKvMap(SMALL);
    const keys = ['/é', '/e', '/日本/東京', '/日本', '/a\u0000b', '/a', `/${'x'.repeat(300)}`];
    keys.forEach((key, i) => map.put(entry(key, `v${i}`)));
    keys.forEach((key, i) => expect(map.get(key)?.body.toString(), key).to.equal(`v${i}`));
    expect(map.get('/日')).to.equal(undefined);
    expect(readView(map.view('/日本')).map((e) => e.key)).to.have.members(['/日本/東京', '/日本']);
  });

  it('keeps a record bigger than a page in a page of its own', () => {
    const map = new PackedKvMap(SMALL);
    const big = Buffer.alloc(5000, 7);
    map.put(entry('/big', big));
    map.put(entry('/small', 's'));
    expect(map.get('/big')!.body.equals(big)).to.equal(true);
    map.put(entry('/big', 'gone'));
    expect(map.stats.writtenBytes).to.be.below(5000); // the big record's page was dropped
  });

  it('a view sizes each entry as a packed batch does', () => {
    const map = new PackedKvMap(SMALL);
    map.put(entry('/s/é', 'x'.repeat(40), { uuid: 'q'.repeat(16), properties: 'a=b\n' }));
    map.put(entry('/s/b', 'y'));
    const entries = readView(map.view('/s/'));
    const sizes = map.view('/s/').nextSizes(10);
    expect(sizes.map(({ key, bytes }) => ({ key, bytes }))).to.deep.equal(
      entries.map((e) => ({ key: e.key, bytes: packedSize(e) })),
    );
  });

  it('agrees with a Map, and every view with the Map as it was when taken, while pages compact', async () => {
    const keyArb = fc.constantFrom('/a', '/a/1', '/a/2', '/b', '/b/ü', '/c/日本', '/d', '/e', '/f', '/g');
    const op = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArb, size: fc.nat(400) }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('del' as const), key: keyArb }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('adopt' as const),
          keys: fc.uniqueArray(keyArb, { maxLength: 4 }),
          size: fc.nat(300),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('view' as const),
          prefix: fc.constantFrom('', '/', '/a', '/a/1', '/b/', '/b/ü', '/c/日本', '/c/日', '/e/x'),
        }),
      },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 50, maxLength: 400 }), async (ops) => {
        const map = new PackedKvMap(SMALL);
        const model = new Map<string, Entry>();
        const views: { view: KvView; expected: Entry[] }[] = [];
        let maxRecord = 0;
        let maxFrame = 0;
        for (const o of ops) {
          if (o.kind === 'view') {
            const expected = [...model.values()].filter((e) => e.key.startsWith(o.prefix));
            views.push({ view: map.view(o.prefix), expected });
            continue;
          }
          if (o.kind === 'adopt') {
            // a client's first load: a received batch becomes a page, its records made live in place
            const entries = o.keys.map((key) => entry(key, Buffer.alloc(o.size + 1, nextSeq & 0xff)));
            const frame = packBatch(entries);
            const page = map.adopt(frame);
            let at = 0;
            for (const e of entries) {
              const end = at + packedSize(e);
              expect(map.putIn(page, at, end), `held ${e.key}`).to.equal(model.has(e.key));
              model.set(e.key, e);
              at = end;
            }
            map.settle(page);
            maxFrame = Math.max(maxFrame, frame.length);
          } else {
            const e =
              o.kind === 'put' ? entry(o.key, Buffer.alloc(o.size + 1, nextSeq & 0xff)) : entry(o.key, '');
            expect(map.put(e), `held ${e.key}`).to.equal(model.has(e.key));
            if (e.body.length === 0) model.delete(e.key);
            else model.set(e.key, e);
            maxRecord = Math.max(maxRecord, packedSize(e));
          }
          const { writtenBytes, liveBytes } = map.stats;
          const bound =
            Math.max(SMALL.garbageFloor, writtenBytes / 3) + SMALL.pageBytes + maxRecord + maxFrame;
          expect(writtenBytes - liveBytes).to.be.at.most(bound);
        }
        expect(map.size).to.equal(model.size);
        for (const [key, e] of model) {
          expect(plain(map.get(key)!)).to.deep.equal(plain(e));
          expect(map.stamp(key)).to.deep.equal({ sequence: e.sequence, expiresAt: e.expiresAt });
        }
        expect(map.stamp('/absent')).to.equal(undefined);
        for (const { view, expected } of views) {
          expect(readView(view).sort(byKey).map(plain)).to.deep.equal(expected.sort(byKey).map(plain));
        }
        expect((await readAll(map.view(''))).sort(byKey).map(plain)).to.deep.equal(
          [...model.values()].sort(byKey).map(plain),
        );
      }),
      { numRuns: 60 },
    );
  });

  it('an adopted batch none of whose records is made live is dropped once settled; one with a live record stays', () => {
    const map = new PackedKvMap(SMALL);
    const frame = packBatch([entry('/x/1', 'a'), entry('/x/2', 'b')]);
    const idle = map.adopt(frame);
    expect(map.stats).to.deep.include({ pages: 1, writtenBytes: frame.length, liveBytes: 0 });
    map.settle(idle);
    expect(map.stats).to.deep.include({ pages: 0, writtenBytes: 0 });
    const used = map.adopt(frame);
    const end = packedSize(entry('/x/1', 'a'));
    expect(map.putIn(used, 0, end)).to.equal(false);
    map.settle(used);
    expect(map.stats).to.deep.include({ pages: 1, writtenBytes: frame.length, liveBytes: end });
    expect(map.get('/x/1')!.body.toString()).to.equal('a');
    expect(map.get('/x/2')).to.equal(undefined);
  });

  it('hands a view out in the order the records were written', () => {
    const map = new PackedKvMap(); // default pages: no compaction reorders here
    for (let i = 0; i < 100; i++) map.put(entry(`/k/${(i * 37) % 100}`, `v${i}`));
    const sequences = readView(map.view('')).map((e) => e.sequence);
    expect(sequences).to.deep.equal([...sequences].sort((a, b) => a - b));
  });
});
