/**
 * Messages between the two nodes of a pair. They travel on the peer link: each node binds a PUB
 * and subscribes to the other's, so the link is two one-way pipes. Heartbeats drive the Binary
 * Star FSM; the same pipes carry replication (active -> passive) and its acknowledgements
 * (passive -> active), so a slow client can never hold up the pair's own traffic.
 *
 *   [TSHB, json]                              heartbeat (both ways)
 *   [TRDATA, term, packed batch(, acks)]      sequenced changes (active -> passive), and the
 *                                             TACKs of writes among them (peer-relay.ts)
 *   [TRREQ, streamId, fromSeq, term]          "send me what follows fromSeq" (passive -> active)
 *   [TRSNAP, streamId, packed batch]          snapshot chunk (active -> passive)
 *   [TRSNAPEND, streamId, sequence, json]     end of snapshot, with the active's timeline
 *   [TRRESUMED, streamId, sequence, json]     end of a resume (the changes went as TRDATA)
 *   [TRACK, sequence, term]                   applied up to sequence (passive -> active)
 *   [TRRELAY, term, acks]                     TACKs for the passive to send its clients once it
 *                                             holds their writes (active -> passive, peer-relay.ts)
 */
import {
  decodeSequence,
  isCounter,
  encodeSequence,
  KvMsgError,
  packBatch,
  unpackBatch,
  type Limits,
  type PackedEntry,
} from './index.js';
import type { Role, State } from '../fsm/index.js';
import { decodeRelayedAcks, encodeRelayedAcks, type RelayedAck } from './peer-relay.js';

export { highestOf, type RelayedAck } from './peer-relay.js';

/** One promotion in the pair's history, as heartbeats and sync ends carry it (core/timeline.ts keeps them). */
export interface TimelineEntry {
  readonly term: string;
  readonly epoch: number;
  readonly startSequence: number;
}

export interface Heartbeat {
  readonly name: string;
  readonly role: Role;
  readonly state: State;
  readonly epoch: number;
  readonly sequence: number;
  readonly term: string;
  readonly timeline: readonly TimelineEntry[];
  readonly heartbeatMs: number;
  readonly failoverMs: number;
  /** a passive says whether its replica is complete; an active whether it counts its passive */
  readonly synced: boolean;
  /** this node holds a complete copy of the pair's history (no data, no vote: promise 3) */
  readonly history: boolean;
  /** this active met another active and sequences nothing until one of them has demoted */
  readonly fenced: boolean;
  /**
   * this node started from its data directory (not fresh): at start it competes with the peer on
   * whose history is newer. Absent from nodes before this version (read as false).
   */
  readonly restored?: boolean;
  /** this node sends the TACKs an active relays to it (TRRELAY). Absent before this version. */
  readonly relays?: boolean;
}

export type PeerMessage =
  | { type: 'heartbeat'; heartbeat: Heartbeat }
  | { type: 'data'; term: string; batch: Buffer; acks?: RelayedAck[] }
  | { type: 'request'; streamId: number; fromSequence: number; term: string }
  | { type: 'snapshot-chunk'; streamId: number; batch: Buffer }
  | { type: 'snapshot-end'; streamId: number; sequence: number; timeline: TimelineEntry[] }
  | { type: 'resume-end'; streamId: number; sequence: number; timeline: TimelineEntry[] }
  | { type: 'ack'; sequence: number; term: string }
  | { type: 'relay'; term: string; acks: RelayedAck[] };

const TAG = {
  heartbeat: 'TSHB',
  data: 'TRDATA',
  request: 'TRREQ',
  'snapshot-chunk': 'TRSNAP',
  'snapshot-end': 'TRSNAPEND',
  'resume-end': 'TRRESUMED',
  ack: 'TRACK',
  relay: 'TRRELAY',
} as const;

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function readU32(frame: Buffer | undefined): number {
  if (frame === undefined || frame.length !== 4)
    throw new KvMsgError('frame-count', 'stream id must be 4 bytes');
  return frame.readUInt32BE();
}

export function encodePeerMessage(msg: PeerMessage): Buffer[] {
  const tag = Buffer.from(TAG[msg.type]);
  switch (msg.type) {
    case 'heartbeat':
      return [tag, Buffer.from(JSON.stringify(msg.heartbeat))];
    case 'data':
      return msg.acks === undefined || msg.acks.length === 0
        ? [tag, Buffer.from(msg.term), msg.batch]
        : [tag, Buffer.from(msg.term), msg.batch, encodeRelayedAcks(msg.acks)];
    case 'request':
      return [tag, u32(msg.streamId), encodeSequence(msg.fromSequence), Buffer.from(msg.term)];
    case 'snapshot-chunk':
      return [tag, u32(msg.streamId), msg.batch];
    case 'snapshot-end':
    case 'resume-end':
      return [
        tag,
        u32(msg.streamId),
        encodeSequence(msg.sequence),
        Buffer.from(JSON.stringify(msg.timeline)),
      ];
    case 'ack':
      return [tag, encodeSequence(msg.sequence), Buffer.from(msg.term)];
    case 'relay':
      return [tag, Buffer.from(msg.term), encodeRelayedAcks(msg.acks)];
  }
}

/** Packs changes for a `data` or `snapshot-chunk` message. */
export function packEntries(entries: readonly PackedEntry[]): Buffer {
  return packBatch(entries);
}

/**
 * Unpacks the changes of a `data` or `snapshot-chunk` message. Batches are unpacked only by the
 * node they are for (a passive in step, or the stream it asked for), never on arrival: a node that
 * just joined must not spend its event loop decoding a snapshot streamed to someone else.
 */
export function unpackEntries(batch: Buffer, limits: Limits): PackedEntry[] {
  return unpackBatch(batch, limits);
}

/** Decodes a peer message; throws KvMsgError with a reason for anything malformed. */
export function decodePeerMessage(frames: Buffer[]): PeerMessage {
  const [tagFrame, a, b, c] = frames;
  const tag = tagFrame?.toString('latin1');
  const expect = (n: number) => {
    if (frames.length !== n)
      throw new KvMsgError('frame-count', `${tag} has ${frames.length} frames, not ${n}`);
  };
  switch (tag) {
    case TAG.heartbeat:
      expect(2);
      return { type: 'heartbeat', heartbeat: parseHeartbeat(a!) };
    case TAG.data:
      // The acknowledgements frame is there only with some in it (encodePeerMessage).
      if (frames.length === 4 && c!.length > 0)
        return { type: 'data', term: a!.toString(), batch: b!, acks: decodeRelayedAcks(c!) };
      expect(3);
      return { type: 'data', term: a!.toString(), batch: b! };
    case TAG.request:
      expect(4);
      return { type: 'request', streamId: readU32(a), fromSequence: decodeSequence(b!), term: c!.toString() };
    case TAG['snapshot-chunk']:
      expect(3);
      return { type: 'snapshot-chunk', streamId: readU32(a), batch: b! };
    case TAG['snapshot-end']:
      expect(4);
      return {
        type: 'snapshot-end',
        streamId: readU32(a),
        sequence: decodeSequence(b!),
        timeline: parseTimeline(c!),
      };
    case TAG['resume-end']:
      expect(4);
      return {
        type: 'resume-end',
        streamId: readU32(a),
        sequence: decodeSequence(b!),
        timeline: parseTimeline(c!),
      };
    case TAG.ack:
      expect(3);
      return { type: 'ack', sequence: decodeSequence(a!), term: b!.toString() };
    case TAG.relay:
      expect(3);
      return { type: 'relay', term: a!.toString(), acks: decodeRelayedAcks(b!) };
    default:
      throw new KvMsgError('unknown-command', `unknown peer message ${JSON.stringify(tag?.slice(0, 16))}`);
  }
}

const STATE_NAMES = new Set(['PRIMARY', 'BACKUP', 'ACTIVE', 'PASSIVE']);

function parseJson(frame: Buffer): unknown {
  try {
    return JSON.parse(frame.toString('utf8'));
  } catch {
    throw new KvMsgError('properties-syntax', 'peer message is not valid JSON');
  }
}

function parseHeartbeat(frame: Buffer): Heartbeat {
  const hb = parseJson(frame) as Partial<Heartbeat> | null;
  const ok =
    hb !== null &&
    typeof hb === 'object' &&
    (hb.role === 'primary' || hb.role === 'backup') &&
    typeof hb.state === 'string' &&
    STATE_NAMES.has(hb.state) &&
    isCounter(hb.epoch) &&
    isCounter(hb.sequence) &&
    Number.isSafeInteger(hb.heartbeatMs) &&
    Number.isSafeInteger(hb.failoverMs) &&
    typeof hb.term === 'string' &&
    typeof hb.synced === 'boolean' &&
    typeof hb.history === 'boolean' &&
    typeof hb.fenced === 'boolean' &&
    typeof hb.name === 'string';
  if (!ok) throw new KvMsgError('properties-syntax', 'heartbeat is missing fields');
  return { ...(hb as Heartbeat), timeline: validTimeline(hb.timeline) };
}

function parseTimeline(frame: Buffer): TimelineEntry[] {
  return validTimeline(parseJson(frame));
}

function validTimeline(value: unknown): TimelineEntry[] {
  if (!Array.isArray(value)) throw new KvMsgError('properties-syntax', 'timeline is not a list');
  for (const t of value as TimelineEntry[]) {
    if (
      typeof t !== 'object' ||
      t === null ||
      typeof t.term !== 'string' ||
      !isCounter(t.epoch) ||
      !isCounter(t.startSequence)
    ) {
      throw new KvMsgError('properties-syntax', 'timeline entry is malformed');
    }
  }
  return value as TimelineEntry[];
}
