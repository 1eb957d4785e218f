/**
 * Promise 3 with the uuid of a current entry left out of the de-duplication window
 * (state-machine.ts `CurrentWrites`): while a write's entry is its key's current one, the map
 * answers for its uuid; the window takes the uuid over, in the same turn (and, on lmdb, the same
 * transaction), once the entry is replaced, deleted, deleted by prefix or expired. A retry is a
 * duplicate at every point in between, on both storages and across a restart.
 */
import { expect } from 'chai';
import { KvMachine } from '../../../src/core/kv-machine.js';
import { Sequencer } from '../../../src/core/sequencer.js';
import { MemoryStorage } from '../../../src/core/storage.js';
import type { LmdbStorage } from '../../../src/storage/index.js';
import { Dirs, uuid } from '../storage/helpers.js';

const OPTIONS = { replayLogSize: 100, dedupeSize: 1_000, dedupeMs: 60_000 };

let ids = 0;
function write(key: string, value: string, expiresAt = 0) {
  return { key, uuid: uuid(0x10000 + ++ids), properties: '', body: Buffer.from(value), expiresAt };
}
const del = (key: string) => write(key, '');

function sequenced(seq: Sequencer, change: ReturnType<typeof write>, now = 0): number {
  const result = seq.commit(change, now);
  if (result.duplicate) throw new Error(`${change.key} was taken for a duplicate`);
  return result.entry.sequence;
}

/** What a retry of `change` gets: the sequence of the write it repeats, or a fresh one. */
function retry(seq: Sequencer, change: ReturnType<typeof write>, now = 0): string {
  const result = seq.commit({ ...change, body: Buffer.from('retried') }, now);
  return result.duplicate ? `duplicate of ${result.sequence}` : `applied as ${result.entry.sequence}`;
}

describe('de-duplication by the current entry (promise 3)', () => {
  it("keeps a current entry's uuid out of the window, and hands it over when the entry is replaced", () => {
    const storage = new MemoryStorage(OPTIONS);
    const seq = new Sequencer([new KvMachine()] as const, storage);
    const writes = Array.from({ length: 100 }, (_, i) => write(`/k/${i}`, 'v'));
    writes.forEach((w) => sequenced(seq, w));
    expect(
      writes.filter((w) => storage.appliedSequence(w.uuid) !== undefined),
      'uuids in the window',
    ).to.have.length(0);
    expect(writes.map((w) => seq.appliedSequence(w.uuid, w.key))).to.deep.equal(writes.map((_, i) => i + 1));
    expect(retry(seq, writes[7]!)).to.equal('duplicate of 8');
    const newer = write('/k/7', 'newer');
    sequenced(seq, newer);
    expect(storage.appliedSequence(writes[7]!.uuid), 'taken over by the window').to.equal(8);
    expect(storage.appliedSequence(newer.uuid), 'the current one stays out').to.equal(undefined);
    expect(retry(seq, writes[7]!)).to.equal('duplicate of 8');
    expect(retry(seq, newer)).to.equal('duplicate of 101');
    expect(seq.sequence).to.equal(101);
  });

  it('a delete, a delete by prefix and a TTL expiry hand their uuids to the window', () => {
    const storage = new MemoryStorage(OPTIONS);
    const kv = new KvMachine();
    const seq = new Sequencer([kv] as const, storage);
    const [a, b, c, gone, ttl] = [
      write('/p/a', '1'),
      write('/p/b', '2'),
      write('/q', '3'),
      del('/nothing'),
      write('/t', 't', 500),
    ];
    for (const w of [a, b, c, gone, ttl]) sequenced(seq, w);
    const removed = del('/q');
    sequenced(seq, removed); // 6
    const prefix = { ...del('/p/'), properties: 'twinstar-delete-prefix=1\n' };
    sequenced(seq, prefix); // 7
    const [expired] = seq.expire(1_000, () => uuid(0x20000 + ++ids)); // 8
    expect(expired?.key).to.equal('/t');
    expect(kv.map.size, 'nothing is left to answer').to.equal(0);
    expect([a, b, c, gone, ttl, removed, prefix].map((w) => retry(seq, w, 1_000))).to.deep.equal([
      'duplicate of 1',
      'duplicate of 2',
      'duplicate of 3',
      'duplicate of 4',
      'duplicate of 5',
      'duplicate of 6',
      'duplicate of 7',
    ]);
    storage.prune(1_000 + OPTIONS.dedupeMs); // dedupeMs after the handover, the node's timer
    expect(retry(seq, a, 61_000)).to.equal('applied as 9');
  });

  it('a snapshot installed by a resync puts none of its entries in the window', () => {
    const storage = new MemoryStorage(OPTIONS);
    const seq = new Sequencer([new KvMachine()] as const, storage);
    const kept = write('/kept', 'v');
    const stage = seq.stage();
    stage.add(
      [
        { ...kept, sequence: 41 },
        { ...del('/deleted'), sequence: 42 },
      ],
      0,
    );
    seq.replaceWith(stage, 42);
    expect(storage.appliedSequence(kept.uuid)).to.equal(undefined);
    expect(retry(seq, kept)).to.equal('duplicate of 41');
  });

  describe('on lmdb', () => {
    const dirs = new Dirs();
    afterEach(() => dirs.cleanup());

    function open(dir: string): { seq: Sequencer; storage: LmdbStorage } {
      const storage = dirs.storage({ dir, ...OPTIONS });
      return { seq: new Sequencer([new KvMachine(storage.keyValues())] as const, storage), storage };
    }

    it('stores a dedupe record only for a replaced entry, and every retry is a duplicate after a restart', async () => {
      const dir = dirs.make();
      const first = open(dir);
      const [a, b, c] = [write('/a', '1'), write('/b', '2'), write('/b', '3')];
      for (const w of [a, b]) sequenced(first.seq, w);
      await first.storage.flush();
      sequenced(first.seq, c); // replaces b, in the same transaction as its dedupe record
      await first.storage.flush();
      await first.storage.close();
      const again = open(dir);
      expect(
        [a, b, c].map((w) => again.storage.appliedSequence(w.uuid)),
        'the stored window',
      ).to.deep.equal([undefined, 2, undefined]);
      expect([a, b, c].map((w) => retry(again.seq, w))).to.deep.equal([
        'duplicate of 1',
        'duplicate of 2',
        'duplicate of 3',
      ]);
      expect(again.seq.sequence).to.equal(3);
    });
  });
});
