/**
 * Byte sizes derived from the message limits: how big one entry can be, how big a packed chunk may
 * grow, and the largest frame a socket must accept (ZeroMQ's `maxMessageSize`, which it checks per
 * frame and answers by disconnecting the sender). Pure arithmetic, no I/O.
 */
import { MAX_UUID_BYTES, type Limits } from './chp.js';
import { FIXED_BYTES } from './packed.js';

/** The fields of an entry that take space, as a packed batch or a held object carries them. */
export interface Sized {
  readonly key: string;
  readonly uuid: string;
  readonly properties: string;
  readonly body: Buffer;
}

/**
 * What one held entry costs in memory, roughly: its bytes plus the object and string headers.
 * Budgets (replay log, pending list) count this; it is cheap (no UTF-8 scan).
 */
export const ENTRY_OVERHEAD_BYTES = 160;

export function footprint(entry: Sized): number {
  return (
    ENTRY_OVERHEAD_BYTES +
    2 * (entry.key.length + entry.properties.length) +
    entry.uuid.length +
    entry.body.length
  );
}

/** The exact size of an entry inside a packed batch. */
export function packedSize(entry: Sized): number {
  return (
    FIXED_BYTES +
    Buffer.byteLength(entry.key) +
    entry.uuid.length +
    Buffer.byteLength(entry.properties) +
    entry.body.length
  );
}

/** The largest packed entry these limits allow. */
export function maxEntryBytes(limits: Limits): number {
  return FIXED_BYTES + limits.maxKeyBytes + MAX_UUID_BYTES + limits.maxPropertiesBytes + limits.maxValueBytes;
}

/**
 * Byte budget of one packed chunk (native snapshot chunk, replication batch): a chunk closes before
 * an entry would take it past this, so no chunk is bigger than this or than one entry.
 */
export function chunkBytes(limits: Limits): number {
  return 2 * maxEntryBytes(limits);
}

/**
 * Headroom above a frame's payload for what a mechanism adds (CURVE's MESSAGE command: name,
 * nonce and MAC), so a frame exactly at a limit is never refused by the socket.
 */
export const FRAME_SLACK_BYTES = 4096;

/** Splits entries, in order, into runs of at most `maxEntries` and (but for one huge entry) `maxBytes`. */
export function* chunked<T extends Sized>(
  entries: readonly T[],
  maxEntries: number,
  maxBytes: number,
): Generator<T[]> {
  for (const chunk of sizedChunks(entries, maxEntries, maxBytes)) yield chunk.entries;
}

/** `chunked`, with each run's packed size (the sum of its entries' `packedSize`). */
export function* sizedChunks<T extends Sized>(
  entries: readonly T[],
  maxEntries: number,
  maxBytes: number,
): Generator<{ entries: T[]; bytes: number }> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    const size = packedSize(entries[i]!);
    if (i > start && (i - start >= maxEntries || bytes + size > maxBytes)) {
      yield { entries: entries.slice(start, i), bytes };
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < entries.length) yield { entries: entries.slice(start), bytes };
}

/** The largest single frame of a kvmsg (key, sequence, uuid, properties or body). */
export function maxKvFrameBytes(limits: Limits): number {
  return Math.max(limits.maxKeyBytes, 8, MAX_UUID_BYTES, limits.maxPropertiesBytes, limits.maxValueBytes);
}

/**
 * The largest TSET batch frame the snapshot ROUTER reads: twice `maxBatchBytes`. A batch above
 * `maxBatchBytes` is refused with TERROR 'batch-too-large' naming the limits, so that a client
 * configured with larger ones learns them; a frame beyond this disconnects its sender unread.
 */
export function maxNativeBatchBytes(limits: Limits): number {
  return 2 * limits.maxBatchBytes;
}

/** Every socket's `maxMessageSize` (bytes per frame, a larger one disconnects its sender). */
export interface SocketFrameLimits {
  /** snapshot ROUTER: requests (subtree, prefixes, TSET batches) */
  router: number;
  /** collector SUB: KVSET frames */
  collector: number;
  /** publisher PUB: subscriptions (a prefix) */
  publisher: number;
  /** peer link SUB: replication batches and snapshot chunks (chunkBytes) */
  peer: number;
  /** a client DEALER: native snapshot chunks, TPUB, replies */
  clientDealer: number;
  /** a client SUB: KVPUB and HUGZ frames */
  clientSub: number;
  /** PUB sockets that only ever receive subscriptions to everything or to a subtree */
  subscriptionsOnly: number;
}

export function socketFrameLimits(limits: Limits, maxSubtreeBytes: number): SocketFrameLimits {
  const kv = maxKvFrameBytes(limits) + FRAME_SLACK_BYTES;
  const chunk = Math.max(chunkBytes(limits), maxEntryBytes(limits)) + FRAME_SLACK_BYTES;
  return {
    router: Math.max(
      kv,
      maxSubtreeBytes + FRAME_SLACK_BYTES,
      maxNativeBatchBytes(limits) + FRAME_SLACK_BYTES,
    ),
    collector: kv,
    publisher: maxSubtreeBytes + FRAME_SLACK_BYTES,
    peer: chunk,
    clientDealer: Math.max(chunk, kv),
    clientSub: kv,
    subscriptionsOnly: maxSubtreeBytes + FRAME_SLACK_BYTES,
  };
}
