/**
 * DedupeRecords (src/storage/dedupe-records.ts), pure: which stored dedupe records go with each
 * new one (past the horizon, or beyond the size bound), and the record encoding round trip.
 */
import { expect } from 'chai';
import { DedupeRecords } from '../../../src/storage/dedupe-records.js';
import { RecordError } from '../../../src/storage/records.js';

const record = (time: number, sequence: number) => ({
  time,
  sequence,
  uuid: `u${sequence}`.padEnd(16, '\xff'),
});

describe('DedupeRecords', () => {
  it('drops the records past the horizon at the time of the new one, oldest first', () => {
    const records = new DedupeRecords(100, 1_000);
    expect(records.add(record(0, 1))).to.deep.equal([]);
    expect(records.add(record(500, 2))).to.deep.equal([]);
    expect(records.add(record(1_000, 3)), 'exactly the horizon is past it').to.deep.equal([[0, 1]]);
    expect(records.add(record(2_100, 4))).to.deep.equal([
      [500, 2],
      [1_000, 3],
    ]);
    expect(records.size).to.equal(1);
  });

  it('expire(now) gives the records past the horizon with no new record, oldest first', () => {
    const records = new DedupeRecords(100, 1_000);
    records.add(record(0, 1));
    records.add(record(400, 2));
    expect(records.expire(999)).to.deep.equal([]);
    expect(records.expire(1_400)).to.deep.equal([
      [0, 1],
      [400, 2],
    ]);
    expect(records.size).to.equal(0);
    expect(records.expire(5_000)).to.deep.equal([]);
  });

  it('drops the oldest beyond the size bound, and takes loaded records first', () => {
    const records = new DedupeRecords(2, 60_000);
    records.restore(record(1, 1));
    records.restore(record(2, 2));
    expect(records.add(record(3, 3))).to.deep.equal([[1, 1]]);
    expect(records.add(record(4, 4))).to.deep.equal([[2, 2]]);
    expect(records.size).to.equal(2);
  });

  it('encodes a record under its key and refuses one whose bytes changed', () => {
    const r = record(1_700_000_000_123, 42);
    const sealed = DedupeRecords.encode(r);
    expect(DedupeRecords.decode(DedupeRecords.key(r), sealed)).to.deep.equal(r);
    expect(() => DedupeRecords.decode([1_700_000_000_123, 43], sealed), 'another key').to.throw(RecordError);
    sealed[sealed.length - 1]! ^= 1;
    expect(() => DedupeRecords.decode(DedupeRecords.key(r), sealed)).to.throw(RecordError, /checksum/);
    expect(() => DedupeRecords.decode('x', sealed)).to.throw(RecordError, /layout/);
  });
});
