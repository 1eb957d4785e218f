/**
 * `twinstar get`'s pure parts: what a replica entry shows (revision, TTL left, lease) and the
 * three renderings. The command against a real server is in test/integration/kv-cli.test.ts.
 */
import { expect } from 'chai';
import type { Entry } from '../../../src/kv/index.js';
import { renderRows, rowOf, type Row } from '../../../src/cli/get-command.js';

const entry = (key: string, sequence: number, properties = '', expiresAt = 0, body = 'v'): Entry => ({
  key,
  sequence,
  uuid: '',
  properties,
  body: Buffer.from(body),
  expiresAt,
});

describe('cli get: rows', () => {
  it('a synced entry: its sequence, and the time left to its deadline', () => {
    expect(rowOf(entry('/a', 7, 'ttl=30\n', 10_000), 4_000)).to.deep.equal({
      key: '/a',
      value: Buffer.from('v'),
      seq: 7,
      ttlRemainingMs: 6_000,
    });
  });

  it('a deadline already passed shows 0 left, not a negative time', () => {
    expect(rowOf(entry('/a', 7, '', 1_000), 5_000).ttlRemainingMs).to.equal(0);
  });

  it('an update applied live (no deadline) shows the ttl= it was written with', () => {
    expect(rowOf(entry('/a', 7, 'ttl=12\n'), 5_000).ttlRemainingMs).to.equal(12_000);
  });

  it('no ttl: no TTL; a lease= property is the lease; malformed properties are ignored', () => {
    expect(rowOf(entry('/a', 1), 0)).to.not.have.property('ttlRemainingMs');
    expect(rowOf(entry('/a', 1, 'lease=42\n'), 0).lease).to.equal('42');
    expect(rowOf(entry('/a', 1, 'garbage'), 0)).to.deep.equal({ key: '/a', value: Buffer.from('v'), seq: 1 });
  });
});

describe('cli get: renderings', () => {
  const rows: Row[] = [
    { key: '/a', value: Buffer.from('one'), seq: 3 },
    { key: '/b', value: Buffer.from([0xff, 0x00]), seq: 12, ttlRemainingMs: 4_100, lease: '9' },
  ];
  const shape = { w: 'simple' as const, keysOnly: false, base64: false, sequence: 20 };

  it('simple: key then value, a line each (etcdctl); --keys-only the keys', () => {
    expect(renderRows(rows.slice(0, 1), shape)).to.equal('/a\none\n');
    expect(renderRows(rows, { ...shape, keysOnly: true })).to.equal('/a\n/b\n');
  });

  it('table: KEY VALUE SEQ TTL (seconds, rounded up) and LEASE when a key has one', () => {
    const out = renderRows(rows, { ...shape, w: 'table', base64: true }).split('\n');
    expect(out[1]).to.equal('| KEY | VALUE | SEQ | TTL | LEASE |');
    expect(out[3]).to.equal('| /a  | b25l  |   3 |   - | -     |');
    expect(out[4]).to.equal('| /b  | /wA=  |  12 |   5 | 9     |');
  });

  it('table without leases and with --keys-only has no VALUE and no LEASE column', () => {
    const out = renderRows(rows.slice(0, 1), { ...shape, w: 'table', keysOnly: true }).split('\n');
    expect(out[1]).to.equal('| KEY | SEQ | TTL |');
  });

  it('json: the replica sequence, the count, and per key its seq, TTL left and lease when set', () => {
    expect(JSON.parse(renderRows(rows, { ...shape, w: 'json', base64: true }))).to.deep.equal({
      sequence: 20,
      count: 2,
      kvs: [
        { key: '/a', value: 'b25l', seq: 3 },
        { key: '/b', value: '/wA=', seq: 12, ttlRemainingMs: 4_100, lease: '9' },
      ],
    });
    const keys = JSON.parse(renderRows(rows, { ...shape, w: 'json', keysOnly: true })) as { kvs: object[] };
    expect(keys.kvs[0]).to.deep.equal({ key: '/a', seq: 3 });
  });
});
