/**
 * Revisions and time to live of the replica's entries, as the application reads them
 * (`getEntry`, watch updates; issue 17). An entry's sequence is its revision. Its deadline comes
 * from the packed batch of a sync (`expiresAt`, on the server's clock) or, for an update applied
 * live (KVPUB carries `ttl=` seconds, relative), from when this client received it: noted here
 * rather than in the replica, so the replica keeps the server's entry as it came (client.view()).
 */
import { ttlSeconds, type KvMsg } from '../wire/index.js';
import type { Entry, Replica, ReplicaChange } from '../kv/index.js';
import { entryLease } from './conditions.js';

/** One key as `getEntry` returns it. */
export interface KeyEntry {
  readonly value: Buffer;
  /** the key's revision: the sequence of the change that wrote it */
  readonly sequence: number;
  /** milliseconds until the active deletes it (0 when due), undefined when it has no TTL */
  readonly ttlRemainingMs: number | undefined;
  /** the lease the key is attached to, if any */
  readonly lease?: number;
}

/** Deadlines of live updates, by key, bounded: past `limit` the oldest notes go first. */
export class Revisions {
  private readonly received = new Map<string, { sequence: number; expiresAt: number }>();

  constructor(private readonly limit = 1_000_000) {}

  /** A KVPUB applied live (or held for a sync): its `ttl=` counts from `now`. */
  noteLive(msg: KvMsg, now: number): void {
    if (!msg.properties.includes('ttl=')) return;
    let ttl = 0;
    try {
      ttl = ttlSeconds(msg.properties);
    } catch {
      return; // not a TTL the server would have taken
    }
    if (ttl <= 0) return;
    this.received.delete(msg.key);
    this.received.set(msg.key, { sequence: msg.sequence, expiresAt: now + ttl * 1000 });
    if (this.received.size > this.limit) this.received.delete(this.received.keys().next().value!);
  }

  /** Milliseconds left before `entry` expires, or undefined without a TTL. */
  ttlRemainingMs(entry: Pick<Entry, 'key' | 'sequence' | 'expiresAt'>, now: number): number | undefined {
    let expiresAt = entry.expiresAt;
    if (expiresAt <= 0) {
      const note = this.received.get(entry.key);
      if (note === undefined || note.sequence !== entry.sequence) return undefined;
      expiresAt = note.expiresAt;
    }
    return Math.max(0, expiresAt - now);
  }

  /** The TTL left of a change the replica applied, if it is still the key's latest (read in place). */
  ofChange(replica: Replica, change: ReplicaChange, now: number): number | undefined {
    const stamp = change.deleted ? undefined : replica.stamp(change.key);
    if (stamp?.sequence !== change.sequence) return undefined;
    return this.ttlRemainingMs({ key: change.key, ...stamp }, now);
  }

  /** The entry as the application reads it. */
  entry(entry: Entry | undefined, now: number): KeyEntry | undefined {
    if (entry === undefined) return undefined;
    const lease = entryLease(entry.properties);
    const ttlRemainingMs = this.ttlRemainingMs(entry, now);
    return {
      value: entry.body,
      sequence: entry.sequence,
      ttlRemainingMs,
      ...(lease === undefined ? {} : { lease }),
    };
  }
}
