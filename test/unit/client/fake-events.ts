/**
 * The fake server's event bus (test/unit/client/fake-server.ts), for unit tests of the client's
 * publishing and subscriptions: requests decoded and replies encoded with the real codec, as the
 * contract says (docs/protocol.md "Event bus"). Simplified on purpose: one event sequence of its
 * own (apart from the key-value log), fan-out subscribers get every matching event (from their
 * `from`), a group's events go round-robin to its members, acks are recorded and answered TEOK.
 * A test can refuse subscriptions, hold TEOK answers, and send any TEVT it likes.
 */
import { matches } from '../../../src/events/index.js';
import {
  decodeRequest,
  type EventAck,
  type NativeRequest,
  type PackedEntry,
} from '../../../src/wire/index.js';
import type { FakeLink, FakeServer } from './fake-server.js';

type Req<C extends string> = Extract<NativeRequest, { command: C }>;

export interface FakeSub {
  readonly link: FakeLink;
  readonly subId: number;
  readonly pattern: string;
  readonly options: Readonly<Record<string, string>>;
}

export class FakeEventBus {
  /** every event stored, in sequence order */
  events: PackedEntry[] = [];
  sequence = 0;
  uuids = new Map<string, number>();
  /** open subscriptions by member id */
  readonly subs = new Map<string, FakeSub>();
  /** every ack received, with its subscription id */
  readonly acks: (EventAck & { subId: number })[] = [];
  /** sequences whose acks the fake refuses `not-held` (the member lost them) */
  readonly notHeld = new Set<number>();
  /** answer the next TESUB with TERROR of this reason */
  refuseNext: string | undefined;
  /** TEPUB/TESUB/TEACK requests are received but not answered while true */
  silent = false;
  private roundRobin = 0;

  constructor(private readonly server: FakeServer) {}

  /** Takes another server's events (the passive mirrors the active); subscriptions stay behind. */
  copyFrom(other: FakeEventBus): void {
    this.events = [...other.events];
    this.sequence = other.sequence;
    this.uuids = new Map(other.uuids);
  }

  /** Publishes an event as if another client had (fans it out while active). */
  emit(topic: string, data: string, properties = ''): PackedEntry {
    const uuid = Buffer.from(`uuid-${this.sequence + 1}`.padEnd(16, '.')).toString('latin1');
    return this.store({ key: topic, sequence: 0, uuid, properties, body: Buffer.from(data), expiresAt: 0 })
      .event;
  }

  /** Sends a TEVT of these events to a subscription (any ids, for tests of what the client drops). */
  send(sub: FakeSub, events: PackedEntry[], counts = events.map(() => 1)): void {
    this.server.reply(sub.link, { command: 'TEVT', subId: sub.subId, events, counts });
  }

  /** The subscriptions open for a pattern. */
  subsOf(pattern: string): FakeSub[] {
    return [...this.subs.values()].filter((s) => s.pattern === pattern);
  }

  /** Handles an event request; false if `frames` are not one. */
  handle(link: FakeLink, frames: Buffer[]): boolean {
    const command = frames[0]?.toString('latin1');
    if (!command?.startsWith('TE')) return false;
    const request = decodeRequest(frames);
    if (this.silent) return true;
    if (!this.server.isActive) {
      const reqId = (request as { reqId: number }).reqId;
      this.server.reply(link, {
        command: 'TNOTACTIVE',
        reqId,
        state: this.server.state,
        reason: 'not-active',
      });
      return true;
    }
    switch (request.command) {
      case 'TEPUB':
        return this.publish(link, request);
      case 'TESUB':
        return this.subscribe(link, request);
      case 'TEUNSUB':
        for (const [member, sub] of this.subs)
          if (sub.link === link && sub.subId === request.subId) this.subs.delete(member);
        this.server.reply(link, { command: 'TEOK', reqId: request.reqId, info: {} });
        return true;
      case 'TEACK':
        if (![...this.subs.values()].some((sub) => sub.link === link && sub.subId === request.subId)) {
          const message = `no subscription ${request.subId}`;
          this.server.reply(link, {
            command: 'TERROR',
            reqId: request.reqId,
            reason: 'unknown-subscription',
            message,
          });
          return true;
        }
        for (const ack of request.acks) this.acks.push({ ...ack, subId: request.subId });
        {
          // events the test says this member no longer holds: refused 'not-held', the rest taken
          const refused = request.acks.flatMap((ack, i) => (this.notHeld.has(ack.sequence) ? [i] : []));
          if (refused.length > 0)
            this.server.reply(link, {
              command: 'TERROR',
              reqId: request.reqId,
              reason: 'not-held',
              message: 'not held',
              refused,
            });
          else this.server.reply(link, { command: 'TEOK', reqId: request.reqId, info: {} });
        }
        return true;
      default:
        return false;
    }
  }

  private publish(link: FakeLink, request: Req<'TEPUB'>): boolean {
    const sequences = request.events.map((e) => this.store(e).event.sequence);
    this.server.reply(link, {
      command: 'TACK',
      reqId: request.reqId,
      sequences,
      durability: this.server.durability,
    });
    return true;
  }

  private store(e: PackedEntry): { event: PackedEntry; duplicate: boolean } {
    const earlier = this.uuids.get(e.uuid);
    if (earlier !== undefined)
      return { event: this.events.find((x) => x.sequence === earlier)!, duplicate: true };
    const event = { ...e, sequence: ++this.sequence };
    this.events.push(event);
    this.uuids.set(e.uuid, event.sequence);
    if (this.server.isActive) this.fanOut(event);
    return { event, duplicate: false };
  }

  private fanOut(event: PackedEntry): void {
    const groups = new Map<string, FakeSub[]>();
    for (const sub of this.subs.values()) {
      if (!matches(sub.pattern, event.key)) continue;
      const group = sub.options.group;
      if (group === undefined) this.send(sub, [event]);
      else groups.set(group, [...(groups.get(group) ?? []), sub]);
    }
    for (const members of groups.values()) this.send(members[this.roundRobin++ % members.length]!, [event]);
  }

  private subscribe(link: FakeLink, request: Req<'TESUB'>): boolean {
    const { reqId, subId, pattern, options } = request;
    if (this.refuseNext !== undefined) {
      const reason = this.refuseNext;
      this.refuseNext = undefined;
      this.server.reply(link, { command: 'TERROR', reqId, reason, message: 'refused by the test' });
      return true;
    }
    const sub = { link, subId, pattern, options };
    this.subs.set(options.member ?? `${subId}`, sub);
    if (options.group !== undefined) {
      this.server.reply(link, { command: 'TEOK', reqId, info: { cursor: '0' } });
      return true;
    }
    const from = options.from ?? 'new';
    const start = from === 'new' ? this.sequence : from === 'first' ? 0 : Number(from) - 1;
    this.server.reply(link, { command: 'TEOK', reqId, info: { start: String(start) } });
    const backlog = this.events.filter((e) => e.sequence > start && matches(pattern, e.key));
    if (backlog.length > 0) this.send(sub, backlog);
    return true;
  }
}
