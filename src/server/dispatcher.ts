/**
 * The event bus's delivery engine on the active (issue 16, docs/events.md "Delivery"). A fan-out
 * subscription has an in-memory cursor: every matching event the passive holds, at most `window`
 * not yet taken. A group's state is on the log (core/bus-machine.ts): the engine asks each group
 * what to do (`decide`), sequences those ops, then sends the deliveries, only to members whose
 * client it can reach; a member not heard for `memberTimeoutMs` leaves. Each pass is bounded.
 */
import { eventKey, eventTopic, type GroupConfig, type GroupOp } from '../events/index.js';
import { ZERO_UUID, type DueChange } from '../core/index.js';
import type { Entry } from '../kv/index.js';
import type { EventAck, PackedEntry } from '../wire/index.js';
import type { ServerContext } from './context.js';
import {
  SubscribeError,
  ackOp,
  checkSame,
  eventChange,
  startOf,
  delivered,
  orphanKey,
  subKey,
  type SubscribeRequest,
  type Subscriber,
} from './subscriptions.js';

export { SubscribeError, eventChange, type From, type SubscribeRequest } from './subscriptions.js';

/** Ops one group may sequence in one pass; the rest waits for the next turn. */
const OPS_PER_PASS = 2_000;
/** Events in one TEVT. */
const EVENTS_PER_MESSAGE = 256;
const SWEEP_MS = 250;
const TICK_MS = 50;

export interface DispatcherOptions {
  /** a member (or fan-out subscriber) not heard for this long is gone */
  readonly memberTimeoutMs: number;
  /** group settings a subscription does not give */
  readonly defaults: Pick<GroupConfig, 'ackWaitMs' | 'maxDeliver' | 'maxAckPending'>;
}

export class Dispatcher {
  private readonly subs = new Map<string, Subscriber>();
  private readonly bySub = new Map<string, string>();
  private readonly heard = new Map<string, number>();
  /** group members restored from the log with no client yet: since when */
  private readonly orphans = new Map<string, number>();
  private running = false;
  private scheduled: NodeJS.Immediate | undefined;
  private tick: NodeJS.Timeout | undefined;
  private lastSweep = 0;

  constructor(
    private readonly ctx: ServerContext,
    private readonly options: DispatcherOptions,
    /** the last sequence clients may see (what the passive holds) */
    private readonly published: () => number,
  ) {}

  /** This node became active (and sequences): deliver from now on. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastSweep = this.ctx.now();
    this.tick = setInterval(() => this.onTick(), TICK_MS);
    this.tick.unref?.();
    this.schedule();
  }

  /** No longer active: forget the subscribers (they subscribe again on the new active). */
  stop(): void {
    this.running = false;
    clearInterval(this.tick);
    clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.subs.clear();
    this.bySub.clear();
    this.heard.clear();
    this.orphans.clear();
  }

  /** Any request from a client: it is alive. */
  heardFrom(identity: Buffer): void {
    if (this.running) this.heard.set(identity.toString('latin1'), this.ctx.now());
  }

  /** An event or slot write passed the watermark: there may be something to deliver. */
  released(): void {
    this.schedule();
  }

  // Requests. ------------------------------------------------------------------------------------

  /** Registers a subscription; resolves with TEOK's info once the group ops it needed are durable. */
  async subscribe(identity: Buffer, request: SubscribeRequest): Promise<Record<string, string>> {
    const now = this.ctx.now();
    this.heardFrom(identity);
    const previous = this.subs.get(request.member);
    if (previous !== undefined) this.forget(previous);
    const { bus } = this.ctx.store;
    const start = startOf(request.from, this.published());
    let info: Record<string, string>;
    if (request.group === undefined) {
      info = { start: String(start) };
    } else {
      const { name } = request.group;
      const group = bus.groups.get(name);
      if (group === undefined) {
        const config: GroupConfig = {
          name,
          ackWaitMs: request.group.ackWaitMs ?? this.options.defaults.ackWaitMs,
          maxDeliver: request.group.maxDeliver ?? this.options.defaults.maxDeliver,
          maxAckPending: request.group.maxAckPending ?? this.options.defaults.maxAckPending,
          durable: request.group.durable ?? true,
        };
        this.commit(bus.createChange(config, request.pattern, start), now);
      } else {
        checkSame(name, group.config, bus.patternOf(name) ?? '', request);
      }
      if (!bus.groups.get(name)!.hasMember(request.member))
        this.commitOp(name, { type: 'join', member: request.member, at: now }, now);
      this.orphans.delete(orphanKey(name, request.member));
      info = { cursor: String(bus.groups.get(name)!.considered) };
    }
    const sub: Subscriber = {
      member: request.member,
      identity,
      subId: request.subId,
      pattern: request.pattern,
      group: request.group?.name,
      cursor: start,
      unseen: [],
      window: request.window,
      opened: false,
    };
    this.subs.set(sub.member, sub);
    this.bySub.set(subKey(identity, request.subId), sub.member);
    await this.ctx.policy.durable(this.ctx.store.sequence);
    // The TEOK goes out when this resolves (handlers/events.ts), before the next pump (a macrotask).
    sub.opened = true;
    this.schedule();
    return info;
  }

  /** The subscription ends; a group member leaves (a durable group keeps its cursor). */
  async unsubscribe(identity: Buffer, subId: number): Promise<void> {
    this.heardFrom(identity);
    const sub = this.subOf(identity, subId);
    if (sub === undefined) return;
    this.forget(sub);
    if (sub.group !== undefined) this.leave(sub.group, sub.member, this.ctx.now());
    await this.ctx.policy.durable(this.ctx.store.sequence);
  }

  /** Acks of one subscription; resolves once their ops are durable. */
  /**
   * Acks of one subscription; resolves once durable, with the indexes of the acks for events the
   * member does not hold (redelivered after the ack wait, or a delivery lost with the old active).
   */
  async ack(identity: Buffer, subId: number, acks: readonly EventAck[]): Promise<number[]> {
    this.heardFrom(identity);
    const sub = this.subOf(identity, subId);
    if (sub === undefined) throw new SubscribeError('unknown-subscription', `no subscription ${subId}`);
    const now = this.ctx.now();
    if (sub.group === undefined) {
      for (const ack of acks)
        while (sub.unseen.length > 0 && sub.unseen[0]! <= ack.sequence) sub.unseen.shift();
      this.schedule();
      return [];
    }
    const group = this.ctx.store.bus.groups.get(sub.group);
    const notHeld: number[] = [];
    acks.forEach(({ sequence: event, kind, delayMs }, i) => {
      if (kind === 'seen') return;
      if (group?.pendingOf(event)?.member !== sub.member) {
        // An ack (or term) of an event already done is confirmed: it will not be delivered again.
        // This is the retry of an ack whose reply was lost, often in a failover.
        if (!(group?.settled(event) && (kind === 'ack' || kind === 'term'))) notHeld.push(i);
        return;
      }
      this.commitOp(sub.group!, ackOp(kind, event, sub.member, now, delayMs, group.config.ackWaitMs), now);
    });
    this.schedule();
    await this.ctx.policy.durable(this.ctx.store.sequence);
    return notHeld;
  }

  // Delivery. ------------------------------------------------------------------------------------

  private schedule(): void {
    if (!this.running || this.scheduled) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.pump();
    });
  }

  private onTick(): void {
    if (!this.ctx.sequencing()) return;
    const now = this.ctx.now();
    if (now - this.lastSweep >= SWEEP_MS) {
      this.lastSweep = now;
      this.sweep(now);
    }
    this.pump();
  }

  /** One bounded pass: every group's decisions, then every fan-out subscriber's window. */
  private pump(): void {
    if (!this.running || !this.ctx.sequencing()) return;
    const now = this.ctx.now();
    const upTo = this.published();
    let more = false;
    for (const name of this.ctx.store.bus.groups.keys()) more = this.pumpGroup(name, now, upTo) || more;
    for (const sub of this.subs.values()) if (sub.group === undefined) this.pumpFanOut(sub, upTo);
    if (more) this.schedule();
  }

  /** Returns true when the group has more to do than one pass allowed. */
  private pumpGroup(name: string, now: number, upTo: number): boolean {
    const { bus } = this.ctx.store;
    const group = bus.groups.get(name)!;
    const pattern = bus.patternOf(name) ?? '>';
    const reachable = (member: string) => this.subs.get(member)?.group === name;
    // No member to place them: one candidate says as much as a page (decide stops at the first).
    const page = group.memberIds().some(reachable) ? OPS_PER_PASS : 1;
    const events = bus.index.after(group.considered, pattern, page).filter((e) => e.sequence <= upTo);
    // With nothing to deliver, the cursor moves past the events that were not the group's, up to
    // the newest released event (never to the log's sequence: the group's own ops move that).
    const head = bus.index.last() ?? 0;
    const idle = events.length === 0 && head <= upTo;
    const view = { candidates: events.map((e) => e.sequence), upTo: idle ? head : group.considered };
    const ops = group.decide(now, view, OPS_PER_PASS, reachable);
    if (ops.length === 0) return false;
    const cursorBefore = group.considered;
    const out = new Map<string, { events: PackedEntry[]; counts: number[] }>();
    for (const op of ops) {
      this.commitOp(name, op, now);
      if (op.type === 'dead-letter') this.deadLetter(name, op.event, now);
      if (op.type !== 'deliver') continue;
      const entry = this.ctx.store.map.get(eventKey(op.event));
      if (entry === undefined) {
        // Retention dropped it while the group held it: nothing to deliver.
        this.commitOp(name, { type: 'term', event: op.event, member: op.member }, now);
        continue;
      }
      const batch = out.get(op.member) ?? { events: [], counts: [] };
      batch.events.push(delivered(op.event, entry));
      batch.counts.push(group.pendingOf(op.event)?.deliveries ?? 1);
      out.set(op.member, batch);
    }
    if (group.considered !== cursorBefore) {
      const change = bus.cursorChange(name);
      if (change) this.commit(change, now);
    }
    for (const [member, batch] of out) this.send(this.subs.get(member), batch.events, batch.counts);
    return ops.length >= OPS_PER_PASS;
  }

  private pumpFanOut(sub: Subscriber, upTo: number): void {
    const room = sub.window - sub.unseen.length;
    if (!sub.opened || room <= 0 || sub.cursor >= upTo) return;
    const { bus, map } = this.ctx.store;
    const events = bus.index.after(sub.cursor, sub.pattern, room).filter((e) => e.sequence <= upTo);
    const batch: PackedEntry[] = [];
    for (const event of events) {
      const entry = map.get(eventKey(event.sequence));
      if (entry !== undefined) batch.push(delivered(event.sequence, entry));
      sub.unseen.push(event.sequence);
    }
    // Everything up to the watermark was looked at, unless the window cut the page short.
    sub.cursor = events.length < room ? upTo : events[events.length - 1]!.sequence;
    this.send(
      sub,
      batch,
      batch.map(() => 1),
    );
  }

  private send(sub: Subscriber | undefined, events: PackedEntry[], counts: number[]): void {
    if (sub === undefined) return;
    for (let i = 0; i < events.length; i += EVENTS_PER_MESSAGE) {
      const batch = events.slice(i, i + EVENTS_PER_MESSAGE);
      this.ctx
        .deliver(sub.identity, {
          command: 'TEVT',
          subId: sub.subId,
          events: batch,
          counts: counts.slice(i, i + EVENTS_PER_MESSAGE),
        })
        .catch(() =>
          this.undelivered(
            sub,
            batch.map((e) => e.sequence),
          ),
        );
    }
  }

  /**
   * A TEVT that did not go out (the client's pipe full, or the client gone): a group's events go
   * back at once (a nak on the member's behalf) rather than after the ack wait; a fan-out
   * subscriber's cursor goes back so that they are sent again.
   */
  private undelivered(sub: Subscriber, sequences: number[]): void {
    if (!this.running || this.subs.get(sub.member) !== sub) return;
    const now = this.ctx.now();
    if (sub.group === undefined) {
      sub.cursor = Math.min(sub.cursor, sequences[0]! - 1);
      const lost = new Set(sequences);
      const kept = sub.unseen.filter((s) => !lost.has(s));
      sub.unseen.splice(0, sub.unseen.length, ...kept);
    } else {
      const group = this.ctx.store.bus.groups.get(sub.group);
      for (const event of sequences)
        if (group?.pendingOf(event)?.member === sub.member)
          this.commitOp(sub.group, { type: 'nak', event, member: sub.member, notBefore: now }, now);
    }
    this.schedule();
  }

  /** An event out of deliveries: published again on `$dlq.<group>`, with where it came from. */
  private deadLetter(group: string, event: number, now: number): void {
    const entry = this.ctx.store.map.get(eventKey(event));
    if (entry === undefined) return;
    const original = this.ctx.store.bus.groups.get(group);
    const headers: Record<string, string> = {
      'dlq-topic': eventTopic(entry.properties),
      'dlq-sequence': String(event),
      'dlq-deliveries': String(original?.config.maxDeliver ?? 0),
    };
    this.commit(eventChange(`$dlq.${group}`, headers, entry.body, now), now);
  }

  // Members that are gone. -----------------------------------------------------------------------

  private sweep(now: number): void {
    const timeout = this.options.memberTimeoutMs;
    for (const sub of [...this.subs.values()]) {
      const heard = this.heard.get(sub.identity.toString('latin1')) ?? 0;
      if (now - heard <= timeout) continue;
      this.forget(sub);
      if (sub.group !== undefined) this.leave(sub.group, sub.member, now);
    }
    for (const [name, group] of this.ctx.store.bus.groups) {
      for (const member of group.memberIds()) {
        if (this.subs.get(member)?.group === name) continue;
        const key = orphanKey(name, member);
        const since = this.orphans.get(key) ?? now;
        this.orphans.set(key, since);
        if (now - since > timeout) {
          this.orphans.delete(key);
          this.leave(name, member, now);
        }
      }
    }
    for (const identity of [...this.heard.keys()])
      if (now - this.heard.get(identity)! > timeout) this.heard.delete(identity);
  }

  private leave(name: string, member: string, now: number): void {
    const { bus } = this.ctx.store;
    const group = bus.groups.get(name);
    if (group === undefined || !group.hasMember(member)) return;
    this.commitOp(name, { type: 'leave', member, at: now }, now);
    if (group.abandoned()) for (const change of bus.deleteChanges(name)) this.commit(change, now);
    this.schedule();
  }

  private forget(sub: Subscriber): void {
    this.subs.delete(sub.member);
    this.bySub.delete(subKey(sub.identity, sub.subId));
  }

  private subOf(identity: Buffer, subId: number): Subscriber | undefined {
    const member = this.bySub.get(subKey(identity, subId));
    return member === undefined ? undefined : this.subs.get(member);
  }

  private commitOp(name: string, op: GroupOp, now: number): void {
    this.commit(this.ctx.store.bus.opChange(name, op), now);
  }

  private commit(change: DueChange, now: number): Entry {
    const key = change.key === '' ? eventKey(this.ctx.store.sequence + 1) : change.key;
    const result = this.ctx.commit({ ...change, key, uuid: ZERO_UUID }, 'bus', now);
    if (result.duplicate) throw new Error('a bus change was taken for a duplicate'); // a zero uuid never is
    return result.entry;
  }
}
