/**
 * What the sequencer drives: a state machine fed the sequenced log. The key-value map is the first
 * (`KvMachine`); the event bus will add streams and consumer groups on the same log, so that they
 * get one order, replication and failover from the sequencer for free (REVIEW.md §3.2).
 *
 * Both nodes apply every change in sequence order; only the active asks `due` for the changes a
 * passed deadline calls for (TTL expiry today, redelivery later), and sequences them like writes.
 */
import type { Entry } from '../kv/index.js';

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
}
