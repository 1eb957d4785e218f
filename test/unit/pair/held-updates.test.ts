/**
 * The Clone follower's hold (HeldUpdates in src/kv/replica.ts), shared by the passive's
 * ReplicationSink and the client's Replica: hold while syncing, drop what the sync covered, apply
 * the rest in order, and say when it could not hold everything.
 */
import { expect } from 'chai';
import { HeldUpdates, type Entry } from '../../../src/kv/index.js';

const entry = (sequence: number): Entry => ({
  key: `k${sequence}`,
  sequence,
  uuid: '',
  properties: '',
  body: Buffer.from('v'),
  expiresAt: 0,
});
const seqs = (entries: Iterable<Entry>) => [...entries].map((e) => e.sequence);

describe('HeldUpdates (the follower algorithm shared by the passive and the client)', () => {
  it('releases, in arrival order, only what the sync did not cover', () => {
    const held = new HeldUpdates(10);
    for (const s of [3, 4, 5, 6]) held.hold(entry(s));
    expect(seqs(held.release(() => 4))).to.deep.equal([5, 6]);
    expect(held.size, 'the hold is empty once released').to.equal(0);
    expect(seqs(held.release(() => 0))).to.deep.equal([]);
  });

  it("compares each entry with the follower's sequence as it moves (a duplicate held twice applies once)", () => {
    const held = new HeldUpdates(10);
    for (const s of [5, 6, 6, 7]) held.hold(entry(s));
    let reached = 4;
    const applied: number[] = [];
    for (const e of held.release(() => reached)) {
      applied.push(e.sequence);
      reached = e.sequence;
    }
    expect(applied).to.deep.equal([5, 6, 7]);
  });

  it('a follower that stops applying half-way (a gap) leaves nothing held', () => {
    const held = new HeldUpdates(10);
    for (const s of [5, 7, 8]) held.hold(entry(s));
    for (const e of held.release(() => 4)) if (e.sequence === 7) break;
    expect(held.size).to.equal(0);
  });

  it('holds at most `limit` entries, keeps the first ones, and reports the overflow once', () => {
    const held = new HeldUpdates(3);
    for (let s = 1; s <= 5; s++) held.hold(entry(s));
    expect(held.size).to.equal(3);
    expect(held.consumeOverflow()).to.equal(true);
    expect(held.consumeOverflow()).to.equal(false);
    expect(seqs(held.release(() => 0))).to.deep.equal([1, 2, 3]);
  });

  it('clear() forgets what is held and the overflow', () => {
    const held = new HeldUpdates(1);
    held.hold(entry(1));
    held.hold(entry(2));
    held.clear();
    expect(held.size).to.equal(0);
    expect(held.consumeOverflow()).to.equal(false);
  });
});
