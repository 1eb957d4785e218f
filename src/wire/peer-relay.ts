/**
 * The acknowledgements an active hands to its passive to send (issue 18): a native write is
 * acknowledged to its client by the passive, which holds the write once it has applied and flushed
 * it, so the answer takes three one-way hops (client, active, passive, client) instead of four.
 * Import from `peer.ts`: the acknowledgements frame of TRDATA and TRRELAY messages.
 *
 *   per acknowledgement: id length (1 byte), the client's routing id, request id (4 bytes),
 *   count (4 bytes), then `count` sequences of 8 bytes each (the TACK's, in the batch's order)
 */
import { decodeSequence, KvMsgError, writeSequence } from './chp.js';

/** One TACK the passive sends on its snapshot socket, to the client with this routing id. */
export interface RelayedAck {
  readonly identity: Buffer;
  readonly reqId: number;
  readonly sequences: readonly number[];
}

/**
 * The highest of a TACK's sequences (0 for none): what must be durable before it is sent, and
 * what a passive must have applied to send a relayed one.
 */
export function highestOf(sequences: readonly number[]): number {
  let highest = 0; // a loop, not Math.max(...): a batch of 120k+ writes would overflow the stack
  for (const sequence of sequences) if (sequence > highest) highest = sequence;
  return highest;
}

export function encodeRelayedAcks(acks: readonly RelayedAck[]): Buffer {
  let size = 0;
  for (const ack of acks) size += 1 + ack.identity.length + 8 + 8 * ack.sequences.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const ack of acks) {
    if (ack.identity.length === 0 || ack.identity.length > 255)
      throw new RangeError(`a routing id is 1 to 255 bytes, not ${ack.identity.length}`);
    out[at++] = ack.identity.length;
    at += ack.identity.copy(out, at);
    out.writeUInt32BE(ack.reqId >>> 0, at);
    out.writeUInt32BE(ack.sequences.length, at + 4);
    at += 8;
    for (const sequence of ack.sequences) {
      writeSequence(out, sequence, at);
      at += 8;
    }
  }
  return out;
}

/** Throws KvMsgError ('batch-truncated', or a sequence's own reason) for a malformed frame. */
export function decodeRelayedAcks(frame: Buffer): RelayedAck[] {
  const acks: RelayedAck[] = [];
  const need = (at: number, bytes: number) => {
    if (at + bytes > frame.length)
      throw new KvMsgError('batch-truncated', 'relayed acknowledgements cut short');
  };
  let at = 0;
  while (at < frame.length) {
    const idLength = frame[at]!;
    if (idLength === 0) throw new KvMsgError('field-invalid', 'a relayed acknowledgement has no routing id');
    need(at + 1, idLength + 8);
    const identity = Buffer.from(frame.subarray(at + 1, at + 1 + idLength));
    at += 1 + idLength;
    const reqId = frame.readUInt32BE(at);
    const count = frame.readUInt32BE(at + 4);
    at += 8;
    need(at, 8 * count);
    const sequences: number[] = [];
    for (let i = 0; i < count; i++, at += 8) sequences.push(decodeSequence(frame.subarray(at, at + 8)));
    acks.push({ identity, reqId, sequences });
  }
  return acks;
}
