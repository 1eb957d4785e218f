/**
 * Byte-exact vectors of the KV-parity messages (issue 17: TLEASE, TLEASEOK, TWATCH, TERROR
 * 'conflict' and 'lease-not-found'), written out by hand from /work/notes/kv-parity-protocol.md
 * and docs/protocol.md, independently of the encoder: a change of the wire shows here.
 */
import type { NativeReply, SnapshotSocketRequest } from '../../../src/wire/native.js';
import { hex, RID, type Vector } from './event-vectors.js';

const ID7 = '0000000000000007';
const MS3000 = '00000bb8';

export const KV_REQUESTS: Vector<SnapshotSocketRequest>[] = [
  {
    name: 'TLEASE grant (server picks the id)',
    message: { command: 'TLEASE', reqId: 42, op: 'grant', id: 0, ttlMs: 3000 },
    frames: [hex('TLEASE'), RID, hex('grant'), '0000000000000000', MS3000],
  },
  {
    name: 'TLEASE keepalive',
    message: { command: 'TLEASE', reqId: 42, op: 'keepalive', id: 7, ttlMs: 0 },
    frames: [hex('TLEASE'), RID, hex('keepalive'), ID7, '00000000'],
  },
  {
    name: 'TLEASE revoke of a large id',
    message: { command: 'TLEASE', reqId: 42, op: 'revoke', id: 2 ** 40 + 1, ttlMs: 0 },
    frames: [hex('TLEASE'), RID, hex('revoke'), '0000010000000001', '00000000'],
  },
  {
    name: 'TLEASE list',
    message: { command: 'TLEASE', reqId: 42, op: 'list', id: 0, ttlMs: 0 },
    frames: [hex('TLEASE'), RID, hex('list'), '0000000000000000', '00000000'],
  },
  {
    name: 'TWATCH',
    message: { command: 'TWATCH', reqId: 42, prefix: '/s/', fromSequence: 7 },
    frames: [hex('TWATCH'), RID, hex('/s/'), ID7],
  },
  {
    name: 'TWATCH of everything from the start',
    message: { command: 'TWATCH', reqId: 42, prefix: '', fromSequence: 0 },
    frames: [hex('TWATCH'), RID, '', '0000000000000000'],
  },
];

export const KV_REPLIES: Vector<NativeReply>[] = [
  {
    name: 'TLEASEOK',
    message: { command: 'TLEASEOK', reqId: 42, id: 7, ttlMs: 3000, remainingMs: 2999 },
    frames: [hex('TLEASEOK'), RID, ID7, MS3000, '00000bb7', ''],
  },
  {
    name: 'TLEASEOK of list',
    message: {
      command: 'TLEASEOK',
      reqId: 42,
      id: 0,
      ttlMs: 0,
      remainingMs: 0,
      leases: [{ id: 7, ttlMs: 3000, remainingMs: 1000, keys: 2 }],
    },
    frames: [
      hex('TLEASEOK'),
      RID,
      '0000000000000000',
      '00000000',
      '00000000',
      hex('[{"id":7,"ttlMs":3000,"remainingMs":1000,"keys":2}]'),
    ],
  },
  {
    name: 'TLEASEOK of an empty list',
    message: { command: 'TLEASEOK', reqId: 42, id: 0, ttlMs: 0, remainingMs: 0, leases: [] },
    frames: [hex('TLEASEOK'), RID, '0000000000000000', '00000000', '00000000', hex('[]')],
  },
  {
    name: "TERROR 'conflict' with the current sequences",
    message: {
      command: 'TERROR',
      reqId: 42,
      reason: 'conflict',
      message: 'changed',
      refused: [0, 2],
      current: [7, 0],
    },
    frames: [
      hex('TERROR'),
      RID,
      hex('conflict'),
      hex('changed'),
      '0000000000000002',
      `${ID7}0000000000000000`,
    ],
  },
  {
    name: "TERROR 'lease-not-found' of a write",
    message: { command: 'TERROR', reqId: 42, reason: 'lease-not-found', message: 'no lease 7', refused: [1] },
    frames: [hex('TERROR'), RID, hex('lease-not-found'), hex('no lease 7'), '00000001'],
  },
  {
    name: "TERROR 'history-unavailable'",
    message: { command: 'TERROR', reqId: 42, reason: 'history-unavailable', message: 'oldest 12' },
    frames: [hex('TERROR'), RID, hex('history-unavailable'), hex('oldest 12')],
  },
];
