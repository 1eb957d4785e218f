/**
 * The server's two-part map (src/kv/partitioned.ts): keys under the reserved prefix in one part,
 * the rest in the other, and views that read the part, or both, a prefix can reach.
 */
import { expect } from 'chai';
import { KvMap, PackedKvMap, PartitionedMap, type Entry, type KvView } from '../../../src/kv/index.js';

let seq = 1;
const entry = (key: string, body = 'v'): Entry => ({
  key,
  sequence: seq++,
  uuid: '',
  properties: '',
  body: Buffer.from(body),
  expiresAt: 0,
});

function keysOf(view: KvView, run = 1): string[] {
  const out: string[] = [];
  for (let r = view.next(run); r.length > 0; r = view.next(run)) out.push(...r.map((e) => e.key));
  return out;
}

function filled() {
  const inside = new KvMap();
  const outside = new PackedKvMap();
  const map = new PartitionedMap('\u0000', inside, outside);
  for (const key of ['/a/1', '/a/2', '/b', '\u0000e/1', '\u0000e/2']) map.put(entry(key));
  return { map, inside, outside };
}

describe('PartitionedMap', () => {
  it('puts and gets each key in its own part, deletes included', () => {
    const { map, inside, outside } = filled();
    expect([map.size, inside.size, outside.size]).to.deep.equal([5, 2, 3]);
    expect(inside.get('\u0000e/1')).to.not.equal(undefined);
    expect(outside.get('/a/1')).to.not.equal(undefined);
    expect(map.get('\u0000e/2')!.key).to.equal('\u0000e/2');
    expect(map.get('/b')!.key).to.equal('/b');
    map.put(entry('/b', ''));
    map.put(entry('\u0000e/1', ''));
    expect([map.size, inside.size, outside.size]).to.deep.equal([3, 1, 2]);
    expect(map.get('/b')).to.equal(undefined);
  });

  it('a view reads the part its prefix can reach, or both for the whole map', () => {
    const { map } = filled();
    expect(keysOf(map.view(''))).to.have.members(['/a/1', '/a/2', '/b', '\u0000e/1', '\u0000e/2']);
    expect(keysOf(map.view('/a/'))).to.have.members(['/a/1', '/a/2']);
    expect(keysOf(map.view('\u0000e/'))).to.have.members(['\u0000e/1', '\u0000e/2']);
    const sizes = map.view('').nextSizes(100);
    expect(sizes.map((s) => s.key)).to.have.members(['/a/1', '/a/2', '/b']); // a run never spans the parts
    const view = map.view('');
    expect(keysOf(view, 2)).to.have.length(5);
    expect(keysOf(view.again(), 3)).to.have.length(5);
  });

  it('empty() is two empty parts of the same kinds', () => {
    const { map } = filled();
    const fresh = map.empty();
    expect(fresh.size).to.equal(0);
    expect(fresh.inside).to.be.instanceOf(KvMap);
    expect(fresh.outside).to.be.instanceOf(PackedKvMap);
  });
});
