/**
 * Messages between the two nodes (src/wire/peer.ts): every PeerMessage type
 * round-trips, and malformed input is refused with a KvMsgError and a reason.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  encodePeerMessage,
  decodePeerMessage,
  packEntries,
  unpackEntries,
  type Heartbeat,
  type PeerMessage,
} from '../../../src/wire/peer.js';
import {
  DEFAULT_LIMITS,
  MAX_SEQUENCE,
  KvMsgError,
  encodeSequence,
  type DecodeReason,
} from '../../../src/wire/chp.js';
import { type PackedEntry } from '../../../src/wire/packed.js';

const UUID = Buffer.from('00112233445566778899aabbccddeeff', 'hex').toString('latin1');

const entries: PackedEntry[] = [
  {
    key: '/a',
    sequence: 41,
    uuid: UUID,
    properties: 'ttl=5\n',
    body: Buffer.from('x'),
    expiresAt: 1_700_000_005_000,
  },
  { key: '/b', sequence: 42, uuid: '', properties: '', body: Buffer.alloc(0), expiresAt: 0 },
];
const timeline = [
  { term: 'aaaa', epoch: 1, startSequence: 1 },
  { term: 'bbbb', epoch: 2, startSequence: 40 },
];
const heartbeat: Heartbeat = {
  name: 'primary',
  role: 'primary',
  state: 'ACTIVE',
  epoch: 2,
  sequence: 42,
  term: 'bbbb',
  timeline,
  heartbeatMs: 100,
  failoverMs: 500,
  history: true,
  fenced: false,
  synced: true,
};

const ALL: PeerMessage[] = [
  { type: 'heartbeat', heartbeat },
  { type: 'data', term: 'bbbb', batch: packEntries(entries) },
  {
    type: 'data',
    term: 'dddd',
    batch: packEntries(entries),
    acks: [{ identity: Buffer.from('tABCDEFGHIJKLMNO'), reqId: 3, sequences: [5, 6] }],
  },
  { type: 'request', streamId: 7, fromSequence: 2 ** 40 + 5, term: 'aaaa' },
  { type: 'snapshot-chunk', streamId: 0xffffffff, batch: packEntries(entries) },
  { type: 'snapshot-end', streamId: 3, sequence: 42, timeline },
  { type: 'resume-end', streamId: 4, sequence: 0, timeline: [] },
  { type: 'ack', sequence: 42, term: 'bbbb' },
  {
    type: 'relay',
    term: 'cccc',
    acks: [
      { identity: Buffer.from('tABCDEFGHIJKLMNO'), reqId: 0xffffffff, sequences: [1, 2 ** 52] },
      { identity: Buffer.from([0x74]), reqId: 0, sequences: [] },
    ],
  },
];

/** Compares with bodies as hex so Buffer identity does not matter. */
function plain(msg: PeerMessage): unknown {
  return JSON.parse(
    JSON.stringify(msg, (_k, v: unknown) =>
      v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer'
        ? Buffer.from((v as { data: number[] }).data).toString('hex')
        : v,
    ),
  );
}

function reasonOf(frames: Buffer[]): DecodeReason {
  try {
    decodePeerMessage(frames);
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(KvMsgError);
    return (error as KvMsgError).reason;
  }
  expect.fail(`decoded ${frames.map((f) => f.toString('latin1')).join('|')} without error`);
}

const tag = (s: string) => Buffer.from(s);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

describe('peer protocol', () => {
  describe('round trips', () => {
    for (const msg of ALL) {
      it(`${msg.type} decodes to what was encoded`, () => {
        const frames = encodePeerMessage(msg);
        expect(frames.every((f) => Buffer.isBuffer(f))).to.equal(true);
        expect(plain(decodePeerMessage(frames))).to.deep.equal(plain(msg));
      });
    }

    it('uses the documented tags and frame counts', () => {
      const shapes = ALL.map((m) => {
        const frames = encodePeerMessage(m);
        return [frames[0]!.toString(), frames.length];
      });
      expect(shapes).to.deep.equal([
        ['TSHB', 2],
        ['TRDATA', 3],
        ['TRDATA', 4],
        ['TRREQ', 4],
        ['TRSNAP', 3],
        ['TRSNAPEND', 4],
        ['TRRESUMED', 4],
        ['TRACK', 3],
        ['TRRELAY', 3],
      ]);
    });

    it('fast-check: heartbeats with arbitrary field values round-trip', () => {
      const hbArb = fc.record({
        name: fc.string({ maxLength: 20 }),
        role: fc.constantFrom('primary' as const, 'backup' as const),
        state: fc.constantFrom('PRIMARY' as const, 'BACKUP' as const, 'ACTIVE' as const, 'PASSIVE' as const),
        epoch: fc.integer({ min: 0, max: MAX_SEQUENCE }),
        sequence: fc.integer({ min: 0, max: MAX_SEQUENCE }),
        term: fc.string({ maxLength: 12 }),
        timeline: fc.array(
          fc.record({
            term: fc.string({ maxLength: 12 }),
            epoch: fc.integer({ min: 0, max: MAX_SEQUENCE }),
            startSequence: fc.integer({ min: 0, max: MAX_SEQUENCE }),
          }),
          { maxLength: 4 },
        ),
        heartbeatMs: fc.integer({ min: 1, max: 10_000 }),
        failoverMs: fc.integer({ min: 1, max: 100_000 }),
        synced: fc.boolean(),
        history: fc.boolean(),
        fenced: fc.boolean(),
      });
      fc.assert(
        fc.property(hbArb, (hb) => {
          const back = decodePeerMessage(encodePeerMessage({ type: 'heartbeat', heartbeat: hb }));
          expect(back).to.deep.equal({ type: 'heartbeat', heartbeat: hb });
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('refusals', () => {
    it('an unknown or missing tag is unknown-command', () => {
      expect(reasonOf([tag('NOPE'), json({})])).to.equal('unknown-command');
      expect(reasonOf([])).to.equal('unknown-command');
      expect(reasonOf([Buffer.alloc(0)])).to.equal('unknown-command');
      expect(reasonOf([tag('tshb'), json(heartbeat)])).to.equal('unknown-command');
    });

    it('a wrong frame count for any tag is frame-count', () => {
      for (const msg of ALL) {
        const frames = encodePeerMessage(msg);
        // data without its optional acknowledgements frame is data without acknowledgements
        if (!(msg.type === 'data' && msg.acks))
          expect(reasonOf(frames.slice(0, -1)), `${msg.type} short`).to.equal('frame-count');
        expect(reasonOf([...frames, Buffer.alloc(0)]), `${msg.type} long`).to.equal('frame-count');
      }
      const data = encodePeerMessage(ALL[1]!);
      expect(reasonOf([...data, Buffer.alloc(0)]), 'an empty acknowledgements frame').to.equal('frame-count');
    });

    it('a heartbeat that is not JSON is refused with properties-syntax', () => {
      for (const bad of ['', '{', 'not json', '\xff\xfe']) {
        expect(reasonOf([tag('TSHB'), Buffer.from(bad, 'latin1')]), JSON.stringify(bad)).to.equal(
          'properties-syntax',
        );
      }
    });

    it('a heartbeat with a missing or mistyped field is refused with properties-syntax', () => {
      const broken: unknown[] = [
        null,
        42,
        'ACTIVE',
        [],
        { ...heartbeat, role: 'single' },
        { ...heartbeat, state: 'LEADER' },
        { ...heartbeat, epoch: -0.5 },
        { ...heartbeat, epoch: '2' },
        { ...heartbeat, sequence: 2 ** 60 },
        { ...heartbeat, heartbeatMs: undefined },
        { ...heartbeat, failoverMs: 1.5 },
        { ...heartbeat, term: 7 },
        { ...heartbeat, synced: 'yes' },
        { ...heartbeat, name: null },
        { ...heartbeat, timeline: 'none' },
        { ...heartbeat, timeline: undefined },
        { ...heartbeat, timeline: [{ term: 'x', epoch: 1 }] },
        { ...heartbeat, timeline: [null] },
      ];
      for (const hb of broken)
        expect(reasonOf([tag('TSHB'), json(hb)]), JSON.stringify(hb)).to.equal('properties-syntax');
    });

    it('relayed acknowledgements cut short, without a routing id, or with a bad sequence are refused', () => {
      const [t, term, acks] = encodePeerMessage(ALL.find((m) => m.type === 'relay')!);
      const boundary = 1 + 16 + 8 + 2 * 8; // the end of the first acknowledgement: a shorter list
      for (let cut = 1; cut < acks!.length; cut++) {
        if (cut === boundary) continue;
        const reason = reasonOf([t!, term!, acks!.subarray(0, cut)]);
        expect(['batch-truncated', 'field-invalid'], `cut at ${cut}`).to.include(reason);
      }
      expect(reasonOf([t!, term!, Buffer.from([0, 0, 0, 0, 1, 0, 0, 0, 0])])).to.equal('field-invalid');
      const huge = Buffer.concat([Buffer.from([1, 0x74]), u32(1), u32(1), Buffer.alloc(8, 0xff)]);
      expect(reasonOf([t!, term!, huge])).to.equal('sequence-range');
      const decoded = decodePeerMessage([t!, term!, Buffer.alloc(0)]);
      expect(decoded).to.deep.equal({ type: 'relay', term: 'cccc', acks: [] });
    });

    it('a bad stream id is refused (frame-count)', () => {
      expect(reasonOf([tag('TRREQ'), Buffer.alloc(3), encodeSequence(1), tag('t')])).to.equal('frame-count');
      expect(reasonOf([tag('TRSNAP'), Buffer.alloc(8), Buffer.alloc(0)])).to.equal('frame-count');
    });

    it('a bad sequence is refused with sequence-size or sequence-range', () => {
      expect(reasonOf([tag('TRACK'), Buffer.alloc(4), tag('t')])).to.equal('sequence-size');
      expect(reasonOf([tag('TRACK'), Buffer.alloc(8, 0xff), tag('t')])).to.equal('sequence-range');
      expect(reasonOf([tag('TRREQ'), u32(1), Buffer.alloc(2), tag('t')])).to.equal('sequence-size');
    });

    it('a malformed timeline on snapshot-end / resume-end is properties-syntax', () => {
      for (const t of ['TRSNAPEND', 'TRRESUMED']) {
        expect(reasonOf([tag(t), u32(1), encodeSequence(1), Buffer.from('{')])).to.equal('properties-syntax');
        expect(reasonOf([tag(t), u32(1), encodeSequence(1), json({ term: 'x' })])).to.equal(
          'properties-syntax',
        );
        expect(
          reasonOf([tag(t), u32(1), encodeSequence(1), json([{ term: 1, epoch: 1, startSequence: 1 }])]),
        ).to.equal('properties-syntax');
      }
    });

    it('data and snapshot-chunk carry the packed batch as is; unpackEntries restores the entries', () => {
      for (const msg of [
        { type: 'data' as const, term: 't', batch: packEntries(entries) },
        { type: 'snapshot-chunk' as const, streamId: 9, batch: packEntries(entries) },
      ]) {
        const back = decodePeerMessage(encodePeerMessage(msg));
        expect(back.type).to.equal(msg.type);
        const batch = (back as { batch: Buffer }).batch;
        expect(batch.equals(msg.batch)).to.equal(true);
        const restored = unpackEntries(batch, DEFAULT_LIMITS);
        expect(
          restored.map((e) => [e.key, e.sequence, e.uuid, e.properties, e.body.toString('hex'), e.expiresAt]),
        ).to.deep.equal(
          entries.map((e) => [e.key, e.sequence, e.uuid, e.properties, e.body.toString('hex'), e.expiresAt]),
        );
      }
    });

    it('a truncated batch in data or snapshot-chunk is refused as batch-truncated when unpacked', () => {
      const data = decodePeerMessage(
        encodePeerMessage({ type: 'data', term: 't', batch: packEntries(entries).subarray(0, 30) }),
      );
      expect(data.type).to.equal('data');
      const batch = (data as { batch: Buffer }).batch;
      let reason: string | undefined;
      try {
        unpackEntries(batch, DEFAULT_LIMITS);
      } catch (error) {
        expect(error).to.be.instanceOf(KvMsgError);
        reason = (error as KvMsgError).reason;
      }
      expect(reason).to.equal('batch-truncated');
    });

    it('fast-check: arbitrary frames never throw anything but KvMsgError', () => {
      const frameArb = fc.oneof(
        fc.constantFrom(
          ...['TSHB', 'TRDATA', 'TRREQ', 'TRSNAP', 'TRSNAPEND', 'TRRESUMED', 'TRACK', 'X'].map((s) =>
            Buffer.from(s),
          ),
        ),
        fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
      );
      fc.assert(
        fc.property(fc.array(frameArb, { maxLength: 5 }), (frames) => {
          try {
            decodePeerMessage(frames);
          } catch (error) {
            expect(error).to.be.instanceOf(KvMsgError);
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
