/**
 * The event bus's part of the native codec (src/wire/native-events.ts through native.ts):
 * byte-exact vectors, round trips, and every malformed case refused with a NativeMsgError and its
 * reason (never anything else thrown).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  EVENT_ACK_KINDS,
  isNativeReply,
  Native,
  NativeMsgError,
  type EventAck,
  type NativeReply,
  type SnapshotSocketRequest,
} from '../../../src/wire/native.js';
import { DEFAULT_LIMITS, KvMsgError, type DecodeReason } from '../../../src/wire/chp.js';
import { type PackedEntry } from '../../../src/wire/packed.js';
import {
  DELIVERED_HEX,
  EVENT_REPLIES,
  EVENT_REQUESTS,
  hex,
  PUBLISHED_HEX,
  RID,
  SID,
} from './event-vectors.js';

const bytes = (frames: Buffer[]) => frames.map((f) => f.toString('hex'));
const buffers = (frames: string[]) => frames.map((f) => Buffer.from(f, 'hex'));

function refusal(fn: () => unknown): NativeMsgError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(NativeMsgError);
    expect(error).to.be.instanceOf(KvMsgError);
    return error as NativeMsgError;
  }
  throw new Error('decoded without an error');
}
const reasonOf = (fn: () => unknown): DecodeReason => refusal(fn).reason;

const request = (...frames: string[]) => decodeRequest(buffers(frames));
const reply = (...frames: string[]) => decodeReply(buffers(frames));
const ack = (sequence: string, kind: string, delay = '00000000') => sequence + kind + delay;

const event = fc.record({
  key: fc.string({ minLength: 1, maxLength: 20 }),
  sequence: fc.integer({ min: 0, max: 2 ** 52 }),
  uuid: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((u) => Buffer.from(u).toString('latin1')),
  properties: fc.constantFrom('', 'h=1\n', 'a=b\nc=d\n'),
  body: fc.uint8Array({ maxLength: 50 }).map((u) => Buffer.from(u)),
  expiresAt: fc.constant(0),
});
const nameValues = fc.dictionary(
  fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_-]{0,10}$/),
  fc.stringMatching(/^[^\n]{0,12}$/),
  { maxKeys: 5 },
);
const acks = fc.array(
  fc.record({
    sequence: fc.integer({ min: 0, max: 2 ** 52 }),
    kind: fc.constantFrom(...EVENT_ACK_KINDS),
    delayMs: fc.nat({ max: 0xffff_ffff }),
  }),
  { maxLength: 6 },
);

describe('wire/native: the event bus messages', () => {
  it('the Native constant names each event command', () => {
    expect([
      Native.EVENT_PUBLISH,
      Native.EVENT_SUBSCRIBE,
      Native.EVENT_UNSUBSCRIBE,
      Native.EVENT_ACK,
      Native.EVENT_OK,
      Native.EVENT,
    ]).to.deep.equal(['TEPUB', 'TESUB', 'TEUNSUB', 'TEACK', 'TEOK', 'TEVT']);
  });

  describe('requests', () => {
    for (const v of EVENT_REQUESTS) {
      it(`${v.name}: encodes to the exact bytes and decodes back`, () => {
        expect(bytes(encodeRequest(v.message))).to.deep.equal(v.frames);
        expect(decodeRequest(buffers(v.frames))).to.deep.equal(v.message);
      });
    }

    it('any TEPUB, TESUB, TEUNSUB and TEACK round-trip', () => {
      fc.assert(
        fc.property(
          fc.nat({ max: 0xffffffff }),
          fc.nat({ max: 0xffffffff }),
          fc.array(event, { maxLength: 5 }),
          fc.string({ maxLength: 30 }),
          nameValues,
          acks,
          (reqId, subId, events, pattern, options, acks: EventAck[]) => {
            const all: SnapshotSocketRequest[] = [
              { command: 'TEPUB', reqId, events: events.map((e) => ({ ...e, sequence: 0 })) },
              { command: 'TESUB', reqId, subId, pattern, options },
              { command: 'TEUNSUB', reqId, subId },
              { command: 'TEACK', reqId, subId, acks },
            ];
            for (const message of all) expect(decodeRequest(encodeRequest(message))).to.deep.equal(message);
          },
        ),
      );
    });

    it('refuses one frame too many or too few, and a bad request id, with the command named', () => {
      for (const v of EVENT_REQUESTS) {
        const frames = buffers(v.frames);
        expect(
          reasonOf(() => decodeRequest([...frames, Buffer.alloc(0)])),
          `${v.name} + 1`,
        ).to.equal('frame-count');
        expect(
          reasonOf(() => decodeRequest(frames.slice(0, -1))),
          `${v.name} - 1`,
        ).to.equal('frame-count');
        const badId = [frames[0]!, Buffer.alloc(3), ...frames.slice(2)];
        const error = refusal(() => decodeRequest(badId));
        expect(error.reason, `${v.name} with a 3-byte id`).to.equal('frame-count');
        expect(error.command).to.equal(v.message.command);
      }
    });

    it('a subscription id that is not 4 bytes is field-invalid, with the request id known', () => {
      for (const frames of [
        [hex('TESUB'), RID, '000007', hex('>'), ''],
        [hex('TEUNSUB'), RID, '0000000007'],
        [hex('TEACK'), RID, '', ''],
      ]) {
        const error = refusal(() => request(...frames));
        expect(error.reason).to.equal('field-invalid');
        expect(error.reqId).to.equal(42);
      }
    });

    it('TEPUB: a malformed batch and the batch limits', () => {
      expect(reasonOf(() => request(hex('TEPUB'), RID, PUBLISHED_HEX.slice(0, -2)))).to.equal(
        'batch-truncated',
      );
      const pub = (limits: object) =>
        decodeRequest(buffers([hex('TEPUB'), RID, PUBLISHED_HEX + PUBLISHED_HEX]), {
          limits: { ...DEFAULT_LIMITS, ...limits },
        });
      expect(pub({})).to.have.property('events').with.length(2);
      expect(reasonOf(() => pub({ maxBatchEntries: 1 }))).to.equal('batch-too-large');
      expect(reasonOf(() => pub({ maxBatchBytes: PUBLISHED_HEX.length / 2 }))).to.equal('batch-too-large');
      expect(reasonOf(() => pub({ maxValueBytes: 1 }))).to.equal('body-too-large');
      const error = refusal(() => pub({ maxBatchEntries: 1 }));
      expect([error.command, error.reqId]).to.deep.equal(['TEPUB', 42]);
    });

    it('TESUB: the pattern and the options are checked for syntax and size only', () => {
      // the pattern's wildcard rules are the server's: an empty or odd pattern decodes
      expect(request(hex('TESUB'), RID, SID, '', '')).to.deep.include({ pattern: '' });
      expect(request(hex('TESUB'), RID, SID, hex('a..b'), '')).to.deep.include({ pattern: 'a..b' });
      const limits = { ...DEFAULT_LIMITS, maxKeyBytes: 3, maxPropertiesBytes: 8, maxProperties: 1 };
      const sub = (pattern: string, options: string) =>
        decodeRequest(buffers([hex('TESUB'), RID, SID, pattern, options]), { limits });
      expect(sub(hex('a.b'), hex('a=1\n'))).to.deep.include({ pattern: 'a.b', options: { a: '1' } });
      expect(reasonOf(() => sub(hex('a.bc'), ''))).to.equal('key-too-long');
      expect(reasonOf(() => sub('ff', ''))).to.equal('key-encoding');
      expect(reasonOf(() => sub(hex('a'), hex('a=1\nb=2\n')))).to.equal('too-many-properties');
      expect(reasonOf(() => sub(hex('a'), hex('abcdef=1\n')))).to.equal('properties-too-long');
      expect(reasonOf(() => sub(hex('a'), hex('a=1')))).to.equal('properties-syntax');
      expect(reasonOf(() => sub(hex('a'), hex('novalue\n')))).to.equal('properties-syntax');
      expect(reasonOf(() => sub(hex('a'), hex('=1\n')))).to.equal('properties-syntax');
      expect(reasonOf(() => sub(hex('a'), 'ff0a'))).to.equal('properties-syntax');
      // '=' in a value is kept: only the first one separates the name
      expect(sub(hex('a'), hex('f=a=b\n'))).to.deep.include({ options: { f: 'a=b' } });
    });

    it('TEACK: a length not a multiple of 13, an unknown kind, a sequence out of range, too many acks', () => {
      const one = ack('0000000000000009', '00');
      expect(request(hex('TEACK'), RID, SID, '')).to.deep.include({ acks: [] });
      expect(reasonOf(() => request(hex('TEACK'), RID, SID, one.slice(0, -2)))).to.equal('field-invalid');
      expect(reasonOf(() => request(hex('TEACK'), RID, SID, one + '00'))).to.equal('field-invalid');
      expect(reasonOf(() => request(hex('TEACK'), RID, SID, ack('0000000000000009', '05')))).to.equal(
        'field-invalid',
      );
      expect(reasonOf(() => request(hex('TEACK'), RID, SID, ack('0000000000000009', 'ff')))).to.equal(
        'field-invalid',
      );
      expect(reasonOf(() => request(hex('TEACK'), RID, SID, ack('ffffffffffffffff', '00')))).to.equal(
        'sequence-range',
      );
      expect(reasonOf(() => request(hex('TEACK'), RID, SID, ack('0010000000000001', '00')))).to.equal(
        'sequence-range',
      );
      const limits = { ...DEFAULT_LIMITS, maxBatchEntries: 2 };
      const teack = (n: number) =>
        decodeRequest(buffers([hex('TEACK'), RID, SID, one.repeat(n)]), { limits });
      expect(teack(2)).to.have.property('acks').with.length(2);
      expect(reasonOf(() => teack(3))).to.equal('batch-too-large');
    });
  });

  describe('replies', () => {
    for (const v of EVENT_REPLIES) {
      it(`${v.name}: encodes to the exact bytes and decodes back`, () => {
        expect(bytes(encodeReply(v.message))).to.deep.equal(v.frames);
        expect(decodeReply(buffers(v.frames))).to.deep.equal(v.message);
      });
    }

    it('isNativeReply knows TEOK and TEVT, and not the requests', () => {
      for (const v of EVENT_REPLIES) expect(isNativeReply(v.message.command), v.name).to.equal(true);
      for (const v of EVENT_REQUESTS) expect(isNativeReply(v.message.command), v.name).to.equal(false);
    });

    it('any TEOK and TEVT round-trip', () => {
      fc.assert(
        fc.property(
          fc.nat({ max: 0xffffffff }),
          nameValues,
          fc.array(fc.tuple(event, fc.integer({ min: 1, max: 0xffffffff })), { maxLength: 5 }),
          (id, info, delivered) => {
            const ok: NativeReply = { command: 'TEOK', reqId: id, info };
            expect(decodeReply(encodeReply(ok))).to.deep.equal(ok);
            const events: PackedEntry[] = delivered.map(([e]) => e);
            const evt: NativeReply = {
              command: 'TEVT',
              subId: id,
              events,
              counts: delivered.map(([, c]) => c),
            };
            expect(decodeReply(encodeReply(evt))).to.deep.equal(evt);
          },
        ),
      );
    });

    it('refuses one frame too many or too few, and a bad id', () => {
      for (const v of EVENT_REPLIES) {
        const frames = buffers(v.frames);
        expect(
          reasonOf(() => decodeReply([...frames, Buffer.alloc(0)])),
          `${v.name} + 1`,
        ).to.equal('frame-count');
        expect(
          reasonOf(() => decodeReply(frames.slice(0, -1))),
          `${v.name} - 1`,
        ).to.equal('frame-count');
        expect(reasonOf(() => decodeReply([frames[0]!, Buffer.alloc(5), ...frames.slice(2)]))).to.equal(
          'frame-count',
        );
      }
    });

    it('TEVT: counts that do not match the events, a count of 0, a malformed batch', () => {
      const evt = (batch: string, counts: string) => () => reply(hex('TEVT'), SID, batch, counts);
      expect(reasonOf(evt(DELIVERED_HEX, ''))).to.equal('field-invalid');
      expect(reasonOf(evt(DELIVERED_HEX, '0000000100000001'))).to.equal('field-invalid');
      expect(reasonOf(evt(DELIVERED_HEX, '000001'))).to.equal('field-invalid');
      expect(reasonOf(evt(DELIVERED_HEX, '00000000'))).to.equal('field-invalid');
      expect(reasonOf(evt('', '00000001'))).to.equal('field-invalid');
      expect(reasonOf(evt(DELIVERED_HEX.slice(0, -2), '00000001'))).to.equal('batch-truncated');
      expect(reply(hex('TEVT'), SID, '', '')).to.deep.equal({
        command: 'TEVT',
        subId: 7,
        events: [],
        counts: [],
      });
      const error = refusal(evt(DELIVERED_HEX, ''));
      expect(error.command).to.equal('TEVT');
      const limits = { ...DEFAULT_LIMITS, maxValueBytes: 1 };
      expect(
        reasonOf(() => decodeReply(buffers([hex('TEVT'), SID, DELIVERED_HEX, '00000001']), limits)),
      ).to.equal('body-too-large');
    });

    it('TEOK: info that breaks the name=value syntax', () => {
      expect(reasonOf(() => reply(hex('TEOK'), RID, hex('start=9')))).to.equal('properties-syntax');
      expect(reasonOf(() => reply(hex('TEOK'), RID, hex('x\n')))).to.equal('properties-syntax');
    });
  });

  it('any frames after an event command decode or throw only NativeMsgError', () => {
    const commands = ['TEPUB', 'TESUB', 'TEUNSUB', 'TEACK', 'TEOK', 'TEVT'];
    const frame = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc
        .constantFrom(RID, SID, PUBLISHED_HEX, DELIVERED_HEX, '00000001', ack('0000000000000001', '04'))
        .map((h) => Uint8Array.from(Buffer.from(h, 'hex'))),
    );
    fc.assert(
      fc.property(fc.constantFrom(...commands), fc.array(frame, { maxLength: 6 }), (command, rest) => {
        const frames = [Buffer.from(command), ...rest.map((u) => Buffer.from(u))];
        for (const decode of [decodeRequest, decodeReply]) {
          try {
            decode(frames);
          } catch (error) {
            expect(error).to.be.instanceOf(NativeMsgError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
