/**
 * Native requests (and the CHP ICANHAZ? that reaches the same socket): encode for a client,
 * decode for a server. Import from `native.ts`.
 */
import {
  DEFAULT_LIMITS,
  decodeSequence,
  encodeSequence,
  ICANHAZ,
  KvMsgError,
  type DecodeReason,
  type Limits,
} from './chp.js';
import { packBatch, unpackBatch, type PackedEntry } from './packed.js';
import {
  commandFrame,
  decodeRequestId,
  encodeRequestId,
  NativeMsgError,
  type RequestBounds,
  type SnapshotSocketRequest,
} from './native-types.js';
import {
  decodeAcks,
  decodeEventBatch,
  decodeNameValues,
  decodePattern,
  decodeSubId,
  encodeAcks,
  encodeEvents,
  encodeNameValues,
  encodeSubId,
} from './native-events.js';
import { decodeLeaseOp, decodeMs, encodeMs } from './native-kv.js';

// ------------------------------------------------------------------------------------------------
// Requests.

const frame = (text: string): Buffer => Buffer.from(text);

/** The frames of a request, as a client sends them (its DEALER adds nothing). */
export function encodeRequest(request: SnapshotSocketRequest): Buffer[] {
  if (request.command === ICANHAZ) return [commandFrame(ICANHAZ), frame(request.subtree)];
  const out = [commandFrame(request.command), encodeRequestId(request.reqId)];
  switch (request.command) {
    case 'TSNAP':
      return [...out, frame(request.subtree)];
    case 'TRESUME':
      return [...out, frame(request.subtree), encodeSequence(request.fromSequence), frame(request.term)];
    case 'TSET':
      return [...out, packBatch(request.writes)];
    case 'TFOLLOW':
      return [...out, ...request.prefixes.map(frame)];
    case 'TEPUB':
      return [...out, encodeEvents(request.events)];
    case 'TESUB':
      return [...out, encodeSubId(request.subId), frame(request.pattern), encodeNameValues(request.options)];
    case 'TEUNSUB':
      return [...out, encodeSubId(request.subId)];
    case 'TEACK':
      return [...out, encodeSubId(request.subId), encodeAcks(request.acks)];
    case 'TLEASE':
      return [...out, frame(request.op), encodeSequence(request.id), encodeMs(request.ttlMs)];
    case 'TWATCH':
      return [...out, frame(request.prefix), encodeSequence(request.fromSequence)];
    default:
      return out;
  }
}

/** Frames a command takes, routing id excluded: [min, max]. */
const REQUEST_FRAMES = new Map<string, readonly [number, number]>([
  [ICANHAZ, [2, 2]],
  ['TSNAP', [3, 3]],
  ['TRESUME', [5, 5]],
  ['TSET', [3, 3]],
  ['TPING', [2, 2]],
  ['TVOTE', [2, 2]],
  ['TFOLLOW', [3, Infinity]],
  ['TUNFOLLOW', [2, 2]],
  ['TEPUB', [3, 3]],
  ['TESUB', [5, 5]],
  ['TEUNSUB', [3, 3]],
  ['TEACK', [4, 4]],
  ['TLEASE', [5, 5]],
  ['TWATCH', [4, 4]],
]);

/**
 * A request as a server received it (routing id stripped). Checks, in this order: the command,
 * the request id and the frame count ('frame-count'), too many follow prefixes, each subtree or
 * prefix's length ('subtree-too-long'; a TWATCH prefix too), then the fields ('sequence-size',
 * the batch's reasons, 'field-invalid' for a TLEASE op or ttlMs).
 */
export function decodeRequest(frames: readonly Buffer[], bounds: RequestBounds = {}): SnapshotSocketRequest {
  const command = frames[0]?.toString('latin1') ?? '';
  const range = REQUEST_FRAMES.get(command); // a Map: no prototype keys (a command 'constructor')
  if (range === undefined)
    throw new NativeMsgError('unknown-command', `unknown command ${JSON.stringify(command.slice(0, 32))}`);
  const reqId = command === ICANHAZ ? undefined : decodeRequestId(frames[1]);
  const fail = (reason: DecodeReason, detail: string): never => {
    throw new NativeMsgError(reason, detail, command, reqId);
  };
  if (command !== ICANHAZ && reqId === undefined) fail('frame-count', `${command} has no 4-byte request id`);
  const [min, max] = range;
  if (frames.length < min || frames.length > max)
    fail('frame-count', `${command} has ${frames.length} frames, not ${max === Infinity ? `${min}+` : min}`);
  const subtree = (at: number): string => {
    const limit = bounds.maxSubtreeBytes ?? Infinity;
    const bytes = frames[at]!;
    if (bytes.length > limit)
      fail('subtree-too-long', `subtree or prefix is ${bytes.length} bytes, limit ${limit}`);
    return bytes.toString();
  };
  const id = reqId!;
  const limits = bounds.limits ?? DEFAULT_LIMITS;
  try {
    switch (command) {
      case ICANHAZ:
        return { command: ICANHAZ, subtree: subtree(1) };
      case 'TSNAP':
        return { command, reqId: id, subtree: subtree(2) };
      case 'TRESUME': {
        const sub = subtree(2);
        return {
          command,
          reqId: id,
          subtree: sub,
          fromSequence: decodeSequence(frames[3]!),
          term: frames[4]!.toString(),
        };
      }
      case 'TSET':
        return { command, reqId: id, writes: decodeWrites(frames[2]!, limits) };
      case 'TFOLLOW': {
        const max = bounds.maxFollowPrefixes ?? Infinity;
        const count = frames.length - 2;
        if (count > max) fail('too-many-prefixes', `${count} prefixes, limit ${max}`);
        const prefixes: string[] = [];
        for (let at = 2; at < frames.length; at++) prefixes.push(subtree(at));
        return { command, reqId: id, prefixes };
      }
      case 'TEPUB':
        return { command, reqId: id, events: decodeEventBatch(frames[2]!, limits) };
      case 'TESUB': {
        const subId = decodeSubId(frames[2]!);
        const pattern = decodePattern(frames[3]!, limits);
        return { command, reqId: id, subId, pattern, options: decodeNameValues(frames[4]!, limits) };
      }
      case 'TEUNSUB':
        return { command, reqId: id, subId: decodeSubId(frames[2]!) };
      case 'TEACK': {
        const subId = decodeSubId(frames[2]!);
        return { command, reqId: id, subId, acks: decodeAcks(frames[3]!, limits) };
      }
      case 'TLEASE': {
        const op = decodeLeaseOp(frames[2]!);
        return {
          command,
          reqId: id,
          op,
          id: decodeSequence(frames[3]!),
          ttlMs: decodeMs(frames[4]!, 'ttlMs'),
        };
      }
      case 'TWATCH': {
        const prefix = subtree(2);
        return { command, reqId: id, prefix, fromSequence: decodeSequence(frames[3]!) };
      }
      default:
        return { command: command as 'TPING' | 'TVOTE' | 'TUNFOLLOW', reqId: id };
    }
  } catch (error) {
    throw rethrown(error, command, reqId);
  }
}

/** A TSET batch: its size is checked before anything is unpacked (one batch is one reactor step). */
function decodeWrites(batch: Buffer, limits: Limits): PackedEntry[] {
  if (batch.length > limits.maxBatchBytes)
    throw new KvMsgError('batch-too-large', `batch is ${batch.length} bytes, limit ${limits.maxBatchBytes}`);
  return unpackBatch(batch, limits, limits.maxBatchEntries);
}

/** A KvMsgError from chp.ts (batch, sequence) as the codec's own error, knowing the command and request id. */
export function rethrown(error: unknown, command: string, reqId: number | undefined): unknown {
  if (error instanceof NativeMsgError || !(error instanceof KvMsgError)) return error;
  const prefix = `${error.reason}: `;
  const detail = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
  return new NativeMsgError(error.reason, detail, command, reqId);
}
