/**
 * Byte-exact vectors of the event bus's native messages (TEPUB, TESUB, TEUNSUB, TEACK, TEOK,
 * TEVT), written out by hand from /work/notes/events-protocol.md and docs/protocol.md "Event bus",
 * independently of the encoder: a change of the wire shows here.
 */
import type { PackedEntry } from '../../../src/wire/packed.js';
import type { NativeReply, SnapshotSocketRequest } from '../../../src/wire/native.js';

export const UUID_HEX = '00112233445566778899aabbccddeeff';
const UUID = Buffer.from(UUID_HEX, 'hex').toString('latin1');
export const hex = (text: string) => Buffer.from(text).toString('hex');
export const RID = '0000002a'; // request id 42
export const SID = '00000007'; // subscription id 7

export interface Vector<T> {
  readonly name: string;
  readonly message: T;
  readonly frames: string[];
}

/** An event to publish: topic, sequence 0, headers as properties, data as body. */
export const PUBLISHED: PackedEntry = {
  key: 'orders.created',
  sequence: 0,
  uuid: UUID,
  properties: 'h=1\n',
  body: Buffer.from('{}'),
  expiresAt: 0,
};
// u16 keyLen | key | f64 sequence | u8 uuidLen | uuid | u16 propsLen | props | f64 expiresAt | u32 bodyLen | body
export const PUBLISHED_HEX =
  `000e${hex('orders.created')}0000000000000000` +
  `10${UUID_HEX}` +
  `0004${hex('h=1\n')}` +
  `0000000000000000` +
  `00000002${hex('{}')}`;

/** An event delivered: sequence 9 (f64 0x4022000000000000). */
export const DELIVERED: PackedEntry = { ...PUBLISHED, sequence: 9, properties: '' };
export const DELIVERED_HEX =
  `000e${hex('orders.created')}4022000000000000` +
  `10${UUID_HEX}` +
  `0000` +
  `0000000000000000` +
  `00000002${hex('{}')}`;

export const EVENT_REQUESTS: Vector<SnapshotSocketRequest>[] = [
  {
    name: 'TEPUB',
    message: { command: 'TEPUB', reqId: 42, events: [PUBLISHED] },
    frames: [hex('TEPUB'), RID, PUBLISHED_HEX],
  },
  {
    name: 'TESUB',
    message: {
      command: 'TESUB',
      reqId: 42,
      subId: 7,
      pattern: 'orders.>',
      options: { member: 'c1:7', group: 'billing' },
    },
    frames: [hex('TESUB'), RID, SID, hex('orders.>'), hex('member=c1:7\ngroup=billing\n')],
  },
  {
    name: 'TESUB without options',
    message: { command: 'TESUB', reqId: 42, subId: 7, pattern: '>', options: {} },
    frames: [hex('TESUB'), RID, SID, hex('>'), ''],
  },
  {
    name: 'TEUNSUB',
    message: { command: 'TEUNSUB', reqId: 42, subId: 7 },
    frames: [hex('TEUNSUB'), RID, SID],
  },
  {
    name: 'TEACK',
    message: {
      command: 'TEACK',
      reqId: 42,
      subId: 7,
      acks: [
        { sequence: 9, kind: 'ack', delayMs: 0 },
        { sequence: 2 ** 32 + 1, kind: 'nak', delayMs: 1500 },
        { sequence: 10, kind: 'working', delayMs: 0 },
        { sequence: 11, kind: 'term', delayMs: 0 },
        { sequence: 12, kind: 'seen', delayMs: 0 },
      ],
    },
    frames: [
      hex('TEACK'),
      RID,
      SID,
      '0000000000000009' +
        '00' +
        '00000000' +
        '0000000100000001' +
        '01' +
        '000005dc' +
        '000000000000000a' +
        '02' +
        '00000000' +
        '000000000000000b' +
        '03' +
        '00000000' +
        '000000000000000c' +
        '04' +
        '00000000',
    ],
  },
];

export const EVENT_REPLIES: Vector<NativeReply>[] = [
  {
    name: 'TEOK with info',
    message: { command: 'TEOK', reqId: 42, info: { start: '9' } },
    frames: [hex('TEOK'), RID, hex('start=9\n')],
  },
  {
    name: 'TEOK, empty',
    message: { command: 'TEOK', reqId: 42, info: {} },
    frames: [hex('TEOK'), RID, ''],
  },
  {
    name: 'TEVT',
    message: { command: 'TEVT', subId: 7, events: [DELIVERED, DELIVERED], counts: [1, 258] },
    frames: [hex('TEVT'), SID, DELIVERED_HEX + DELIVERED_HEX, '00000001' + '00000102'],
  },
];
