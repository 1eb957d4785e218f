/**
 * The event bus's part of the native codec (issue 16, docs/protocol.md "Event bus"): the frames of
 * TEPUB, TESUB, TEUNSUB and TEACK after their command and request id, and of the TEOK and TEVT
 * replies. native-requests.ts and native-replies.ts call these from their one switch each, so the
 * command and frame-count checks stay in one place. Every decoder here throws only KvMsgError
 * (turned into NativeMsgError, with the command and id, by its caller). Pure: no sockets, no clock.
 */
import { isUtf8 } from 'node:buffer';
import { isCounter, KvMsgError, writeSequence, type Limits } from './chp.js';
import { packBatch, unpackBatch, type PackedEntry } from './packed.js';
import { formatProperties, parseProperties } from './properties.js';
import { decodeRequestId, encodeRequestId, type EventAck, type EventAckKind } from './native-types.js';

/** Bytes of one ack in a TEACK: sequence (8, big-endian), kind (1), delayMs (4, big-endian). */
export const EVENT_ACK_BYTES = 13;

/** An ack's kind as its byte on the wire, and back. */
export const EVENT_ACK_KINDS: readonly EventAckKind[] = ['ack', 'nak', 'working', 'term', 'seen'];

/** Longest delay a nak can carry (4 bytes, milliseconds: about 49 days). */
export const MAX_NAK_DELAY_MS = 0xffff_ffff;

// ------------------------------------------------------------------------------------------------
// Encoding.

/** TEPUB's and TEVT's batch frame: one packed entry per event. */
export function encodeEvents(events: readonly PackedEntry[]): Buffer {
  return packBatch(events);
}

/** A subscription id as its 4-byte frame. */
export function encodeSubId(subId: number): Buffer {
  return encodeRequestId(subId);
}

/** TESUB options and TEOK info: `name=value\n` lines ('' for none). */
export function encodeNameValues(values: Readonly<Record<string, string>>): Buffer {
  return Buffer.from(formatProperties(values));
}

/** TEACK's acks frame: 13 bytes per ack. */
export function encodeAcks(acks: readonly EventAck[]): Buffer {
  const out = Buffer.allocUnsafe(EVENT_ACK_BYTES * acks.length);
  acks.forEach((ack, i) => {
    const at = EVENT_ACK_BYTES * i;
    writeSequence(out, ack.sequence, at);
    out.writeUInt8(EVENT_ACK_KINDS.indexOf(ack.kind), at + 8);
    out.writeUInt32BE(ack.delayMs >>> 0, at + 9);
  });
  return out;
}

/** TEVT's counts frame: 4 bytes per event, its delivery count. */
export function encodeCounts(counts: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * counts.length);
  counts.forEach((count, i) => out.writeUInt32BE(count >>> 0, 4 * i));
  return out;
}

// ------------------------------------------------------------------------------------------------
// Decoding.

/** A TEPUB batch: refused whole ('batch-too-large') beyond the limits, as a TSET is. */
export function decodeEventBatch(frame: Buffer, limits: Limits): PackedEntry[] {
  if (frame.length > limits.maxBatchBytes)
    throw new KvMsgError('batch-too-large', `batch is ${frame.length} bytes, limit ${limits.maxBatchBytes}`);
  return unpackBatch(frame, limits, limits.maxBatchEntries);
}

/** A TEVT batch (what the server sent: the client's limits bound each entry). */
export function decodeDeliveredEvents(frame: Buffer, limits: Limits): PackedEntry[] {
  return unpackBatch(frame, limits);
}

/** A 4-byte subscription id. */
export function decodeSubId(frame: Buffer): number {
  const id = decodeRequestId(frame);
  if (id === undefined)
    throw new KvMsgError('field-invalid', `subscription id is ${frame.length} bytes, not 4`);
  return id;
}

/**
 * A TESUB pattern: UTF-8 within `maxKeyBytes` (a pattern is a topic with wildcards). Its syntax is
 * the server's to check (checkPattern), so that a bad one is answered TERROR 'invalid-pattern'.
 */
export function decodePattern(frame: Buffer, limits: Limits): string {
  if (frame.length > limits.maxKeyBytes)
    throw new KvMsgError('key-too-long', `pattern is ${frame.length} bytes, limit ${limits.maxKeyBytes}`);
  if (!isUtf8(frame)) throw new KvMsgError('key-encoding', 'pattern is not valid UTF-8');
  return frame.toString('utf8');
}

/**
 * TESUB options and TEOK info: `name=value\n` lines, within the properties limits (bytes, count).
 * Only the syntax is checked; what the names mean is the server's (or the client's) business.
 */
export function decodeNameValues(frame: Buffer, limits: Limits): Record<string, string> {
  if (frame.length === 0) return {};
  if (frame.length > limits.maxPropertiesBytes)
    throw new KvMsgError(
      'properties-too-long',
      `options are ${frame.length} bytes, limit ${limits.maxPropertiesBytes}`,
    );
  if (!isUtf8(frame)) throw new KvMsgError('properties-syntax', 'options are not valid UTF-8');
  const values = parseProperties(frame.toString('utf8'));
  if (values.size > limits.maxProperties)
    throw new KvMsgError('too-many-properties', `${values.size} options, limit ${limits.maxProperties}`);
  return Object.fromEntries(values);
}

/**
 * TEACK's acks: a whole number of 13-byte acks, at most `maxBatchEntries` of them, each with a
 * known kind and a sequence in range. delayMs is read for every kind (the encoder writes 0 for all
 * but nak; the server reads it for nak only).
 */
export function decodeAcks(frame: Buffer, limits: Limits): EventAck[] {
  if (frame.length % EVENT_ACK_BYTES !== 0)
    throw new KvMsgError(
      'field-invalid',
      `acks frame is ${frame.length} bytes, not ${EVENT_ACK_BYTES} per ack`,
    );
  const count = frame.length / EVENT_ACK_BYTES;
  if (count > limits.maxBatchEntries)
    throw new KvMsgError('batch-too-large', `${count} acks, limit ${limits.maxBatchEntries}`);
  const acks: EventAck[] = [];
  for (let i = 0; i < count; i++) {
    const at = EVENT_ACK_BYTES * i;
    const sequence = frame.readUInt32BE(at) * 0x1_0000_0000 + frame.readUInt32BE(at + 4);
    if (!isCounter(sequence)) throw new KvMsgError('sequence-range', `ack ${i}: sequence out of range`);
    const kind = EVENT_ACK_KINDS[frame.readUInt8(at + 8)];
    if (kind === undefined)
      throw new KvMsgError('field-invalid', `ack ${i}: unknown kind byte ${frame.readUInt8(at + 8)}`);
    acks.push({ sequence, kind, delayMs: frame.readUInt32BE(at + 9) });
  }
  return acks;
}

/** TEVT's delivery counts: 4 bytes per event, one per event, each at least 1. */
export function decodeCounts(frame: Buffer, events: number): number[] {
  if (frame.length !== 4 * events)
    throw new KvMsgError('field-invalid', `counts frame is ${frame.length} bytes for ${events} events`);
  const counts: number[] = [];
  for (let at = 0; at < frame.length; at += 4) {
    const count = frame.readUInt32BE(at);
    if (count === 0) throw new KvMsgError('field-invalid', `delivery count 0 for event ${at / 4}`);
    counts.push(count);
  }
  return counts;
}
