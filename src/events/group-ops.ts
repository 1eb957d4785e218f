/**
 * The vocabulary of a consumer group (issue 16): its configuration, the sequenced operations that
 * change it, and its plain-data snapshot. Kept apart from the machine so that the codec and the
 * node can name these types without pulling in the machine's logic.
 *
 * Events are named by their stream sequence; members by an id the node chooses (a client's
 * subscription id). Times are absolute milliseconds since the Unix epoch, chosen by the active.
 */

export interface GroupConfig {
  readonly name: string;
  /** How long a member may hold an event without acking (or saying `working`) before it goes to another. */
  readonly ackWaitMs: number;
  /** Deliveries an event gets at most; one that needs another after that is dead-lettered. */
  readonly maxDeliver: number;
  /** Events a member may hold unacked at once; a full member gets no more until it acks. */
  readonly maxAckPending: number;
  /** A durable group keeps its cursor and pending events while it has no member. */
  readonly durable: boolean;
}

/** A member joined the group (it receives events from the next `deliver`). */
export interface JoinOp {
  readonly type: 'join';
  readonly member: string;
  readonly at: number;
}
/** A member left or was declared gone: the events it held become redeliverable at once. */
export interface LeaveOp {
  readonly type: 'leave';
  readonly member: string;
  readonly at: number;
}
/** The active gives an event to a member, until `deadline` (an ack wait). Counts a delivery. */
export interface DeliverOp {
  readonly type: 'deliver';
  readonly event: number;
  readonly member: string;
  readonly deadline: number;
}
/** The member handled the event: done, never delivered again. */
export interface AckOp {
  readonly type: 'ack';
  readonly event: number;
  readonly member: string;
}
/** The member gives the event back: redeliverable to any member from `notBefore` on. */
export interface NakOp {
  readonly type: 'nak';
  readonly event: number;
  readonly member: string;
  readonly notBefore: number;
}
/** The member is still on it: its ack deadline moves to `deadline`. */
export interface WorkingOp {
  readonly type: 'working';
  readonly event: number;
  readonly member: string;
  readonly deadline: number;
}
/** The member gives up on the event for good: done, never redelivered, not a dead letter. */
export interface TermOp {
  readonly type: 'term';
  readonly event: number;
  readonly member: string;
}
/** The ack deadline of an event in flight passed: it becomes redeliverable from that deadline. */
export interface ExpireOp {
  readonly type: 'expire';
  readonly event: number;
}
/** An event that needs another delivery but has had `maxDeliver`: out of the group, counted. */
export interface DeadLetterOp {
  readonly type: 'dead-letter';
  readonly event: number;
}
/** Every event of the stream up to `upTo` has been considered (those left were not the group's). */
export interface AdvanceOp {
  readonly type: 'advance';
  readonly upTo: number;
}

export type GroupOp =
  JoinOp | LeaveOp | DeliverOp | AckOp | NakOp | WorkingOp | TermOp | ExpireOp | DeadLetterOp | AdvanceOp;

/** What `apply` did: an op that does not fit the state (a stale ack, an unknown member) is ignored. */
export type ApplyResult = 'applied' | 'ignored';

/**
 * What the active knows of the stream when it asks what to do: `candidates` are the sequences
 * above the group's cursor that match its pattern, ascending, and every such sequence up to
 * `upTo` is among them (the caller may cover only part of the stream: then `upTo` is the last
 * sequence it looked at, not the stream's head).
 */
export interface StreamView {
  readonly candidates: readonly number[];
  readonly upTo: number;
}

/** An event the group holds: in flight with `member` until `at`, or waiting (member null) from `at`. */
export interface PendingJson {
  readonly event: number;
  readonly deliveries: number;
  readonly member: string | null;
  readonly at: number;
}

export interface MemberJson {
  readonly id: string;
  readonly since: number;
}

export interface GroupCounters {
  readonly acked: number;
  readonly termed: number;
  readonly deadLetters: number;
  readonly redeliveries: number;
  readonly ignored: number;
}

/** The whole group state as plain data, fields in a fixed order, lists sorted (deep-equal on both nodes). */
export interface GroupJson {
  readonly config: GroupConfig;
  readonly cursor: number;
  readonly members: readonly MemberJson[];
  readonly pending: readonly PendingJson[];
  readonly counters: GroupCounters;
}

export interface GroupStats {
  /** Stream events above the cursor: not yet considered for the group. */
  readonly lag: number;
  /** Events in flight (delivered, not yet acked). */
  readonly pending: number;
  /** Events waiting for a redelivery (nak'ed, expired, or released by a member that left). */
  readonly waiting: number;
  readonly acked: number;
  readonly termed: number;
  readonly redeliveries: number;
  readonly deadLetters: number;
  readonly ignored: number;
  readonly members: readonly { readonly id: string; readonly inFlight: number }[];
}
