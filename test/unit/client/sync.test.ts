/** Sync assembly (src/client/sync.ts): TSYNC/KVSYNC streams gathered into one replica load. */
import { expect } from 'chai';
import { SyncAssembly } from '../../../src/client/sync.js';
import type { Entry } from '../../../src/kv/index.js';
import { PackedBatch } from '../../../src/wire/packed.js';

const entry = (key: string, sequence: number): Entry => ({
  key,
  sequence,
  uuid: '',
  properties: '',
  body: Buffer.from(key),
  expiresAt: 0,
});

describe('SyncAssembly', () => {
  it('gathers TSYNC batches of the sync in progress, in order, and hands them over once at TSYNCEND', () => {
    const s = new SyncAssembly();
    s.startNative(7, 1, true, 0);
    expect(s.answers(1, 7)).to.equal(true);
    expect(s.answers(0, 7), 'same reqId from another server: stale').to.equal(false);
    expect(s.answers(1, 6), 'an older request: stale').to.equal(false);
    s.batch(PackedBatch.of([entry('/a', 1), entry('/b', 2)]), 10);
    s.batch(PackedBatch.of([entry('/c', 3)]), 20);
    const done = s.end();
    expect(done.fresh).to.equal(true);
    expect(done.synced.batches.flatMap((b) => b.entries()).map((e) => e.key)).to.deep.equal([
      '/a',
      '/b',
      '/c',
    ]);
    expect(s.answers(1, 7), 'over').to.equal(false);
    expect(s.isNative(7)).to.equal(false);
  });

  it('a resync with the server in use is not fresh; a new request replaces the old one', () => {
    const s = new SyncAssembly();
    s.startNative(1, 0, true, 0);
    s.batch(PackedBatch.of([entry('/old', 1)]), 1);
    s.startNative(2, 0, false, 5);
    expect(s.isNative(1)).to.equal(false);
    expect(s.isNative(2)).to.equal(true);
    expect(s.end()).to.deep.equal({ synced: { batches: [] }, fresh: false });
  });

  it('due(): stalled once no batch came for requestTimeoutMs; every batch is progress', () => {
    const s = new SyncAssembly();
    s.startNative(1, 0, true, 0);
    expect(s.due(100, 100)).to.equal(undefined);
    s.batch(PackedBatch.of([]), 90);
    expect(s.due(190, 100), 'progress at 90').to.equal(undefined);
    expect(s.due(191, 100)).to.deep.equal({ action: 'stalled' });
  });

  it("due(): after TERROR 'busy' the same server is asked again at its time, not given up on", () => {
    const s = new SyncAssembly();
    s.startNative(1, 1, false, 0);
    s.busy(300);
    expect(s.due(299, 1000)).to.equal(undefined);
    expect(s.due(300, 1000)).to.deep.equal({ action: 'retry', server: 1, fresh: false });
  });

  it('thaw(now): time the client slept through does not stall the sync', () => {
    const s = new SyncAssembly();
    s.startNative(1, 0, true, 0);
    s.thaw(5000);
    expect(s.due(5100, 100)).to.equal(undefined);
    expect(s.due(5101, 100)).to.deep.equal({ action: 'stalled' });
  });

  it('plain CHP: KVSYNC entries of the server being received, handed over at KTHXBAI; a lost snapshot is asked again', () => {
    const s = new SyncAssembly();
    expect(s.receivingChp(0)).to.equal(false);
    s.startChp(0, 0);
    expect(s.receivingChp(0)).to.equal(true);
    expect(s.receivingChp(1)).to.equal(false);
    s.chpEntry(entry('/a', 4), 50);
    expect(s.due(150, 100), 'progress at 50').to.equal(undefined);
    expect(s.due(151, 100)).to.deep.equal({ action: 'reask', server: 0 });
    s.chpEntry(entry('/b', 5), 160);
    expect(s.chpEnd().map((e) => e.key)).to.deep.equal(['/a', '/b']);
    expect(s.receivingChp(0)).to.equal(false);
    expect(s.due(10_000, 100), 'nothing in progress').to.equal(undefined);
  });

  it('stop() forgets both kinds of sync', () => {
    const s = new SyncAssembly();
    s.startNative(1, 0, true, 0);
    s.startChp(0, 0);
    s.stop();
    expect(s.answers(0, 1)).to.equal(false);
    expect(s.receivingChp(0)).to.equal(false);
    expect(s.due(10_000, 1)).to.equal(undefined);
  });
});
