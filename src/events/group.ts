/**
 * A consumer group as a pure state machine (issue 16): a work queue over a stream, each event
 * handled by one member, with ack deadlines, redelivery, flow control and dead letters, in the
 * manner of a JetStream pull consumer (AckWait, MaxDeliver, MaxAckPending, Nak with a delay,
 * in-progress, Term).
 *
 * Why two halves. Every change is a sequenced `GroupOp` that both nodes `apply` in log order, so
 * the passive mirrors the group and can take over with it. Only the active `decide`s which ops to
 * sequence next (deliveries, expiries, dead letters), from the time it passes in, as it does for
 * TTL: the passive never acts on a deadline, and reaches the active's state only by applying the
 * ops the active sequenced. No I/O, no clock reads.
 *
 * Each event the group has seen is in one place: above the `cursor` (not yet considered), in flight
 * with one member (until its ack deadline), waiting for a redelivery (from a not-before time), or
 * done (acked, termed or dead-lettered: forgotten, only counted). An event at or below the cursor
 * that is not pending is done or was not the group's; the machine keeps no list of done events.
 *
 * Choices this design makes:
 * - A passed ack deadline is an explicit `expire` op (the event waits from that deadline), then a
 *   `deliver` in the same decision if a member has room: a late ack from the first member is then
 *   stale and ignored. An expired event that has had `maxDeliver` deliveries goes straight to
 *   `dead-letter`; so does a waiting one (nak'ed, or released by a leave) once it is due.
 * - Waiting events go first, oldest sequence first, then new events in stream order; a new event
 *   is never skipped for lack of room (the cursor stops before it), so one member sees the backlog
 *   in order. Each goes to the member with the fewest in flight, ties to the smallest id; a full
 *   member is passed over, never waited for. An event redelivered in the decision that expired it
 *   goes to another member than the one that let it expire when one has room (the issue: "goes to
 *   another member"); a nak'ed or released one goes to any.
 * - `deliver` of a new event moves the cursor to it; `advance` moves it past events that were not
 *   the group's, so that `lag` counts only what is left to consider. The node may sequence
 *   `advance` lazily (it only affects `lag`).
 * - A `deliver` or `advance` never names a sequence beyond the stream's head: the log orders a
 *   publish before any op on it. The machine does not know the stream, so it cannot check this.
 * - Ops that do not fit (an ack from a member that does not hold the event, an unknown member, a
 *   full member, an event already done) are ignored and counted, never thrown: they are sequenced,
 *   so both nodes count them alike.
 * - A member is in the group from `join` to `leave`; noticing that a client is gone is the node's
 *   job. A non-durable group with no member is `abandoned()`: the caller deletes it (the name
 *   avoids `empty()`, which on a `StateMachine` means a fresh machine). A durable one keeps its
 *   cursor and pending events; what was published meanwhile goes out when a member joins.
 * - `decide` looks at every pending event: its cost is the events in flight plus those waiting,
 *   bounded by members × maxAckPending while members keep up.
 */
import { ConfigError } from '../errors.js';
import type {
  ApplyResult,
  GroupConfig,
  GroupCounters,
  GroupJson,
  GroupOp,
  GroupStats,
  MemberJson,
  PendingJson,
  StreamView,
} from './group-ops.js';

interface Pending {
  deliveries: number;
  /** Who holds it; null while it waits for a redelivery. */
  member: string | null;
  /** The ack deadline while held, the earliest redelivery while waiting. */
  at: number;
}

interface Member {
  readonly since: number;
  inFlight: number;
}

const ZERO: GroupCounters = { acked: 0, termed: 0, deadLetters: 0, redeliveries: 0, ignored: 0 };

function checkConfig(config: GroupConfig): void {
  const whole = (name: keyof GroupConfig, min: number) => {
    const value = config[name] as number;
    if (!Number.isSafeInteger(value) || value < min)
      throw new ConfigError(`group.${name}`, `group ${config.name}: ${name} must be an integer >= ${min}`);
  };
  whole('ackWaitMs', 1);
  whole('maxDeliver', 1);
  whole('maxAckPending', 1);
}

export class GroupMachine {
  private cursor = 0;
  private readonly members = new Map<string, Member>();
  private readonly pending = new Map<number, Pending>();
  private counters = { ...ZERO };

  constructor(readonly config: GroupConfig) {
    checkConfig(config);
  }

  /** Apply one sequenced op, identically on both nodes. */
  apply(op: GroupOp): ApplyResult {
    const done = this.change(op);
    if (!done) this.counters.ignored++;
    return done ? 'applied' : 'ignored';
  }

  private change(op: GroupOp): boolean {
    switch (op.type) {
      case 'join':
        if (this.members.has(op.member)) return false;
        this.members.set(op.member, { since: op.at, inFlight: 0 });
        return true;
      case 'leave': {
        if (!this.members.delete(op.member)) return false;
        // What it held may go to another member at once (its deliveries stay counted).
        for (const p of this.pending.values())
          if (p.member === op.member) {
            p.member = null;
            p.at = op.at;
          }
        return true;
      }
      case 'deliver':
        return this.deliver(op.event, op.member, op.deadline);
      case 'ack':
      case 'term': {
        if (this.held(op.event, op.member) === undefined) return false;
        this.release(op.event, true);
        if (op.type === 'ack') this.counters.acked++;
        else this.counters.termed++;
        return true;
      }
      case 'nak':
      case 'working': {
        const p = this.held(op.event, op.member);
        if (p === undefined) return false;
        if (op.type === 'nak') {
          this.release(op.event, false);
          p.at = op.notBefore;
        } else p.at = op.deadline;
        return true;
      }
      case 'expire': {
        const p = this.pending.get(op.event);
        if (p === undefined || p.member === null) return false;
        this.release(op.event, false);
        return true; // it waits from its deadline: `at` stays
      }
      case 'dead-letter': {
        if (!this.pending.has(op.event)) return false;
        this.release(op.event, true);
        this.counters.deadLetters++;
        return true;
      }
      case 'advance':
        if (!(op.upTo > this.cursor)) return false;
        this.cursor = op.upTo;
        return true;
    }
  }

  private deliver(event: number, memberId: string, deadline: number): boolean {
    const member = this.members.get(memberId);
    if (member === undefined || member.inFlight >= this.config.maxAckPending) return false;
    let p = this.pending.get(event);
    if (p === undefined) {
      if (!(event > this.cursor) || !Number.isSafeInteger(event)) return false;
      this.cursor = event;
      p = { deliveries: 0, member: null, at: 0 };
      this.pending.set(event, p);
    } else if (p.member !== null || p.deliveries >= this.config.maxDeliver) return false;
    if (p.deliveries > 0) this.counters.redeliveries++;
    p.deliveries++;
    p.member = memberId;
    p.at = deadline;
    member.inFlight++;
    return true;
  }

  /** An event the group holds (in flight or waiting), as plain data; undefined when it holds none. */
  pendingOf(event: number): { deliveries: number; member: string | null; at: number } | undefined {
    const p = this.pending.get(event);
    return p === undefined ? undefined : { ...p };
  }

  /**
   * Whether the event is done for the group: considered (at or below the cursor) and no longer
   * pending. It was acked, termed or dead-lettered, or it was not the group's: it will not be
   * delivered again.
   */
  settled(event: number): boolean {
    return event <= this.cursor && !this.pending.has(event);
  }

  /** Whether this member is in the group. */
  hasMember(member: string): boolean {
    return this.members.has(member);
  }

  /** The members' ids. */
  memberIds(): string[] {
    return [...this.members.keys()];
  }

  /** The event if `member` holds it now. */
  private held(event: number, member: string): Pending | undefined {
    const p = this.pending.get(event);
    return p !== undefined && p.member === member ? p : undefined;
  }

  /** Takes the event from its holder; `finished` forgets it, else it waits (`at` set by the caller). */
  private release(event: number, finished: boolean): void {
    const p = this.pending.get(event)!;
    if (p.member !== null) this.members.get(p.member)!.inFlight--;
    p.member = null;
    if (finished) this.pending.delete(event);
  }

  /**
   * The ops the active should sequence at `now`, in order (asked on the active only; nothing
   * changes until they are applied). `max` bounds how many. Call it after every applied op that
   * frees room or adds work (publish, join, leave, ack, nak, term) and when `nextDeadline()` passes.
   * `eligible` says which members may take events now; the others count as full (the node passes
   * over a member whose client it cannot reach yet, as just after a failover).
   */
  decide(
    now: number,
    stream: StreamView = { candidates: [], upTo: 0 },
    max = Infinity,
    eligible: (member: string) => boolean = () => true,
  ): GroupOp[] {
    const ops: GroupOp[] = [];
    const full = () => ops.length >= max;
    const load = new Map<string, number>();
    for (const [id, m] of this.members) load.set(id, m.inFlight);
    const deadline = now + this.config.ackWaitMs;
    // Members with room, ordered: not `avoid` first, then fewest in flight, then smallest id.
    const before = (a: string, b: string, avoid?: string) =>
      Number(a === avoid) - Number(b === avoid) || load.get(a)! - load.get(b)! || (a < b ? -1 : 1);
    const assign = (event: number, avoid?: string): boolean => {
      let best: string | undefined;
      for (const [id, n] of load)
        if (
          n < this.config.maxAckPending &&
          eligible(id) &&
          (best === undefined || before(id, best, avoid) < 0)
        )
          best = id;
      if (best === undefined) return false;
      load.set(best, load.get(best)! + 1);
      ops.push({ type: 'deliver', event, member: best, deadline });
      return true;
    };

    // 1. Ack deadlines passed: dead-letter what has had its deliveries, else it waits again.
    const expired = [...this.pending]
      .filter(([, p]) => p.member !== null && p.at <= now)
      .sort(([a, p], [b, q]) => p.at - q.at || a - b);
    const waiting = new Map<number, Pending>();
    const lastHolder = new Map<number, string>();
    for (const [event, p] of expired) {
      if (full()) return ops;
      load.set(p.member!, load.get(p.member!)! - 1);
      if (p.deliveries >= this.config.maxDeliver) ops.push({ type: 'dead-letter', event });
      else {
        ops.push({ type: 'expire', event });
        waiting.set(event, p);
        lastHolder.set(event, p.member!);
      }
    }
    // 2. Waiting events that are due, oldest first.
    for (const [event, p] of this.pending) if (p.member === null && p.at <= now) waiting.set(event, p);
    const due = [...waiting.keys()].sort((a, b) => a - b);
    let room = true;
    for (const event of due) {
      if (full()) return ops;
      if (waiting.get(event)!.deliveries >= this.config.maxDeliver) ops.push({ type: 'dead-letter', event });
      else if (room) room = assign(event, lastHolder.get(event));
    }
    // 3. New events in stream order, stopping at the first no member has room for.
    let cursor = this.cursor;
    for (const event of stream.candidates) {
      if (!(event > cursor)) continue;
      if (full() || !room || !(room = assign(event))) return ops;
      cursor = event;
    }
    if (stream.upTo > cursor && !full()) ops.push({ type: 'advance', upTo: stream.upTo });
    return ops;
  }

  /**
   * The earliest time at which `decide` would act without any new op or publish: an ack deadline,
   * or a waiting event's not-before when a member has room for it or it is due for a dead letter.
   * Undefined when only a new op can give `decide` work. May be in the past: act at once.
   */
  nextDeadline(): number | undefined {
    let room = false;
    for (const m of this.members.values()) room ||= m.inFlight < this.config.maxAckPending;
    let next: number | undefined;
    for (const p of this.pending.values()) {
      const counts = p.member !== null || room || p.deliveries >= this.config.maxDeliver;
      if (counts && (next === undefined || p.at < next)) next = p.at;
    }
    return next;
  }

  /** A non-durable group with no member: nothing will consume it, the caller deletes it. */
  abandoned(): boolean {
    return !this.config.durable && this.members.size === 0;
  }

  /** The cursor: every stream sequence up to it has been considered for the group. */
  get considered(): number {
    return this.cursor;
  }

  /** For metrics and the CLI; `head` is the stream's last sequence. */
  stats(head: number): GroupStats {
    let inFlight = 0;
    for (const p of this.pending.values()) if (p.member !== null) inFlight++;
    const { acked, termed, deadLetters, redeliveries, ignored } = this.counters;
    return {
      lag: Math.max(0, head - this.cursor),
      pending: inFlight,
      waiting: this.pending.size - inFlight,
      acked,
      termed,
      redeliveries,
      deadLetters,
      ignored,
      members: [...this.members]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([id, m]) => ({ id, inFlight: m.inFlight })),
    };
  }

  toJSON(): GroupJson {
    const { name, ackWaitMs, maxDeliver, maxAckPending, durable } = this.config;
    const { acked, termed, deadLetters, redeliveries, ignored } = this.counters;
    const members: MemberJson[] = [...this.members]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, m]) => ({ id, since: m.since }));
    const pending: PendingJson[] = [...this.pending]
      .sort(([a], [b]) => a - b)
      .map(([event, p]) => ({ event, deliveries: p.deliveries, member: p.member, at: p.at }));
    return {
      config: { name, ackWaitMs, maxDeliver, maxAckPending, durable },
      cursor: this.cursor,
      members,
      pending,
      counters: { acked, termed, deadLetters, redeliveries, ignored },
    };
  }

  /** Rebuilds a group from `toJSON()` output (a passive's resync, a restart). */
  static fromJSON(json: GroupJson): GroupMachine {
    const group = new GroupMachine({ ...json.config });
    group.cursor = json.cursor;
    for (const m of json.members) group.members.set(m.id, { since: m.since, inFlight: 0 });
    for (const p of json.pending) {
      group.pending.set(p.event, { deliveries: p.deliveries, member: p.member, at: p.at });
      if (p.member !== null) group.members.get(p.member)!.inFlight++;
    }
    group.counters = { ...json.counters };
    return group;
  }
}
