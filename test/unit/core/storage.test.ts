/**
 * MemoryStorage (src/core/storage.ts), today's behaviour under the sequencer: the sequence, the
 * replay window, the dedupe window, the history, staged installs, and nothing kept across a start.
 */
import { expect } from 'chai';
import { MemoryStorage } from '../../../src/core/storage.js';
import type { Entry } from '../../../src/kv/kvmap.js';

const OPTIONS = { replayLogSize: 3, dedupeSize: 100, dedupeMs: 1_000 };

function uuid(n: number): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0xfeed0000, 0);
  b.writeUInt32BE(n, 12);
  return b.toString('latin1');
}

function entry(sequence: number, key = `/k${sequence}`, id = uuid(sequence)): Entry {
  return { key, sequence, uuid: id, properties: '', body: Buffer.from('v'), expiresAt: 0 };
}

describe('MemoryStorage', () => {
  it('starts empty: sequence 0, nothing to load, an empty history', () => {
    const storage = new MemoryStorage(OPTIONS);
    expect(storage.sequence).to.equal(0);
    expect(storage.load()).to.deep.equal({ sequence: 0, entries: [] });
    expect(storage.timeline.list()).to.deep.equal([]);
    expect(storage.since(0, '')).to.deep.equal([]);
  });

  it('append moves the sequence, feeds the replay window and remembers the write uuid', () => {
    const storage = new MemoryStorage(OPTIONS);
    for (let s = 1; s <= 4; s++) storage.append(entry(s), 0);
    expect(storage.sequence).to.equal(4);
    expect(storage.since(1, '')!.map((e) => e.sequence)).to.deep.equal([2, 3, 4]);
    expect(storage.since(0, ''), 'the window holds 3').to.equal(undefined);
    expect(storage.since(2, '/k4')!.map((e) => e.key)).to.deep.equal(['/k4']);
    expect(storage.replayLog.size).to.equal(3);
    expect(storage.appliedSequence(uuid(2))).to.equal(2);
    expect(storage.appliedSequence(uuid(99))).to.equal(undefined);
  });

  it('remembers a uuid for dedupeMs from when it was appended; a zero uuid never', () => {
    const storage = new MemoryStorage(OPTIONS);
    storage.append(entry(1), 5_000);
    storage.append(entry(2, '/z', '\0'.repeat(16)), 5_000);
    storage.append(entry(3), 6_001); // a later append lets the window forget what passed dedupeMs
    expect(storage.appliedSequence(uuid(1))).to.equal(undefined);
    expect(storage.appliedSequence(uuid(3))).to.equal(3);
    expect(storage.appliedSequence('\0'.repeat(16))).to.equal(undefined);
  });

  it('install swaps in a staged snapshot at once: its uuids, its sequence, an empty window', () => {
    const storage = new MemoryStorage(OPTIONS);
    storage.append(entry(1), 0);
    const stage = storage.stage();
    stage.add(entry(40, '/new', uuid(77)), 0);
    expect(storage.appliedSequence(uuid(77)), 'not before install').to.equal(undefined);
    expect(storage.appliedSequence(uuid(1))).to.equal(1);
    storage.install(stage, 42);
    expect(storage.sequence).to.equal(42);
    expect(storage.appliedSequence(uuid(77))).to.equal(40);
    expect(storage.appliedSequence(uuid(1)), 'the replaced state is forgotten').to.equal(undefined);
    expect(storage.since(42, '')).to.deep.equal([]);
    expect(storage.since(41, '')).to.equal(undefined);
    expect(storage.replayLog.size).to.equal(0);
  });

  it('refuses a stage made by another kind of storage', () => {
    const storage = new MemoryStorage(OPTIONS);
    expect(() => storage.install({ add: () => undefined }, 1)).to.throw(TypeError);
    expect(storage.sequence).to.equal(0);
  });

  it('flush resolves at once: memory is as durable as it gets', async () => {
    const storage = new MemoryStorage(OPTIONS);
    storage.append(entry(1), 0);
    let flushed = false;
    await storage.flush().then(() => (flushed = true));
    expect(flushed).to.equal(true);
  });

  it('keeps the history it is given beside the log', () => {
    const storage = new MemoryStorage(OPTIONS, {
      entries: [{ term: 'abc', epoch: 3, startSequence: 1 }],
      epoch: 5,
    });
    expect(storage.timeline.term).to.equal('abc');
    expect(storage.timeline.epoch).to.equal(5);
    storage.timeline.open({ term: 'def', epoch: 4, startSequence: 10 });
    expect(storage.timeline.list().map((e) => e.term)).to.deep.equal(['abc', 'def']);
  });
});
