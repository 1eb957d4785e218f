/**
 * The KV-parity part of the native codec (issue 17; src/wire/native-kv.ts through native.ts):
 * byte-exact vectors, round trips, and every malformed case refused with a NativeMsgError and its
 * reason.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  isNativeReply,
  Native,
  NativeMsgError,
  type LeaseOp,
  type NativeReply,
  type SnapshotSocketRequest,
} from '../../../src/wire/native.js';
import { KvMsgError, type DecodeReason } from '../../../src/wire/chp.js';
import { hex, RID } from './event-vectors.js';
import { KV_REPLIES, KV_REQUESTS } from './kv-vectors.js';

const bytes = (frames: Buffer[]) => frames.map((f) => f.toString('hex'));
const buffers = (frames: string[]) => frames.map((f) => Buffer.from(f, 'hex'));

function reasonOf(fn: () => unknown): DecodeReason {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(NativeMsgError);
    expect(error).to.be.instanceOf(KvMsgError);
    return (error as NativeMsgError).reason;
  }
  throw new Error('decoded without an error');
}
const request = (...frames: string[]) => decodeRequest(buffers(frames));
const reply = (...frames: string[]) => decodeReply(buffers(frames));
const ID = '0000000000000007';

describe('wire/native: the KV-parity messages', () => {
  it('the Native constant names each KV-parity command', () => {
    expect([Native.LEASE, Native.LEASE_OK, Native.WATCH]).to.deep.equal(['TLEASE', 'TLEASEOK', 'TWATCH']);
    expect(isNativeReply('TLEASEOK')).to.equal(true);
    expect(isNativeReply('TLEASE')).to.equal(false);
    expect(isNativeReply('TWATCH')).to.equal(false);
  });

  for (const v of KV_REQUESTS)
    it(`${v.name}: encodes to the exact bytes and decodes back`, () => {
      expect(bytes(encodeRequest(v.message))).to.deep.equal(v.frames);
      expect(decodeRequest(buffers(v.frames))).to.deep.equal(v.message);
    });

  for (const v of KV_REPLIES)
    it(`${v.name}: encodes to the exact bytes and decodes back`, () => {
      expect(bytes(encodeReply(v.message))).to.deep.equal(v.frames);
      expect(decodeReply(buffers(v.frames))).to.deep.equal(v.message);
    });

  it('any TLEASE, TWATCH, TLEASEOK and conflict round-trip', () => {
    const op = fc.constantFrom<LeaseOp>('grant', 'keepalive', 'revoke', 'list');
    const seq = fc.integer({ min: 0, max: 2 ** 52 });
    const ms = fc.nat({ max: 0xffff_ffff });
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffff_ffff }),
        op,
        seq,
        ms,
        fc.string({ maxLength: 20 }),
        (reqId, o, id, t, p) => {
          const lease: SnapshotSocketRequest = { command: 'TLEASE', reqId, op: o, id, ttlMs: t };
          expect(decodeRequest(encodeRequest(lease))).to.deep.equal(lease);
          const watch: SnapshotSocketRequest = { command: 'TWATCH', reqId, prefix: p, fromSequence: id };
          expect(decodeRequest(encodeRequest(watch))).to.deep.equal(watch);
        },
      ),
    );
    const info = fc.record({ id: seq, ttlMs: ms, remainingMs: ms, keys: fc.nat() });
    fc.assert(
      fc.property(
        seq,
        ms,
        ms,
        fc.option(fc.array(info, { maxLength: 4 }), { nil: undefined }),
        (id, t, r, l) => {
          const ok: NativeReply = {
            command: 'TLEASEOK',
            reqId: 1,
            id,
            ttlMs: t,
            remainingMs: r,
            ...(l === undefined ? {} : { leases: l }),
          };
          expect(decodeReply(encodeReply(ok))).to.deep.equal(ok);
        },
      ),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 0xffff }), seq), { maxLength: 5 }), (pairs) => {
        const conflict: NativeReply = {
          command: 'TERROR',
          reqId: 3,
          reason: 'conflict',
          message: 'm',
          refused: pairs.map(([i]) => i),
          current: pairs.map(([, s]) => s),
        };
        expect(decodeReply(encodeReply(conflict))).to.deep.equal(conflict);
      }),
    );
  });

  it('refuses a malformed TLEASE: frame count, op, id and ttlMs', () => {
    const ok = [hex('TLEASE'), RID, hex('grant'), ID, '00000bb8'];
    expect(request(...ok)).to.include({ op: 'grant', id: 7, ttlMs: 3000 });
    expect(reasonOf(() => request(...ok.slice(0, 4)))).to.equal('frame-count');
    expect(reasonOf(() => request(...ok, ''))).to.equal('frame-count');
    expect(reasonOf(() => request(ok[0]!, RID, hex('renew'), ID, '00000bb8'))).to.equal('field-invalid');
    expect(reasonOf(() => request(ok[0]!, RID, '', ID, '00000bb8'))).to.equal('field-invalid');
    expect(reasonOf(() => request(ok[0]!, RID, hex('grant'), '0007', '00000bb8'))).to.equal('sequence-size');
    expect(reasonOf(() => request(ok[0]!, RID, hex('grant'), 'ff00000000000000', '00000bb8'))).to.equal(
      'sequence-range',
    );
    expect(reasonOf(() => request(ok[0]!, RID, hex('grant'), ID, '0bb8'))).to.equal('field-invalid');
    expect(reasonOf(() => request(ok[0]!, '2a', hex('grant'), ID, '00000bb8'))).to.equal('frame-count');
  });

  it('refuses a malformed TWATCH: frame count, prefix length, sequence', () => {
    const ok = [hex('TWATCH'), RID, hex('/s/'), ID];
    expect(request(...ok)).to.include({ prefix: '/s/', fromSequence: 7 });
    expect(reasonOf(() => request(...ok.slice(0, 3)))).to.equal('frame-count');
    expect(reasonOf(() => request(...ok, ID))).to.equal('frame-count');
    expect(reasonOf(() => request(ok[0]!, RID, hex('/s/'), '07'))).to.equal('sequence-size');
    expect(reasonOf(() => decodeRequest(buffers(ok), { maxSubtreeBytes: 2 }))).to.equal('subtree-too-long');
  });

  it('refuses a malformed TLEASEOK: frame count, fields, list JSON', () => {
    const ok = [hex('TLEASEOK'), RID, ID, '00000bb8', '00000001', ''];
    expect(reply(...ok)).to.include({ id: 7, ttlMs: 3000, remainingMs: 1 });
    expect(reasonOf(() => reply(...ok.slice(0, 5)))).to.equal('frame-count');
    expect(reasonOf(() => reply(...ok, ''))).to.equal('frame-count');
    expect(reasonOf(() => reply(ok[0]!, RID, '07', '00000bb8', '00000001', ''))).to.equal('sequence-size');
    expect(reasonOf(() => reply(ok[0]!, RID, ID, 'bb8', '00000001', ''))).to.equal('field-invalid');
    expect(reasonOf(() => reply(ok[0]!, RID, ID, '00000bb8', '0001', ''))).to.equal('field-invalid');
    for (const json of ['[', '{}', '[1]', '[{"id":1}]', '[{"id":-1,"ttlMs":1,"remainingMs":1,"keys":0}]'])
      expect(
        reasonOf(() => reply(...ok.slice(0, 5), hex(json))),
        json,
      ).to.equal('field-invalid');
  });

  it("refuses a malformed 'conflict' or 'lease-not-found' TERROR", () => {
    const head = [hex('TERROR'), RID, hex('conflict'), hex('m')];
    // both extra frames or neither: refused alone, or current alone (a count mismatch), is refused
    expect(reply(...head)).to.deep.equal({ command: 'TERROR', reqId: 42, reason: 'conflict', message: 'm' });
    expect(reasonOf(() => reply(...head, '00000000'))).to.equal('frame-count');
    expect(reasonOf(() => reply(...head, '00000000', ''))).to.equal('field-invalid');
    expect(reasonOf(() => reply(...head, '000000', ID))).to.equal('field-invalid');
    expect(reasonOf(() => reply(...head, '00000000', 'ff00000000000000'))).to.equal('sequence-range');
    const notFound = [hex('TERROR'), RID, hex('lease-not-found'), hex('m')];
    expect(reply(...notFound, '00000003')).to.deep.include({ refused: [3] });
    expect(reasonOf(() => reply(...notFound, '0003'))).to.equal('field-invalid');
    expect(reasonOf(() => reply(...notFound, '00000003', ID))).to.equal('frame-count');
  });
});
