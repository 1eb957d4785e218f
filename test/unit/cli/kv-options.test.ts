/**
 * The issue 17 options of set, del, watch and lease, checked with plain values: conditions, the
 * conflict line, --rev as a fromSequence, and `lease ls` output.
 */
import { expect } from 'chai';
import { UsageError } from '../../../src/cli/args.js';
import { conditionsOf, conflictLine, fromSequenceOf, parseWhole } from '../../../src/cli/kv-options.js';
import { formatLeases } from '../../../src/cli/lease-command.js';

describe('cli kv options', () => {
  it('--create is ifSequence 0; --if-seq N is N; --lease ID is the lease', () => {
    expect(conditionsOf({})).to.deep.equal({});
    expect(conditionsOf({ create: true })).to.deep.equal({ ifSequence: 0 });
    expect(conditionsOf({ 'if-seq': '42', lease: '7' })).to.deep.equal({ ifSequence: 42, lease: 7 });
  });

  it('refuses --create with --if-seq, and sequences or lease ids that are not whole numbers >= 1', () => {
    expect(() => conditionsOf({ create: true, 'if-seq': '3' })).to.throw(UsageError, /do not go together/);
    for (const bad of ['0', '-1', '1.5', 'abc', '', '99999999999999999'])
      expect(() => conditionsOf({ 'if-seq': bad }), bad).to.throw(UsageError, /--if-seq takes/);
    expect(() => conditionsOf({ lease: '0' })).to.throw(UsageError, /--lease takes a lease id/);
    expect(() => parseWhole('ID', '9007199254740993', 1, 'a lease id')).to.throw(UsageError);
  });

  it('--rev SEQ includes SEQ (etcdctl): the client replays after SEQ - 1', () => {
    expect(fromSequenceOf({})).to.equal(undefined);
    expect(fromSequenceOf({ rev: '1' })).to.equal(0);
    expect(fromSequenceOf({ rev: '120' })).to.equal(119);
    expect(() => fromSequenceOf({ rev: '0' })).to.throw(UsageError, /--rev/);
  });

  it('a conflict line says what the key is at, against what was asked', () => {
    expect(conflictLine('/k', 0, 12)).to.equal('conflict: /k already exists, at sequence 12');
    expect(conflictLine('/k', 5, 12)).to.equal('conflict: /k is at sequence 12, not 5');
    expect(conflictLine('/k', 5, 0)).to.equal('conflict: /k does not exist, not 5');
  });
});

describe('cli lease ls', () => {
  const leases = [
    { id: 9, ttlMs: 60_000, remainingMs: 41_200, keys: 2 },
    { id: 3, ttlMs: 5_000, remainingMs: 0, keys: 0 },
  ];

  it('simple: a count then the ids, in order (etcdctl lease list)', () => {
    expect(formatLeases(leases, 'simple')).to.equal('found 2 leases\n3\n9\n');
    expect(formatLeases([], 'simple')).to.equal('found 0 leases\n');
  });

  it('table: ID, TTL, REMAINING (seconds, rounded up) and KEYS', () => {
    const rows = formatLeases(leases, 'table').split('\n');
    expect(rows[1]).to.equal('| ID | TTL | REMAINING | KEYS |');
    expect(rows[3]).to.equal('| 3  |  5s |        0s |    0 |');
    expect(rows[4]).to.equal('| 9  | 60s |       42s |    2 |');
  });

  it('json: the count and each lease as the server said', () => {
    expect(JSON.parse(formatLeases(leases, 'json'))).to.deep.equal({
      count: 2,
      leases: [leases[1], leases[0]],
    });
  });
});
