/**
 * The key-value map kept in lmdb (src/storage/stored-kv.ts), driven through a Store as a node
 * drives it: reads see every change at once (committed or not), a snapshot is the map at the call
 * while writes go on, a resync's staged map replaces the live one, and a restart loads no entry
 * into memory but the TTL'd ones it must schedule.
 */
import { expect } from 'chai';
import { Store, type Change } from '../../../src/core/index.js';
import { PackedKvMap, type Entry, type PartitionedMap } from '../../../src/kv/index.js';
import { packedSize } from '../../../src/wire/index.js';
import type { LmdbStorage } from '../../../src/storage/index.js';
import type { StoredKv } from '../../../src/storage/stored-kv.js';
import { BASE, Dirs, uuid } from './helpers.js';

let ids = 0;
function change(key: string, value: string, expiresAt = 0): Change {
  return { key, uuid: uuid(++ids), properties: '', body: Buffer.from(value), expiresAt };
}
const del = (key: string): Change => change(key, '');

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const body = (store: Store, key: string) => store.map.get(key)?.body.toString();

describe('StoredKv: the map kept in lmdb', () => {
  const dirs = new Dirs();
  afterEach(() => dirs.cleanup());

  function open(dir: string): { store: Store; storage: LmdbStorage } {
    const storage = dirs.storage({ dir });
    return { store: new Store(BASE, storage), storage };
  }
  const kv = (store: Store) => store.map as StoredKv;

  it('is what a store on lmdb uses: reads see a change at once, committed or not, and the overlay empties once committed', async () => {
    const { store, storage } = open(dirs.make());
    expect(store.map.constructor.name).to.equal('StoredKv');
    store.commit(change('/a', '1'), 0);
    store.commit(change('/b', '2'), 0);
    store.commit(change('/a', '3'), 0);
    store.commit(del('/b'), 0);
    expect(body(store, '/a'), 'before the commit').to.equal('3');
    expect(store.map.get('/b')).to.equal(undefined);
    expect(store.map.size).to.equal(1);
    expect(kv(store).pending).to.equal(2);
    await storage.flush();
    await turn();
    expect(kv(store).pending, 'committed: lmdb answers now').to.equal(0);
    expect(body(store, '/a')).to.equal('3');
    expect(store.map.get('/a')!.sequence).to.equal(3);
    expect(store.map.get('/b')).to.equal(undefined);
    expect(store.map.size).to.equal(1);
    store.commit(del('/nothing'), 0);
    expect(store.map.size, 'deleting a missing key counts nothing').to.equal(1);
  });

  it('a delete by prefix removes committed keys and keys written in the same turn, and stays removed after a reopen', async () => {
    const dir = dirs.make();
    const { store, storage } = open(dir);
    store.commit(change('/p/old', '1'), 0);
    store.commit(change('/q', 'kept'), 0);
    await storage.flush();
    store.commit(change('/p/new', '2'), 0); // not committed yet when the delete comes
    store.commit({ ...del('/p/'), properties: 'twinstar-delete-prefix=1\n' }, 0);
    expect([store.map.get('/p/old'), store.map.get('/p/new')]).to.deep.equal([undefined, undefined]);
    await storage.flush();
    await turn();
    expect(store.keyCount).to.equal(1);
    await storage.close();
    const again = open(dir);
    expect([...(await again.store.read('')).entries].map((e) => e.key)).to.deep.equal(['/q']);
    expect(again.store.keyCount).to.equal(1);
    await again.storage.close();
  });

  it('read(prefix) is the map at the call, whatever is committed or written while it reads', async () => {
    const { store, storage } = open(dirs.make());
    for (let i = 0; i < 25_000; i++) store.commit(change(`/r/${i}`, 'old'), 0);
    store.commit(change('/other', 'x'), 0);
    await storage.flush();
    store.commit(change('/r/1', 'pending'), 0); // in the overlay at the call
    store.commit(del('/r/2'), 0);
    const view = store.read('/r/');
    // while the read spans turns: overwrite, delete and add, and let them commit
    store.commit(change('/r/3', 'later'), 0);
    store.commit(del('/r/4'), 0);
    store.commit(change('/r/new', 'later'), 0);
    await storage.flush();
    const { sequence, entries } = await view;
    expect(sequence).to.equal(25_003);
    const byKey = new Map(entries.map((e) => [e.key, e.body.toString()]));
    expect(entries, 'each key once').to.have.length(24_999);
    expect(byKey.size).to.equal(24_999);
    expect(byKey.get('/r/1')).to.equal('pending');
    expect(byKey.has('/r/2')).to.equal(false);
    expect(byKey.get('/r/3'), 'changed after the call').to.equal('old');
    expect(byKey.get('/r/4'), 'deleted after the call').to.equal('old');
    expect(byKey.has('/r/new')).to.equal(false);
    expect(byKey.has('/other'), 'outside the prefix').to.equal(false);
    const now = await store.read('');
    expect(now.entries).to.have.length(25_000);
    expect(now.sequence).to.equal(25_006);
  });

  it('a view reads runs in key order; nextSizes gives each packed size without decoding, the same as the entries; close ends every cursor', async () => {
    const { store, storage } = open(dirs.make());
    const made = [];
    for (let i = 0; i < 300; i++) {
      const key = `/v/${i % 3 === 0 ? 'ü' : 'a'}${String(i).padStart(3, '0')}`;
      made.push(key);
      store.commit(
        { ...change(key, 'x'.repeat(1 + (i % 17))), properties: i % 5 === 0 ? 'ttl=9\nowner=me' : '' },
        0,
      );
    }
    await storage.flush();
    await turn();
    expect(kv(store).pending, 'all committed').to.equal(0);
    store.commit(change('/v/a001', 'changed, not committed'), 0);
    store.commit(change('/v/zz-new', 'pending only'), 0);
    const { view } = store.view('/v/');
    const sizes = [] as { key: string; bytes: number }[];
    for (let run = view.nextSizes(64); run.length > 0; run = view.nextSizes(64)) sizes.push(...run);
    const entries = [] as Entry[];
    const again = view.again();
    for (let run = again.next(64); run.length > 0; run = again.next(64)) entries.push(...run);
    expect(entries).to.have.length(301);
    expect(sizes).to.deep.equal(entries.map((e) => ({ key: e.key, bytes: packedSize(e) })));
    expect(entries.find((e) => e.key === '/v/a001')!.body.toString()).to.equal('changed, not committed');
    const committed = entries.slice(0, 299).map((e) => e.key);
    expect(committed, 'the committed ones in key order').to.deep.equal(
      [...committed].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    const third = view.again();
    expect(third.next(10)).to.have.length(10);
    view.close();
    expect(third.next(10), 'closed for every cursor').to.deep.equal([]);
  });

  it('a resync: the staged map is empty until installed, then it is the live map, before and after its commit', async () => {
    const { store, storage } = open(dirs.make());
    store.commit(change('/old', 'o'), 0);
    await storage.flush();
    const builder = store.builder();
    const staged = Array.from({ length: 3_000 }, (_, i) => ({
      key: `/new/${i}`,
      sequence: i + 1,
      uuid: uuid(50_000 + i),
      properties: '',
      body: Buffer.from(`n${i}`),
      expiresAt: 0,
    }));
    builder.add(staged, 0);
    expect(body(store, '/old'), 'the live map is untouched while staging').to.equal('o');
    expect(store.map.get('/new/1')).to.equal(undefined);
    store.replaceWith(builder, 4_000);
    // installed, not yet committed: the new map answers from its overlay, never from the old state
    expect(store.map.get('/old')).to.equal(undefined);
    expect(body(store, '/new/7')).to.equal('n7');
    expect(store.map.size).to.equal(3_000);
    const duringCommit = await store.read('');
    expect(duringCommit.entries).to.have.length(3_000);
    store.commit(change('/after', 'a'), 0);
    await storage.flush();
    await turn();
    expect(kv(store).pending).to.equal(0);
    expect(store.map.get('/old')).to.equal(undefined);
    expect(body(store, '/new/2999')).to.equal('n2999');
    expect(body(store, '/after')).to.equal('a');
    expect((await store.read('')).entries).to.have.length(3_001);
  });

  it('a restart loads no entry but those with a TTL (from the index), and schedules them', async () => {
    const dir = dirs.make();
    const first = open(dir);
    for (let i = 0; i < 1_000; i++) first.store.commit(change(`/k${i}`, 'v'), 0);
    first.store.commit(change('/ttl/a', 'a', 5_000), 0);
    first.store.commit(change('/ttl/b', 'b', 9_000), 0);
    first.store.commit(change('/ttl/b', 'b2'), 0); // the TTL is gone with the overwrite
    first.store.commit(change('/ttl/c', 'c', 7_000), 0);
    first.store.commit(del('/ttl/c'), 0);
    await first.storage.close();

    const storage = dirs.storage({ dir });
    const store = new Store(BASE, storage);
    expect(store.map.size).to.equal(1_002);
    expect(kv(store).pending, 'nothing loaded into memory beyond the TTL keys').to.be.at.most(1);
    expect(store.nextDeadline()).to.equal(5_000);
    expect(body(store, '/ttl/b')).to.equal('b2');
    const deletes = store.expire(10_000, () => uuid(++ids));
    expect(deletes.map((e) => e.key)).to.deep.equal(['/ttl/a']);
    expect(store.map.get('/ttl/a')).to.equal(undefined);
  });

  it('a store in memory keeps its keys packed in memory (PackedKvMap), the event bus apart', () => {
    const store = new Store(BASE);
    store.commit(change('/m', '1'), 0);
    const map = store.map as PartitionedMap;
    expect(map.snapshot('')).to.have.length(1);
    expect(map.outside).to.be.instanceOf(PackedKvMap);
    expect(map.outside.size).to.equal(1);
  });
});
