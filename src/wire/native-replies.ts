/**
 * Native replies: encode for a server, decode for a client. Import from `native.ts`.
 */
import {
  DEFAULT_LIMITS,
  decodeKvMsg,
  decodeSequence,
  encodeKvMsg,
  encodeSequence,
  isCounter,
  writeSequence,
  type DecodeReason,
  type Limits,
} from './chp.js';
import { PackedBatch } from './packed.js';
import {
  commandFrame,
  decodeRequestId,
  encodeRequestId,
  Native,
  NativeMsgError,
  type Durability,
  type NativeReply,
  type NotActiveReason,
} from './native-types.js';
import { rethrown } from './native-requests.js';
import {
  decodeCounts,
  decodeDeliveredEvents,
  decodeNameValues,
  encodeCounts,
  encodeEvents,
  encodeNameValues,
  encodeSubId,
} from './native-events.js';
import {
  decodeLeaseList,
  decodeMs,
  decodeSequences,
  encodeLeaseList,
  encodeMs,
  encodeSequences,
} from './native-kv.js';

const frame = (text: string): Buffer => Buffer.from(text);
const TPUB = commandFrame(Native.PUBLISH);
const TEVT = commandFrame(Native.EVENT);

/** The frames of a reply, as a server sends them after the client's routing id. */
export function encodeReply(reply: NativeReply): Buffer[] {
  if (reply.command === 'TPUB') return encodePublication(encodeKvMsg(reply.msg));
  if (reply.command === 'TEVT')
    return [TEVT, encodeSubId(reply.subId), encodeEvents(reply.events), encodeCounts(reply.counts)];
  const head = [commandFrame(reply.command), encodeRequestId(reply.reqId)];
  switch (reply.command) {
    case 'TSYNC':
      return [...head, reply.batch.frame];
    case 'TSYNCEND':
      return [...head, encodeSequence(reply.sequence), frame(reply.term), frame(reply.kind)];
    case 'TACK': {
      const sequences = Buffer.allocUnsafe(8 * reply.sequences.length);
      reply.sequences.forEach((s, i) => writeSequence(sequences, s, 8 * i));
      return [...head, sequences, frame(reply.durability)];
    }
    case 'TNOTACTIVE':
      return [...head, frame(reply.state), ...(reply.reason === undefined ? [] : [frame(reply.reason)])];
    case 'TERROR': {
      const out = [...head, frame(reply.reason), frame(reply.message)];
      if (reply.refused) {
        const indexes = Buffer.allocUnsafe(4 * reply.refused.length);
        reply.refused.forEach((index, i) => indexes.writeUInt32BE(index, 4 * i));
        out.push(indexes);
      }
      if (reply.current) out.push(encodeSequences(reply.current));
      if (reply.fit)
        out.push(frame(String(reply.fit.maxBatchEntries)), frame(String(reply.fit.maxBatchBytes)));
      return out;
    }
    case 'TPONG': {
      const out = [...head, frame(reply.state), encodeSequence(reply.sequence), frame(reply.term)];
      if (reply.heartbeatMs !== undefined) out.push(frame(String(reply.heartbeatMs)), frame(reply.history));
      return out;
    }
    case 'TEOK':
      return [...head, encodeNameValues(reply.info)];
    case 'TLEASEOK':
      return [
        ...head,
        encodeSequence(reply.id),
        encodeMs(reply.ttlMs),
        encodeMs(reply.remainingMs),
        encodeLeaseList(reply.leases),
      ];
  }
}

/**
 * A TPUB of a KVPUB or HUGZ already encoded for the publisher: the server encodes an update once
 * and sends the same frames to every follower.
 */
export function encodePublication(kvmsg: readonly Buffer[]): Buffer[] {
  return [TPUB, ...kvmsg];
}

/** A TSYNC whose entries are already packed (a snapshot stream copying a packed map's records). */
export function encodePackedSync(reqId: number, packed: Buffer): Buffer[] {
  return [commandFrame(Native.SYNC), encodeRequestId(reqId), packed];
}

/**
 * Whether a message's first frame names a native reply (TSYNC ... TPONG, or TPUB): what a client
 * hands to `decodeReply`, as opposed to a CHP snapshot message (KVSYNC, KTHXBAI) on the same socket.
 */
export function isNativeReply(command: string): boolean {
  return command === Native.PUBLISH || REPLY_FRAMES.has(command);
}

/** Frames a reply takes, [min, max]; the reason of a TERROR decides within its range. */
const REPLY_FRAMES = new Map<string, readonly [number, number]>([
  ['TSYNC', [3, 3]],
  ['TSYNCEND', [5, 5]],
  ['TACK', [4, 4]],
  ['TNOTACTIVE', [3, 4]],
  ['TERROR', [4, 6]],
  ['TPONG', [5, 7]],
  ['TEOK', [3, 3]],
  ['TEVT', [4, 4]],
  ['TLEASEOK', [6, 6]],
]);

const DURABILITY: ReadonlySet<string> = new Set<Durability>(['replicated', 'degraded', 'single']);
const NOT_ACTIVE: ReadonlySet<string> = new Set<NotActiveReason>([
  'not-active',
  'peer-alive',
  'no-history',
  'fenced',
  'peer-unknown',
]);

/**
 * A reply as a client's DEALER received it. `limits` bound the entries of a TSYNC and the kvmsg
 * of a TPUB (default: the server defaults). Optional frames that older servers leave out stay
 * optional: TNOTACTIVE's reason, TPONG's heartbeatMs and history, TERROR's refused indexes
 * ('access-denied', 'lease-not-found', 'not-held'), refused indexes and current sequences ('conflict', both
 * or neither) and limits ('batch-too-large'). Anything else missing or extra is
 * 'frame-count'; a field that breaks its format is 'sequence-size'/'sequence-range', a batch
 * reason, or 'field-invalid'. A TACK's sequences are checked against the range, not against the
 * writes of the request: the client that sent them does that.
 */
export function decodeReply(frames: readonly Buffer[], limits: Limits = DEFAULT_LIMITS): NativeReply {
  const command = frames[0]?.toString('latin1') ?? '';
  try {
    if (command === Native.PUBLISH) return { command, msg: decodeKvMsg(frames.slice(1), limits) };
  } catch (error) {
    throw rethrown(error, command, undefined);
  }
  const range = REPLY_FRAMES.get(command); // a Map: no prototype keys (a command 'constructor')
  if (range === undefined)
    throw new NativeMsgError('unknown-command', `unknown reply ${JSON.stringify(command.slice(0, 32))}`);
  // TEVT's second frame is a subscription id, in the same 4-byte form as a request id
  const reqId = decodeRequestId(frames[1]);
  const fail = (reason: DecodeReason, detail: string): never => {
    throw new NativeMsgError(reason, detail, command, reqId);
  };
  if (reqId === undefined)
    return fail(
      'frame-count',
      `${command} has no 4-byte ${command === Native.EVENT ? 'subscription' : 'request'} id`,
    );
  const count = (allowed: boolean, expected: string): void => {
    if (!allowed) fail('frame-count', `${command} has ${frames.length} frames, not ${expected}`);
  };
  const [min, max] = range;
  count(frames.length >= min && frames.length <= max, min === max ? `${min}` : `${min} to ${max}`);
  const text = (at: number): string => frames[at]!.toString();
  try {
    switch (command) {
      case 'TSYNC':
        return { command, reqId, batch: PackedBatch.checked(frames[2]!, limits) };
      case 'TSYNCEND': {
        const kind = text(4);
        if (kind !== 'snapshot' && kind !== 'resume') fail('field-invalid', `TSYNCEND kind ${quote(kind)}`);
        return {
          command,
          reqId,
          sequence: decodeSequence(frames[2]!),
          term: text(3),
          kind: kind as 'resume',
        };
      }
      case 'TACK': {
        const durability = text(3);
        if (!DURABILITY.has(durability)) fail('field-invalid', `TACK durability ${quote(durability)}`);
        return {
          command,
          reqId,
          sequences: ackSequences(frames[2]!, fail),
          durability: durability as Durability,
        };
      }
      case 'TNOTACTIVE': {
        if (frames.length === 3) return { command, reqId, state: text(2) };
        const reason = text(3);
        if (!NOT_ACTIVE.has(reason)) fail('field-invalid', `TNOTACTIVE reason ${quote(reason)}`);
        return { command, reqId, state: text(2), reason: reason as NotActiveReason };
      }
      case 'TERROR':
        return errorReply(reqId, frames, fail);
      case 'TEOK':
        return { command, reqId, info: decodeNameValues(frames[2]!, limits) };
      case 'TLEASEOK': {
        const leases = decodeLeaseList(frames[5]!);
        return {
          command,
          reqId,
          id: decodeSequence(frames[2]!),
          ttlMs: decodeMs(frames[3]!, 'ttlMs'),
          remainingMs: decodeMs(frames[4]!, 'remainingMs'),
          ...(leases === undefined ? {} : { leases }),
        };
      }
      case 'TEVT': {
        const events = decodeDeliveredEvents(frames[2]!, limits);
        return { command, subId: reqId, events, counts: decodeCounts(frames[3]!, events.length) };
      }
      default: {
        count(frames.length !== 6, '5 or 7');
        const pong = {
          command: 'TPONG',
          reqId,
          state: text(2),
          sequence: decodeSequence(frames[3]!),
          term: text(4),
        } as const;
        if (frames.length === 5) return pong;
        const heartbeatMs = Number(text(5));
        if (!(Number.isFinite(heartbeatMs) && heartbeatMs > 0))
          fail('field-invalid', `TPONG heartbeatMs ${quote(text(5))}`);
        const history = text(6);
        if (history !== 'complete' && history !== 'incomplete')
          fail('field-invalid', `TPONG history ${quote(history)}`);
        return { ...pong, heartbeatMs, history: history as 'complete' };
      }
    }
  } catch (error) {
    throw rethrown(error, command, reqId);
  }
}

type Fail = (reason: DecodeReason, detail: string) => never;

function ackSequences(frame: Buffer, fail: Fail): number[] {
  if (frame.length % 8 !== 0)
    fail('sequence-size', `TACK sequences frame is ${frame.length} bytes, not 8 per write`);
  const out = new Array<number>(frame.length / 8);
  for (let i = 0; i < out.length; i++) {
    const value = frame.readUInt32BE(8 * i) * 0x1_0000_0000 + frame.readUInt32BE(8 * i + 4);
    if (!isCounter(value)) fail('sequence-range', `TACK sequence ${value} of write ${i} is out of range`);
    out[i] = value;
  }
  return out;
}

function errorReply(reqId: number, frames: readonly Buffer[], fail: Fail): NativeReply {
  const reason = frames[2]!.toString();
  const message = frames[3]!.toString();
  const extra = frames.length - 4;
  if (extra === 0) return { command: 'TERROR', reqId, reason, message };
  const refusedIndexes = (): number[] => {
    const indexes = frames[4]!;
    if (indexes.length % 4 !== 0) fail('field-invalid', `refused indexes frame is ${indexes.length} bytes`);
    const refused: number[] = [];
    for (let at = 0; at < indexes.length; at += 4) refused.push(indexes.readUInt32BE(at));
    return refused;
  };
  if ((reason === 'access-denied' || reason === 'lease-not-found' || reason === 'not-held') && extra === 1)
    return { command: 'TERROR', reqId, reason, message, refused: refusedIndexes() };
  if (reason === 'conflict' && extra === 2) {
    const refused = refusedIndexes();
    const current = decodeSequences(frames[5]!, refused.length, 'conflict current sequence');
    return { command: 'TERROR', reqId, reason, message, refused, current };
  }
  if (reason === 'batch-too-large' && extra === 2) {
    const [maxBatchEntries, maxBatchBytes] = [4, 5].map((at) => {
      const n = Number(frames[at]!.toString());
      return Number.isSafeInteger(n) && n > 0
        ? n
        : fail('field-invalid', `batch limit ${quote(frames[at]!.toString())}`);
    }) as [number, number];
    return { command: 'TERROR', reqId, reason, message, fit: { maxBatchEntries, maxBatchBytes } };
  }
  return fail('frame-count', `TERROR ${quote(reason)} has ${frames.length} frames`);
}

function quote(text: string): string {
  return JSON.stringify(text.slice(0, 32));
}

/** TERROR 'unauthenticated': the server holds no session for this connection (false if malformed). */
export function isUnauthenticatedReply(frames: Buffer[]): boolean {
  if (frames[0]?.toString('latin1') !== Native.ERROR) return false;
  try {
    const reply = decodeReply(frames);
    return reply.command === 'TERROR' && reply.reason === 'unauthenticated';
  } catch {
    return false; // malformed: the client's handler drops and counts it
  }
}
