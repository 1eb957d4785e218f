/**
 * What the sequencer drives: a state machine fed the sequenced log. The key-value map is the first
 * (`KvMachine`); the event bus will add streams and consumer groups on the same log, so that they
 * get one order, replication and failover from the sequencer for free (REVIEW.md §3.2).
 *
 * Both nodes apply every change in sequence order; only the active asks `due` for the changes a
 * passed deadline calls for (TTL expiry today, redelivery later), and sequences them like writes.
 */
import type { Entry, Written } from '../kv/index.js';

/** A change not yet sequenced: what a client asked for. */
export interface Change {
  readonly key: string;
  readonly uuid: string;
  readonly properties: string;
  readonly body: Buffer;
  readonly expiresAt: number;
}

/** A change a machine asks for itself; the sequencer gives it a fresh uuid. */
export type DueChange = Omit<Change, 'uuid'>;

export interface StateMachine {
  /** Apply one sequenced change. `now` is when this node applied it. */
  apply(entry: Entry, now: number): void;
  /**
   * A point-in-time copy of the whole state as entries: the view is fixed when this is called (the
   * machine may keep changing while it is read), and may be read across event-loop turns.
   */
  snapshot(): Promise<Entry[]>;
  /** An empty machine of the same kind, to restore a snapshot into while this one keeps serving. */
  empty(): StateMachine;
  /** Load snapshot entries (a chunk of them at a time) into a machine made by `empty()`. */
  restore(entries: Iterable<Entry>, now: number): void;
  /** Changes that deadlines passed at `now` call for, at most `max` (asked on the active only). */
  due(now: number, max: number): DueChange[];
  /** Set by the machine that keeps each key's current entry (the key-value machine): see below. */
  readonly writes?: CurrentWrites;
}

/**
 * The writes a machine keeps as keys' current entries. Each entry holds its write's uuid, so while
 * it is current the map itself answers whether a retry of that write was applied, and the
 * de-duplication window need not hold the uuid too (a million keys written once would fill it with
 * a million uuids, 44 MB, for nothing). The sequencer hands a uuid to the window only once its
 * entry is replaced or deleted, and when its change leaves no entry (a delete).
 */
export interface CurrentWrites {
  /** The write that made the key's current entry, if the key is held. */
  current(key: string): Written | undefined;
  /**
   * The writes whose entries this change, not yet applied, replaces or deletes. `current`, when
   * given, is what `current(entry.key)` just answered (null: nothing), so it is not looked up again.
   */
  replacedBy(entry: Entry, current?: Written | null): readonly Written[];
  /** Whether this change, once applied, is its key's current entry (a put, not a delete). */
  keeps(entry: Entry): boolean;
}
