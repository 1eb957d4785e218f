/**
 * The native update stream (issue 18; docs/protocol.md, "The update stream"): what a native
 * client without CURVE follows instead of the RFC 12 publisher. A server's second XPUB, on port
 * P+3, sends the key changes released in one go as packed batches, one message per subscribed
 * prefix, and the publisher's HUGZ as they are (a 5-frame kvmsg keyed `HUGZ`).
 *
 *   batch := [topic, packed]    topic = the prefix a client subscribed to, then one NUL byte
 *                               packed = packBatch of KVPUBs (entries with `expiresAt` 0: a TTL
 *                               stays relative, in the `ttl` property, as a KVPUB carries it)
 *
 * A SUB matches topics by prefix, so a client subscribes to `prefix + NUL`: the NUL ends the
 * prefix, and a batch for a longer prefix under it (`/a/b/` under `/a/`) does not match. A key
 * holds no NUL outside the event bus's reserved namespace, which is never published; a client
 * still takes only the topics it asked for (`updatesPrefix`). An empty batch tells the
 * subscribers of a prefix that a subscription to it is in force from that message on.
 */
import { type PackedEntry, packBatch } from './packed.js';

const TOPIC_END = 0;

/** The topic of a prefix's batches, and what a client subscribes to for that prefix. */
export function updatesTopic(prefix: string): Buffer {
  const bytes = Buffer.from(prefix);
  const topic = Buffer.allocUnsafe(bytes.length + 1);
  bytes.copy(topic);
  topic[bytes.length] = TOPIC_END;
  return topic;
}

/** The prefix a batch's topic names, or undefined for a frame that is not a batch topic. */
export function updatesPrefix(topic: Buffer): string | undefined {
  if (topic.length === 0 || topic[topic.length - 1] !== TOPIC_END) return undefined;
  return topic.toString('utf8', 0, topic.length - 1);
}

/**
 * A batch of published changes (KVPUBs: `expiresAt` 0) for the subscribers of `prefix`; `bytes`,
 * their packed size when the caller has it already (sizes.ts sizedChunks).
 */
export function encodeUpdates(prefix: string, entries: readonly PackedEntry[], bytes?: number): Buffer[] {
  return [updatesTopic(prefix), packBatch(entries, bytes)];
}

/** Whether a message of the update stream is a batch (two frames) rather than a HUGZ (five). */
export function isUpdates(frames: readonly Buffer[]): boolean {
  return frames.length === 2;
}
