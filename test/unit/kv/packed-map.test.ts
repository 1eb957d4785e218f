/**
 * The server's packed key-value map (src/kv/packed-map.ts) against a plain Map of entries: the
 * same answers after any sequence of puts and deletes, point-in-time views that stay true while
 * the map changes and compacts under them, and garbage kept within its bound. Pages are shrunk
 * to a few hundred bytes so that page turns, big records and compaction all happen.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { PackedKvMap, type PackedMapOptions } from '../../../src/kv/packed-map.js';
import { readAll, type Entry, type KvView } from '../../../src/kv/index.js';
import { packedSize } from '../../../src/wire/index.js';

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
    expect(sizes).to.deep.equal(entries.map((e) => ({ key: e.key, bytes: packedSize(e) })));
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
        for (const o of ops) {
          if (o.kind === 'view') {
            const expected = [...model.values()].filter((e) => e.key.startsWith(o.prefix));
            views.push({ view: map.view(o.prefix), expected });
            continue;
          }
          const e =
            o.kind === 'put' ? entry(o.key, Buffer.alloc(o.size + 1, nextSeq & 0xff)) : entry(o.key, '');
          map.put(e);
          if (e.body.length === 0) model.delete(e.key);
          else model.set(e.key, e);
          maxRecord = Math.max(maxRecord, packedSize(e));
          const { writtenBytes, liveBytes } = map.stats;
          const bound = Math.max(SMALL.garbageFloor, writtenBytes / 3) + SMALL.pageBytes + maxRecord;
          expect(writtenBytes - liveBytes).to.be.at.most(bound);
        }
        expect(map.size).to.equal(model.size);
        for (const [key, e] of model) expect(plain(map.get(key)!)).to.deep.equal(plain(e));
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

  it('hands a view out in the order the records were written', () => {
    const map = new PackedKvMap(); // default pages: no compaction reorders here
    for (let i = 0; i < 100; i++) map.put(entry(`/k/${(i * 37) % 100}`, `v${i}`));
    const sequences = readView(map.view('')).map((e) => e.sequence);
    expect(sequences).to.deep.equal([...sequences].sort((a, b) => a - b));
  });
});
