/**
 * The Model Six pending list (src/pair/pending.ts): CHP updates the passive holds until
 * the active's copy arrives, bounded by size and age.
 */
import { expect } from 'chai';
import { PendingList } from '../../../src/pair/pending.js';
import type { KvMsg } from '../../../src/wire/chp.js';
import { footprint } from '../../../src/wire/sizes.js';

function uuid(n: number): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(n + 1, 12);
  return b.toString('latin1');
}
function msg(key: string, id: string): KvMsg {
  return { key, sequence: 0, uuid: id, properties: '', body: Buffer.from('v') };
}
const keysOf = (items: { msg: KvMsg }[]) => items.map((i) => i.msg.key);

describe('PendingList', () => {
  it('holds added updates until matched by uuid', () => {
    const list = new PendingList(10, 1000);
    list.add(msg('/a', uuid(1)), 0, false);
    list.add(msg('/b', uuid(2)), 1, false);
    expect(list.size).to.equal(2);
    list.match(uuid(1));
    expect(list.size).to.equal(1);
    list.match(uuid(99)); // unknown: harmless
    expect(keysOf(list.drain())).to.deep.equal(['/b']);
  });

  it('does not add an update whose active copy already arrived', () => {
    const list = new PendingList(10, 1000);
    list.add(msg('/a', uuid(1)), 0, true);
    expect(list.size).to.equal(0);
    expect(list.drain()).to.deep.equal([]);
  });

  it('expire(now) drops items older than maxAgeMs (strictly) and counts them', () => {
    const list = new PendingList(10, 100);
    list.add(msg('/a', uuid(1)), 0, false);
    list.add(msg('/b', uuid(2)), 50, false);
    list.add(msg('/c', 'short'), 20, false);
    list.expire(100);
    expect(list.size).to.equal(3, 'exactly maxAgeMs old is kept');
    list.expire(121);
    expect(keysOf(list.drain())).to.deep.equal(['/b']);
    expect(list.dropped).to.equal(2);
  });

  it('a re-sent uuid does not shield older items from expiry', () => {
    // A client retrying a write re-sends it with its original uuid. The re-sent copy refreshes
    // receivedAt, but items received after the first copy must still expire on time.
    const list = new PendingList(10, 100);
    list.add(msg('/a', uuid(1)), 0, false);
    list.add(msg('/b', uuid(2)), 10, false);
    list.add(msg('/a', uuid(1)), 150, false); // retry of /a
    list.expire(160); // /b is 150 ms old, past maxAgeMs
    expect(keysOf(list.drain())).to.deep.equal(['/a']);
  });

  it('when full, a re-sent uuid (freshly received) is not dropped as the oldest', () => {
    const list = new PendingList(2, 1e9);
    list.add(msg('/a', uuid(1)), 0, false);
    list.add(msg('/b', uuid(2)), 10, false);
    list.add(msg('/a', uuid(1)), 20, false); // retry of /a: now the newest
    list.add(msg('/c', uuid(3)), 30, false); // over max: the oldest (/b) must go
    expect(keysOf(list.drain())).to.deep.equal(['/a', '/c']);
  });

  it('never holds more than max items: the oldest is dropped first', () => {
    const list = new PendingList(3, 1e9);
    list.add(msg('/1', uuid(1)), 1, false);
    list.add(msg('/2', 'anon'), 2, false);
    list.add(msg('/3', uuid(3)), 3, false);
    list.add(msg('/4', ''), 4, false);
    expect(list.size).to.equal(3);
    expect(list.dropped).to.equal(1);
    list.add(msg('/5', uuid(5)), 5, false);
    expect(keysOf(list.drain())).to.deep.equal(['/3', '/4', '/5']);
    expect(list.dropped).to.equal(2);
  });

  it('drain() returns everything in arrival order, foreign uuids included, and empties the list', () => {
    const list = new PendingList(10, 1e9);
    list.add(msg('/a', uuid(1)), 5, false);
    list.add(msg('/b', ''), 6, false);
    list.add(msg('/c', uuid(2)), 7, false);
    list.add(msg('/d', 'x'.repeat(5)), 8, false);
    list.add(msg('/e', 'y'.repeat(17)), 9, false);
    const drained = list.drain();
    expect(keysOf(drained)).to.deep.equal(['/a', '/b', '/c', '/d', '/e']);
    expect(drained.map((i) => i.receivedAt)).to.deep.equal([5, 6, 7, 8, 9]);
    expect(list.size).to.equal(0);
    expect(list.drain()).to.deep.equal([]);
  });

  it('foreign uuid sizes are held as anonymous items: never matched, never collapsed', () => {
    const list = new PendingList(10, 1e9);
    list.add(msg('/a', ''), 1, false);
    list.add(msg('/a', ''), 2, false);
    list.add(msg('/b', 'abcde'), 3, false);
    list.match('');
    list.match('abcde');
    expect(list.size).to.equal(3);
  });

  it('the same 16-byte uuid is held once', () => {
    const list = new PendingList(10, 1e9);
    list.add(msg('/a', uuid(1)), 1, false);
    list.add(msg('/a', uuid(1)), 2, false);
    expect(list.size).to.equal(1);
  });

  it('clear() empties without counting drops', () => {
    const list = new PendingList(10, 1e9);
    list.add(msg('/a', uuid(1)), 1, false);
    list.add(msg('/b', ''), 1, false);
    list.clear();
    expect(list.size).to.equal(0);
    expect(list.dropped).to.equal(0);
  });

  describe('byte budget', () => {
    const big = (key: string, id: string): KvMsg => ({ ...msg(key, id), body: Buffer.alloc(1000) });
    const each = footprint(big('/k0', uuid(0)));

    it('drops the oldest past the budget, counted as bytes, newest kept', () => {
      const list = new PendingList(1_000_000, 1e9, 3 * each);
      for (let i = 0; i < 10; i++) list.add(big(`/k${i}`, uuid(i)), i, false);
      expect(list.size).to.equal(3);
      expect(list.bytes).to.be.at.most(3 * each);
      expect(list.droppedBy).to.deep.equal({ count: 0, bytes: 7, age: 0 });
      expect(keysOf(list.drain())).to.deep.equal(['/k7', '/k8', '/k9']);
      expect(list.bytes).to.equal(0);
    });

    it('bytes follow matches, re-sends, anonymous updates and expiry', () => {
      const list = new PendingList(100, 100, Infinity);
      list.add(big('/k1', uuid(1)), 0, false);
      list.add(big('/k1', uuid(1)), 1, false); // re-sent: held once
      list.add(big('/k2', ''), 2, false);
      expect(list.bytes).to.equal(2 * each - uuid(1).length);
      list.match(uuid(1));
      expect(list.bytes).to.equal(each - uuid(1).length);
      list.expire(1000);
      expect(list.bytes).to.equal(0);
      expect(list.droppedBy.age).to.equal(1);
    });
  });
});
