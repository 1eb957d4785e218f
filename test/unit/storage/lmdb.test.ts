/**
 * LmdbStorage (src/storage/lmdb.ts) on real files: what is persisted comes back after a reopen,
 * one event-loop turn is one transaction, an install is all or nothing, each fsync mode's flush,
 * and a write error rejects flush() with a StorageError without taking the process down.
 */
import { expect } from 'chai';
import { KvMachine } from '../../../src/core/kv-machine.js';
import { Sequencer } from '../../../src/core/sequencer.js';
import { StorageError } from '../../../src/errors.js';
import type { Entry } from '../../../src/kv/kvmap.js';
import { type LmdbStorage, MAX_KEY_BYTES } from '../../../src/storage/index.js';
import { waitFor } from '../../helpers/index.js';
import { Dirs, commits, entry, uuid } from './helpers.js';

describe('LmdbStorage', () => {
  const dirs = new Dirs();
  afterEach(() => dirs.cleanup());

  it('gives back after a reopen every entry field, the sequence, the history and the dedupe window', async () => {
    const dir = dirs.make();
    const first = dirs.storage({ dir });
    expect(first.load()).to.deep.equal({ sequence: 0, entries: [] });
    const ttl: Entry = {
      key: '/ttl/ü',
      sequence: 1,
      uuid: uuid(1),
      properties: 'ttl=30\nowner=x',
      body: Buffer.from([0, 255, 7]),
      expiresAt: 1_700_000_030_000,
    };
    first.append(ttl, 1_000);
    first.append(entry(2), 1_001);
    first.append({ ...entry(3, '/k2', ''), body: Buffer.alloc(0) }, 1_002); // deletes /k2
    first.append({ ...entry(4, '/plain'), uuid: '' }, 1_003);
    first.timeline.open({ term: 'term-a', epoch: 3, startSequence: 1 });
    first.timeline.raiseEpoch(7);
    await first.close();

    const again = dirs.storage({ dir, pairId: first.pairId });
    const loaded = again.load();
    expect(loaded.sequence).to.equal(4);
    expect(again.sequence).to.equal(4);
    const byKey = new Map(loaded.entries.map((e) => [e.key, e]));
    expect([...byKey.keys()].sort()).to.deep.equal(['/plain', '/ttl/ü']);
    expect(byKey.get('/ttl/ü')).to.deep.equal(ttl);
    expect(byKey.get('/plain')).to.deep.include({ sequence: 4, uuid: '', expiresAt: 0 });
    expect(again.timeline.list()).to.deep.equal([{ term: 'term-a', epoch: 3, startSequence: 1 }]);
    expect(again.timeline.epoch).to.equal(7);
    expect(again.appliedSequence(uuid(1))).to.equal(1);
    expect(again.appliedSequence(uuid(3)), 'a delete is a write like any other').to.equal(3);
    expect(again.appliedSequence(uuid(9))).to.equal(undefined);
    expect(again.since(4, '')).to.deep.equal([]);
    // the replay window survives too: a resume from before the restart is answered from it
    expect(again.since(2, '')).to.deep.equal([
      { ...entry(3, '/k2', ''), body: Buffer.alloc(0) },
      { ...entry(4, '/plain'), uuid: '' },
    ]);
    expect(again.since(0, '')!.map((e) => e.sequence)).to.deep.equal([1, 2, 3, 4]);
  });

  it('keeps the replay window within its bounds on disk: what leaves it is removed, an install empties it', async () => {
    const dir = dirs.make();
    const small = dirs.storage({ dir, replayLogSize: 3 });
    for (let s = 1; s <= 10; s++) small.append(entry(s), 0);
    await small.close();
    // reopened with a larger window: only the 3 the small one held are still stored
    const larger = dirs.storage({ dir, replayLogSize: 100 });
    expect(larger.since(7, '')!.map((e) => e.sequence)).to.deep.equal([8, 9, 10]);
    expect(larger.since(6, ''), 'sequence 7 left the window').to.equal(undefined);
    await larger.close();
    // reopened with a smaller window: it loads the newest, and the rest is removed for good
    const smaller = dirs.storage({ dir, replayLogSize: 2 });
    expect(smaller.since(8, '')!.map((e) => e.sequence)).to.deep.equal([9, 10]);
    expect(smaller.since(7, '')).to.equal(undefined);
    await smaller.close();
    const again = dirs.storage({ dir, replayLogSize: 100 });
    expect(again.since(7, ''), 'the rows the smaller window dropped').to.equal(undefined);
    expect(again.since(8, '')).to.have.length(2);
    // an install replaces the history: the window starts over from the installed sequence
    again.install(again.stage(), 50);
    again.append(entry(51), 0);
    await again.close();
    const installed = dirs.storage({ dir, replayLogSize: 100 });
    expect(installed.since(50, '')!.map((e) => e.sequence)).to.deep.equal([51]);
    expect(installed.since(10, '')).to.equal(undefined);
  });

  it('generates a pair id at first open, keeps it, and takes one given by the caller', async () => {
    const dir = dirs.make();
    const made = dirs.storage({ dir });
    expect(made.pairId).to.match(/^[0-9a-f-]{36}$/);
    await made.close();
    expect(dirs.storage({ dir }).pairId).to.equal(made.pairId);
    expect(dirs.storage({ dir: dirs.make(), pairId: 'pair-7' }).pairId).to.equal('pair-7');
  });

  it('restores a Sequencer that carries on from the stored sequence', async () => {
    const dir = dirs.make();
    const storage = dirs.storage({ dir });
    const seq = new Sequencer([new KvMachine()] as const, storage);
    const change = { key: '/a', uuid: uuid(50), properties: '', body: Buffer.from('1'), expiresAt: 900 };
    seq.commit(change, 0);
    seq.commit({ ...change, key: '/b', uuid: uuid(51) }, 0);
    await storage.close();
    const kv = new KvMachine();
    const restored = new Sequencer([kv] as const, dirs.storage({ dir }));
    expect(restored.sequence).to.equal(2);
    expect(kv.map.get('/a')!.body.toString()).to.equal('1');
    expect(kv.nextDeadline()).to.equal(900);
    expect(restored.commit(change, 1), 'a retry after the restart is a duplicate').to.deep.equal({
      duplicate: true,
      sequence: 1,
    });
  });

  it('prune(now) forgets the uuids past the horizon, in memory and in the file, with no write coming', async () => {
    const dir = dirs.make();
    const storage = dirs.storage({ dir, dedupeMs: 1_000 });
    for (let s = 1; s <= 5; s++) storage.append(entry(s), s < 4 ? 0 : 800);
    storage.prune(1_000); // the three at time 0 are past the horizon; 4 and 5 (800) are not
    expect([1, 3, 4, 5].map((s) => storage.appliedSequence(uuid(s)))).to.deep.equal([
      undefined,
      undefined,
      4,
      5,
    ]);
    await storage.close();
    const again = dirs.storage({ dir, dedupeMs: 1_000_000 }); // a longer horizon: only the file speaks
    expect([1, 3, 4, 5].map((s) => again.appliedSequence(uuid(s)))).to.deep.equal([
      undefined,
      undefined,
      4,
      5,
    ]);
  });

  it('keeps the stored dedupe window as bounded as the one in memory', async () => {
    const dir = dirs.make();
    const storage = dirs.storage({ dir, dedupeSize: 3, dedupeMs: 1_000 });
    for (let s = 1; s <= 10; s++) storage.append(entry(s), 0);
    storage.append(entry(11), 900);
    await storage.close();
    const again = dirs.storage({ dir, dedupeSize: 3, dedupeMs: 1_000 });
    expect([8, 9, 10, 11].map((s) => again.appliedSequence(uuid(s)))).to.deep.equal([undefined, 9, 10, 11]);
    const records = (again as unknown as { dedupeDb: { getCount(): number } }).dedupeDb.getCount();
    expect(records, 'records past the bound are deleted from the file').to.equal(3);
    again.append(entry(12), 1_500); // 9 and 10 (time 0) pass the 1 s horizon, 11 (900) does not
    await again.close();
    const third = dirs.storage({ dir, dedupeSize: 3, dedupeMs: 1_000 });
    expect([9, 10, 11, 12].map((s) => third.appliedSequence(uuid(s)))).to.deep.equal([
      undefined,
      undefined,
      11,
      12,
    ]);
  });

  it('commits the appends of one event-loop turn in one transaction', async () => {
    const storage = dirs.storage({ dir: dirs.make() });
    storage.append(entry(1), 0);
    await storage.flush();
    const ids = commits(storage);
    for (let s = 2; s <= 500; s++) storage.append(entry(s), 0);
    storage.timeline.open({ term: 't', epoch: 1, startSequence: 2 });
    await storage.flush();
    expect(ids).to.have.length(1);
    storage.append(entry(501), 0);
    await storage.flush();
    expect(ids, 'the next turn is the next transaction').to.have.length(2);
  });

  it('installs a snapshot in one transaction: afterwards only the new state, old uuids forgotten', async () => {
    const dir = dirs.make();
    const storage = dirs.storage({ dir });
    for (let s = 1; s <= 300; s++) storage.append(entry(s), 0);
    await storage.flush();
    const ids = commits(storage);
    const stage = storage.stage();
    for (let i = 0; i < 20_000; i++) stage.add({ ...entry(i + 1, `/new/${i}`), uuid: uuid(100_000 + i) }, 5);
    stage.add({ ...entry(20_001, '/new/gone', ''), uuid: uuid(7) }, 5);
    expect(storage.appliedSequence(uuid(100_000)), 'nothing changes before install').to.equal(undefined);
    storage.install(stage, 20_500);
    storage.append(entry(20_501, '/after'), 6);
    await storage.close(); // waits for every write queued, in any later turn too
    expect(ids, 'the install and the append after it: one transaction').to.have.length(1);

    const again = dirs.storage({ dir });
    const loaded = again.load();
    expect(loaded.sequence).to.equal(20_501);
    expect(loaded.entries).to.have.length(20_001);
    expect(loaded.entries.some((e) => e.key.startsWith('/k'))).to.equal(false);
    expect(again.appliedSequence(uuid(5))).to.equal(undefined);
    expect(again.appliedSequence(uuid(119_990)), 'the newest staged uuids (the window holds 1,000)').to.equal(
      19_991,
    );
    expect(again.appliedSequence(uuid(7)), 'a staged delete still counts for dedupe').to.equal(20_001);
  });

  it('opens a directory written under any fsync mode under any other', async () => {
    const dir = dirs.make();
    let sequence = 0;
    for (const fsync of ['always', 'batch', 'off', 'always'] as const) {
      const storage = dirs.storage({ dir, fsync });
      expect(storage.load().entries, fsync).to.have.length(sequence);
      storage.append(entry(++sequence), 0);
      await storage.close();
    }
  });

  it('refuses a stage made by another kind of storage', () => {
    const storage = dirs.storage({ dir: dirs.make() });
    expect(() => storage.install({ add: () => undefined }, 1)).to.throw(TypeError);
    expect(storage.sequence).to.equal(0);
  });

  describe('fsync modes', () => {
    /** Replaces lmdb's `flushed` (resolves once commits are synced) with one the test settles. */
    function holdFlushed(storage: LmdbStorage): () => void {
      let release!: () => void;
      const gate = new Promise<boolean>((resolve) => (release = () => resolve(true)));
      Object.defineProperty((storage as unknown as { env: object }).env, 'flushed', { get: () => gate });
      return release;
    }

    it('always: flush() waits for the commit to be synced, not only committed', async () => {
      const storage = dirs.storage({ dir: dirs.make(), fsync: 'always' });
      const release = holdFlushed(storage);
      storage.append(entry(1), 0);
      let done = false;
      const flushing = storage.flush().then(() => (done = true));
      const reached = (storage as unknown as { lastWrite: Promise<boolean> }).lastWrite;
      await reached; // committed
      await new Promise((resolve) => setImmediate(resolve));
      expect(done, 'committed but not yet synced').to.equal(false);
      release();
      await flushing;
      expect(done).to.equal(true);
    });

    it('batch: flush() resolves at commit, and a timer fsyncs what was committed', async () => {
      const storage = dirs.storage({ dir: dirs.make(), fsync: 'batch', syncIntervalMs: 20 });
      holdFlushed(storage); // never resolves: batch must not wait for it
      storage.append(entry(1), 0);
      await storage.flush();
      expect(storage.syncs).to.equal(0);
      await waitFor(() => storage.syncs >= 1, 5_000, 'the batch fsync');
      const after = storage.syncs;
      await waitFor(() => storage.syncs === after, 5_000); // an idle file is not synced again
    });

    it('off: flush() resolves at commit and nothing is ever fsynced by us', async () => {
      const batch = dirs.storage({ dir: dirs.make(), fsync: 'batch', syncIntervalMs: 10 });
      const off = dirs.storage({ dir: dirs.make(), fsync: 'off', syncIntervalMs: 10 });
      holdFlushed(off);
      for (const s of [batch, off]) s.append(entry(1), 0);
      await off.flush();
      await waitFor(() => batch.syncs >= 1, 5_000, 'the batch storage, as a control, to sync');
      expect(off.syncs).to.equal(0);
    });
  });

  describe('write errors', () => {
    it('reject flush() with ERR_STORAGE, write nothing after, and keep what was committed', async () => {
      const dir = dirs.make();
      const storage = dirs.storage({ dir });
      storage.append(entry(1), 0);
      await storage.flush();
      storage.append(entry(2, '/x'.repeat(MAX_KEY_BYTES)), 0);
      storage.append(entry(3), 0);
      const err = await storage.flush().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(StorageError);
      expect(err).to.include({ code: 'ERR_STORAGE', reason: 'write' });
      expect((err as Error).message)
        .to.include(dir)
        .and.not.include('\n');
      expect(storage.failed).to.equal(err);
      storage.append(entry(4), 0);
      await storage.flush().then(
        () => expect.fail('a failed storage stays failed'),
        (e: unknown) => expect(e).to.equal(err),
      );
      await storage.close();
      const again = dirs.storage({ dir });
      expect(again.load().entries.map((e) => e.sequence)).to.deep.equal([1]);
    });
  });
});
