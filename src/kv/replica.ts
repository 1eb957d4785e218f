/**
 * The client side of the Clone pattern, as pure logic: a local replica of one subtree that is
 * loaded from a snapshot (or a resume batch) and then follows published updates.
 *
 * The rules, from RFC 12 and the ZeroMQ guide's Model Six: subscribe first, then ask for the
 * snapshot; updates that arrive while a sync is in flight are held, and once the snapshot says
 * "state as of sequence S", held updates at or below S are dropped and the rest applied in order.
 * Every applied change becomes exactly one event; a change the replica already has (same or older
 * sequence) becomes none. No sockets, no clock: the transport drives this.
 */
import type { PackedBatch } from '../wire/index.js';
import type { Entry } from './kvmap.js';
import { ReplicaMap } from './replica-map.js';
import {
  changeOf,
  deletion,
  loadBatchesIntoEmpty,
  loadIntoEmpty,
  loadOver,
  type ChangeList,
} from './snapshot-load.js';

export type { ChangeList } from './snapshot-load.js';

export interface Change {
  readonly key: string;
  /** undefined when the key was deleted */
  readonly value: Buffer | undefined;
  readonly sequence: number;
  readonly deleted: boolean;
  readonly properties: string;
}

/**
 * Where applied changes go, one at a time: an array, or a first load's list. Never spread a
 * deleted prefix's changes into push(): a million arguments overflow V8's stack.
 */
interface ChangeSink {
  push(change: Change): unknown;
}

export interface OfferResult {
  readonly changes: Change[];
  /**
   * true when an update was missed (only detectable when the replica follows the whole map): the
   * replica now holds updates until the caller resumes from `sequence` and loads the result
   */
  readonly gap: boolean;
}

/**
 * The Clone follower's hold, shared by the client's Replica and the passive's ReplicationSink
 * (src/pair/replication-sink.ts): while a sync (a snapshot or a resume) is in flight, live updates
 * are held in arrival order; when the sync has brought the follower to some sequence, the held
 * updates it covers are dropped and the rest applied in order. Bounded: past `limit` entries it
 * holds no more and remembers that it overflowed, and the follower resumes again once it has
 * applied what it held (the updates it could not hold come after those).
 */
export class HeldUpdates {
  private held: Entry[] = [];
  private overflowed = false;

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.held.length;
  }

  hold(entry: Entry): void {
    if (this.held.length < this.limit) this.held.push(entry);
    else this.overflowed = true;
  }

  /**
   * The sync is over: the held updates, in order, each only if it is above `reached()` when its
   * turn comes (the follower's sequence, which moves as they are applied). The hold is empty from
   * now on, whether or not the caller applies them all.
   */
  release(reached: () => number): Iterable<Entry> {
    const held = this.held;
    this.held = [];
    return (function* () {
      for (const entry of held) if (entry.sequence > reached()) yield entry;
    })();
  }

  /** Forget what is held (the server it came from is no longer the one followed). */
  clear(): void {
    this.held = [];
    this.overflowed = false;
  }

  /** Whether updates were left out since the last call: the follower must resume again. */
  consumeOverflow(): boolean {
    const overflowed = this.overflowed;
    this.overflowed = false;
    return overflowed;
  }
}

const HELD_LIMIT = 100_000;

/**
 * The property a server adds to a published key change when the entry before it on the log was
 * not a key change (an event of the bus, which clients never see): the sequence of the last key
 * change before it, so that a replica of the whole map can still tell a missed update from an
 * event it was never meant to see.
 */
export const PREV_PROPERTY = 'twinstar-prev';
const PREV_LINE = `${PREV_PROPERTY}=`;

/**
 * The property of a change that deletes every key under its key, as one change (issue 17,
 * `deletePrefix`): its body is empty, and a replica applies it to every key it holds under the key.
 */
export const DELETE_PREFIX_PROPERTY = 'twinstar-delete-prefix';
const DELETE_PREFIX_LINE = `${DELETE_PREFIX_PROPERTY}=1\n`;

export function isDeletePrefix(entry: Pick<Entry, 'properties' | 'body'>): boolean {
  if (entry.body.length !== 0) return false;
  const { properties } = entry;
  return properties.startsWith(DELETE_PREFIX_LINE) || properties.includes(`\n${DELETE_PREFIX_LINE}`);
}

/** The entry without the server's `twinstar-prev` line, and that line's sequence. */
export function withoutPrev(entry: Entry): { entry: Entry; prev: number | undefined } {
  // Most updates carry no such line (most carry no properties at all): the entry itself, no copy.
  const at = entry.properties.indexOf(PREV_LINE);
  if (at < 0 || (at > 0 && entry.properties[at - 1] !== '\n')) return { entry, prev: undefined };
  const end = entry.properties.indexOf('\n', at);
  const prev = Number(entry.properties.slice(at + PREV_LINE.length, end < 0 ? undefined : end));
  const properties = entry.properties.slice(0, at) + (end < 0 ? '' : entry.properties.slice(end + 1));
  // A literal of the entry's own shape, not a spread: the replica holds one kind of object.
  const { key, sequence, uuid, body, expiresAt } = entry;
  const stripped: Entry = { key, sequence, uuid, properties, body, expiresAt };
  return { entry: stripped, prev: Number.isSafeInteger(prev) ? prev : undefined };
}

/** What a sync brought: plain CHP's entries, or the native TSYNC batches as they came. */
export type Synced = readonly Entry[] | { readonly batches: readonly PackedBatch[] };

/**
 * The replica keeps what its first load brought packed, as a server keeps its map, and what
 * changes after as objects (replica-map.ts): a late joiner of a million keys holds ~200 bytes a key
 * instead of ~600 and decodes none of them to join; a watcher applies an update with a `Map.set`.
 */
export class Replica {
  private entries = new ReplicaMap();
  private seq = -1;
  private syncing = false;
  private readonly held = new HeldUpdates(HELD_LIMIT);
  /** a subscription took effect during the sync in flight: resume again after it */
  private missedInSync = false;

  constructor(readonly subtree: string) {}

  /** The server sequence this replica reflects; -1 before the first snapshot. */
  get sequence(): number {
    return this.seq;
  }

  get size(): number {
    return this.entries.size;
  }

  get isSyncing(): boolean {
    return this.syncing;
  }

  get(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  /** The sequence and deadline of the key's entry, without decoding it. */
  stamp(key: string): { sequence: number; expiresAt: number } | undefined {
    return this.entries.stamp(key);
  }

  /** The entries under `prefix` as they are now (a copy). */
  values(prefix = ''): Entry[] {
    return this.entries.values(prefix);
  }

  /** A snapshot or resume request is in flight: hold updates until it ends. */
  beginSync(): void {
    this.syncing = true;
  }

  /**
   * Forget the updates held from the server we were following: at a failover they come from the
   * old active and may not exist on the new one. The new active's resume or snapshot is the truth.
   */
  dropHeld(): void {
    this.held.clear();
    this.missedInSync = false;
  }

  /**
   * A subscription took effect while a sync was in flight, whose answer may predate it: the
   * caller resumes again once the sync is over (`consumeOverflow`).
   */
  missedDuringSync(): void {
    this.missedInSync = true;
  }

  /** Whether updates were dropped while the last sync was in flight; the caller must resume again. */
  consumeOverflow(): boolean {
    const missed = this.missedInSync;
    this.missedInSync = false;
    return this.held.consumeOverflow() || missed;
  }

  /**
   * A published update (KVPUB) or one entry of a resume. Held while syncing; otherwise applied if
   * newer than the replica.
   */
  offer(published: Entry): OfferResult {
    const { entry, prev } = withoutPrev(published);
    if (!this.covers(entry)) return { changes: [], gap: false };
    if (this.syncing) {
      this.held.hold(entry);
      return { changes: [], gap: false };
    }
    if (entry.sequence <= this.seq) return { changes: [], gap: false };
    const missed = prev === undefined ? entry.sequence !== this.seq + 1 : prev > this.seq;
    if (this.subtree === '' && this.seq >= 0 && missed) {
      // Something between our sequence and this one was missed. Applying this one would move our
      // sequence past the hole and a resume would never fetch it: hold it, and everything after
      // it, until the caller's resume fills the hole.
      this.syncing = true;
      this.held.hold(entry);
      return { changes: [], gap: true };
    }
    const changes: Change[] = [];
    this.apply(entry, changes);
    return { changes, gap: false };
  }

  /** Whether a change concerns this replica: under its subtree, or a delete of a prefix of it. */
  private covers(entry: Entry): boolean {
    return (
      entry.key.startsWith(this.subtree) || (isDeletePrefix(entry) && this.subtree.startsWith(entry.key))
    );
  }

  /** A HUGZ heartbeat: with the whole map followed, a higher sequence means updates were missed. */
  heartbeat(sequence: number): boolean {
    return !this.syncing && this.subtree === '' && this.seq >= 0 && sequence > this.seq;
  }

  /**
   * A full snapshot as of `sequence` replaces the replica. Returns one change per key whose value
   * differs from before (including deletions of keys the snapshot no longer has), so the
   * application converges without stale keys, then the held updates newer than the snapshot.
   * An empty replica (the first load) takes the fast path: nothing to compare (snapshot-load.ts).
   */
  loadSnapshot(synced: Synced, sequence: number): ChangeList {
    const changes = this.load(synced, sequence);
    this.seq = sequence;
    this.releaseHeld(changes);
    return changes;
  }

  /** A sync's answer: a full snapshot (`resync`), or a resume. */
  loadSync(resync: boolean, synced: Synced, sequence: number): ChangeList {
    return resync ? this.loadSnapshot(synced, sequence) : this.loadResume(entriesOf(synced), sequence);
  }

  private load(synced: Synced, sequence: number): ChangeList & ChangeSink {
    if (this.entries.size === 0) {
      const asIs = 'batches' in synced && synced.batches.every((b) => b.canonical);
      const first = asIs
        ? loadBatchesIntoEmpty(synced.batches, this.subtree, this.entries.loaded)
        : loadIntoEmpty(entriesOf(synced), this.subtree, this.entries);
      if (first) return first;
      // A key came twice (no server sends that): the general path, from an empty map again.
      this.entries = new ReplicaMap();
      return loadOver(entriesOf(synced), this.subtree, this.entries, -1);
    }
    return loadOver(entriesOf(synced), this.subtree, this.entries, sequence);
  }

  /** A resume batch: the changes after our sequence up to `sequence`, then the held updates. */
  loadResume(entries: Iterable<Entry>, sequence: number): Change[] {
    const changes: Change[] = [];
    for (const entry of entries) {
      if (entry.sequence <= this.seq || !this.covers(entry)) continue;
      this.apply(entry, changes);
    }
    this.seq = Math.max(this.seq, sequence);
    this.releaseHeld(changes);
    return changes;
  }

  /** Ends the sync: the held updates above the replica's sequence are applied, into `out`. */
  private releaseHeld(out: ChangeSink): void {
    this.syncing = false;
    for (const entry of this.held.release(() => this.seq)) this.apply(entry, out);
  }

  /** Applies one entry; its changes (none, one, or a deleted prefix's many) go into `out`. */
  private apply(entry: Entry, out: ChangeSink): void {
    this.seq = entry.sequence;
    if (isDeletePrefix(entry)) {
      // One change: every key held under the prefix goes, each one event with this sequence.
      for (const before of this.values(entry.key)) {
        const { key } = before;
        this.entries.put(deletion(key));
        out.push({
          key,
          value: undefined,
          sequence: entry.sequence,
          deleted: true,
          properties: before.properties,
        });
      }
      return;
    }
    if (entry.body.length === 0) {
      if (!this.entries.put(entry)) return; // deleting an absent key changes nothing
      out.push({
        key: entry.key,
        value: undefined,
        sequence: entry.sequence,
        deleted: true,
        properties: entry.properties,
      });
      return;
    }
    this.entries.put(entry);
    out.push(changeOf(entry));
  }
}

/** A sync's entries, decoded. */
function entriesOf(synced: Synced): readonly Entry[] {
  return 'batches' in synced ? synced.batches.flatMap((b) => b.entries()) : synced;
}
