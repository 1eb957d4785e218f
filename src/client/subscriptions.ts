/**
 * The client's subscriptions to the event bus (issue 16; docs/protocol.md "Event bus"): TESUB once
 * ready on the active and again after every failover or resync (same member id; fan-out from after
 * the last event received); TEVT to the Subscription objects on the next tick; acks batched into one
 * TEACK per subscription per turn, sent again until answered; `seen` for fan-out events taken
 * (every SEEN_BATCH events or SEEN_FLUSH_MS); a TPING every half heartbeat while subscribed, so the
 * server knows its members live. No I/O besides `link.request`; time is the agent's clock (`tick`).
 */
import { randomBytes } from 'node:crypto';
import { encodeRequest, type ErrorReply, type EventAckKind, type PackedEntry } from '../wire/index.js';
import {
  AccessDeniedError,
  ClosedError,
  InvalidArgumentError,
  ServerRejectedError,
  TimeoutError,
} from '../errors.js';
import { ReplyError } from './drops.js';
import { plainChpError } from './publishing.js';
import { ReadyWaiters } from './ready.js';
import { settled, type AckOp, type Pending, type Sub, type SubscriptionsHost } from './subscription-state.js';
import { eventOf, subscribeOptions, Subscription, type SubscriptionEvent } from './subscription.js';

export type { SubscriptionsHost } from './subscription-state.js';

/** A fan-out subscription's `seen` goes out after this many taken events, or this long after the first. */
export const SEEN_BATCH = 100;
export const SEEN_FLUSH_MS = 50;
/** the server's default maxAckPending: the client's buffer is bounded by what it may send */
const DEFAULT_MAX_ACK_PENDING = 1000;

export class Subscriptions {
  private readonly subs = new Map<number, Sub>();
  private readonly pending = new Map<number, Pending>();
  /** this client instance; member ids are `<instance>:<subId>` */
  private readonly instance = randomBytes(8).toString('hex');
  private nextSubId = 1;
  private lastPing = -Infinity;
  private flushScheduled = false;

  constructor(private readonly host: SubscriptionsHost) {}

  /** A new subscription; a bad pattern or option throws InvalidArgumentError. */
  open(pattern: unknown, options: unknown): Subscription {
    const wire = subscribeOptions(pattern, options);
    const subId = this.nextSubId++;
    const max = Number(wire.maxAckPending ?? DEFAULT_MAX_ACK_PENDING);
    const control = {
      taken: (id: number, event: SubscriptionEvent) => this.taken(id, event),
      unsubscribe: (id: number) => this.unsubscribe(id),
      ready: (id: number, timeoutMs: number) => this.ready(id, timeoutMs),
      problem: (message: string, error?: unknown) => this.host.log.error({ err: error }, message),
    };
    const api = new Subscription(subId, pattern as string, wire.group, control, 2 * max + SEEN_BATCH);
    const sub: Sub = {
      api,
      options: { ...wire, member: `${this.instance}:${subId}` },
      fanOut: wire.group === undefined,
      waiters: new ReadyWaiters(this.host.later),
      confirmed: false,
      sent: false,
      subReq: undefined,
      subSentAt: 0,
      after: undefined,
      stale: false,
      taken: -1,
      seenQueued: -1,
      seenCount: 0,
      seenSince: 0,
      queue: [],
    };
    this.subs.set(subId, sub);
    if (this.host.closed()) this.fail(sub, new ClosedError());
    else if (this.host.mode() === 'chp') this.fail(sub, plainChpError());
    else if (this.host.target() !== undefined) this.sendSub(sub);
    return api;
  }

  /** Whether `reqId` is a request of ours (its TNOTACTIVE means: look for the active). */
  waiting(reqId: number): boolean {
    return this.pending.has(reqId) || [...this.subs.values()].some((s) => s.subReq === reqId);
  }

  /** The client is ready on a server: `again` (a new active, a resync) subscribes everything anew. */
  onReady(again: boolean): void {
    if (this.host.mode() === 'chp') {
      for (const sub of [...this.subs.values()]) this.fail(sub, plainChpError());
      return;
    }
    for (const sub of this.subs.values()) if (again || !sub.sent) this.sendSub(sub);
    this.resendAcks();
  }

  /** The server in use is lost: what it did not answer goes again to the next one. */
  lost(): void {
    for (const [reqId, p] of [...this.pending]) {
      if (p.type === 'unsub') p.done();
      else this.subs.get(p.subId)?.queue.unshift(...p.ops);
      this.pending.delete(reqId);
    }
    // A fan-out subscription starts again after the last event received: its `seen` are moot.
    for (const sub of this.subs.values()) {
      sub.subReq = undefined;
      sub.sent = false;
      sub.queue = sub.queue.filter((op) => op.kind !== 'seen');
      sub.seenQueued = sub.taken;
    }
  }

  /**
   * A TEVT of this subscription was dropped (it came while the client was between servers). A
   * fan-out subscription must not take the TEVTs after it (it would move past the events lost):
   * it drops them and subscribes again from after the last event it received.
   */
  missed(subId: number): void {
    const sub = this.subs.get(subId);
    if (!sub?.fanOut || sub.stale) return;
    sub.stale = true;
    sub.subReq = undefined;
    sub.sent = false;
    if (this.host.target() !== undefined) this.sendSub(sub);
  }

  onOk(reqId: number, info: Readonly<Record<string, string>>): boolean {
    const sub = [...this.subs.values()].find((s) => s.subReq === reqId);
    if (sub) {
      sub.subReq = undefined;
      sub.confirmed = true;
      sub.stale = false;
      const start = Number(info.start);
      if (sub.fanOut && info.start !== undefined && Number.isSafeInteger(start))
        sub.after = Math.max(sub.after ?? start, start);
      sub.waiters.resolveAll();
      return true;
    }
    const p = this.pending.get(reqId);
    if (!p) return false;
    this.pending.delete(reqId);
    if (p.type === 'unsub') p.done();
    else for (const op of p.ops) this.settle(op);
    return true;
  }

  onError(reply: ErrorReply): boolean {
    const { reqId, reason, message } = reply;
    const sub = [...this.subs.values()].find((s) => s.subReq === reqId);
    if (sub) {
      const pattern = sub.api.pattern;
      const error =
        reason === 'access-denied'
          ? new AccessDeniedError(pattern, `${message}: ${JSON.stringify(pattern)}`)
          : new ServerRejectedError(
              reason,
              `subscribe ${JSON.stringify(pattern)} refused: ${reason}: ${message}`,
            );
      this.fail(sub, error);
      return true;
    }
    const p = this.pending.get(reqId);
    if (!p) return false;
    this.pending.delete(reqId);
    const owner = p.type === 'ack' ? this.subs.get(p.subId) : undefined;
    if (p.type === 'unsub') p.done();
    else if (owner && reason === 'unknown-subscription') {
      // The server lost the subscription (it forgot the member, or knows this client by another
      // identity): subscribe again, then the acks go again after it.
      owner.queue.unshift(...p.ops);
      this.sendSub(owner);
      this.scheduleFlush();
    } else if (p.type === 'ack' && reply.refused !== undefined) {
      const refused = new Set(reply.refused); // 'not-held': only those failed, the others took
      p.ops.forEach((op, i) =>
        this.settle(op, refused.has(i) ? new ServerRejectedError(reason, message) : undefined),
      );
    } else for (const op of p.ops) this.settle(op, new ServerRejectedError(reason, message));
    return true;
  }

  /** A TEVT (decoded) from the server in use. */
  onEvents(subId: number, events: readonly PackedEntry[], counts: readonly number[]): void {
    const sub = this.subs.get(subId);
    if (!sub)
      throw new ReplyError('unknown-subscription', `TEVT for subscription ${subId}, which is not open`);
    if (sub.stale) return; // sent under the subscription before the gap: it comes again
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (sub.fanOut) {
        if (sub.after !== undefined && e.sequence <= sub.after) continue; // already received
        sub.after = e.sequence;
      }
      const event = eventOf(e, counts[i]!, (kind, delayMs) => this.ack(sub, e.sequence, kind, delayMs));
      this.host.later(() => sub.api.deliver(event));
    }
  }

  /** The agent's timer: pings while subscribed, `seen` batches, retries, deadlines. */
  tick(now: number): void {
    if (this.subs.size === 0 && this.pending.size === 0) return; // a client with no subscription
    for (const sub of this.subs.values()) {
      sub.waiters.expire(now, (ms) => new TimeoutError(`subscription not ready within ${ms} ms`));
      for (const op of sub.queue) if (op.deadline <= now) this.settle(op, this.ackTimeout());
    }
    const link = this.host.target();
    if (link === undefined) return;
    if (this.subs.size > 0 && now - this.lastPing >= this.host.heartbeatMs() / 2) {
      this.lastPing = now;
      link.request(encodeRequest({ command: 'TPING', reqId: this.host.reqId() }));
    }
    for (const sub of this.subs.values()) {
      if (sub.subReq !== undefined && now - sub.subSentAt > this.host.requestTimeoutMs) this.sendSub(sub);
      if (sub.seenCount > 0 && now - sub.seenSince >= SEEN_FLUSH_MS) this.queueSeen(sub);
    }
    for (const [reqId, p] of [...this.pending]) {
      if (p.type === 'ack')
        for (const op of p.ops) if (op.deadline <= now) this.settle(op, this.ackTimeout());
      if (now - p.sentAt <= this.host.requestTimeoutMs) continue;
      // Unanswered: acks go again; an unsubscribe is done anyway (the server lets go of a member
      // it does not hear).
      this.pending.delete(reqId);
      if (p.type === 'unsub') p.done();
      else this.subs.get(p.subId)?.queue.unshift(...p.ops.filter((op) => !op.settle || !settled.has(op)));
    }
    this.flush();
  }

  /** Closing: every subscription ends, every wait rejects with ClosedError. */
  close(): void {
    const error = new ClosedError();
    for (const [, p] of this.pending) if (p.type === 'ack') for (const op of p.ops) this.settle(op, error);
    for (const [, p] of this.pending) if (p.type === 'unsub') p.done();
    this.pending.clear();
    for (const sub of [...this.subs.values()]) {
      for (const op of sub.queue) this.settle(op, error);
      sub.waiters.rejectAll(error);
      this.subs.delete(sub.api.subId);
      this.host.later(() => sub.api.end());
    }
  }

  // ------------------------------------------------------------------------------------------

  private sendSub(sub: Sub): void {
    const link = this.host.target();
    if (link === undefined) return;
    const reqId = this.host.reqId();
    sub.sent = true;
    sub.subReq = reqId;
    sub.subSentAt = this.host.now();
    const options = { ...sub.options };
    if (sub.fanOut && sub.after !== undefined) options.from = String(sub.after + 1);
    const { subId, pattern } = sub.api;
    link.request(encodeRequest({ command: 'TESUB', reqId, subId, pattern, options }));
  }

  private ready(subId: number, timeoutMs: number): Promise<void> {
    const sub = this.subs.get(subId);
    if (!sub) return Promise.reject(new ClosedError('subscription is closed'));
    if (sub.confirmed) return Promise.resolve();
    return sub.waiters.wait(this.host.now(), timeoutMs);
  }

  private unsubscribe(subId: number): Promise<void> {
    const sub = this.subs.get(subId);
    if (!sub) return Promise.resolve();
    this.subs.delete(subId);
    const error = new ClosedError('unsubscribed');
    for (const op of sub.queue) this.settle(op, error);
    sub.waiters.rejectAll(error);
    this.host.later(() => sub.api.end());
    const link = this.host.target();
    if (link === undefined || (!sub.confirmed && sub.subReq === undefined)) return Promise.resolve();
    const reqId = this.host.reqId();
    return new Promise((resolve) => {
      const done = () => this.host.later(resolve);
      this.pending.set(reqId, { type: 'unsub', subId, done, sentAt: this.host.now() });
      link.request(encodeRequest({ command: 'TEUNSUB', reqId, subId }));
    });
  }

  private ack(sub: Sub, sequence: number, kind: EventAckKind, delayMs: number): Promise<void> {
    if (sub.fanOut) return Promise.resolve(); // fan-out: the client's own `seen` says it all
    if (kind === 'nak' && !(Number.isSafeInteger(delayMs) && delayMs >= 0 && delayMs <= 0xffff_ffff))
      return Promise.reject(new InvalidArgumentError('nak delayMs must be a whole number of ms from 0'));
    if (!this.subs.has(sub.api.subId)) return Promise.reject(new ClosedError('subscription is closed'));
    return new Promise((resolve, reject) => {
      const settle = (error?: Error) => this.host.later(() => (error ? reject(error) : resolve()));
      const deadline = this.host.now() + this.host.writeTimeoutMs;
      sub.queue.push({ sequence, kind, delayMs: kind === 'nak' ? delayMs : 0, deadline, settle });
      this.scheduleFlush();
    });
  }

  private taken(subId: number, event: SubscriptionEvent): void {
    const sub = this.subs.get(subId);
    if (!sub?.fanOut || event.sequence <= sub.taken) return;
    sub.taken = event.sequence;
    if (sub.seenCount++ === 0) sub.seenSince = this.host.now();
    if (sub.seenCount >= SEEN_BATCH) {
      this.queueSeen(sub);
      this.scheduleFlush();
    }
  }

  private queueSeen(sub: Sub): void {
    sub.seenCount = 0;
    if (sub.taken <= sub.seenQueued) return;
    sub.seenQueued = sub.taken;
    sub.queue.push({ sequence: sub.taken, kind: 'seen', delayMs: 0, deadline: Infinity });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** One TEACK per subscription with queued acks, within the batch limit. */
  private flush(): void {
    const link = this.host.target();
    if (link === undefined) return;
    for (const sub of this.subs.values()) {
      sub.queue = sub.queue.filter((op) => op.settle === undefined || !settled.has(op));
      while (sub.queue.length > 0) {
        const ops = sub.queue.splice(0, this.host.limits.maxBatchEntries);
        const reqId = this.host.reqId();
        this.pending.set(reqId, { type: 'ack', subId: sub.api.subId, ops, sentAt: this.host.now() });
        link.request(encodeRequest({ command: 'TEACK', reqId, subId: sub.api.subId, acks: ops }));
      }
    }
  }

  private resendAcks(): void {
    for (const [reqId, p] of [...this.pending]) {
      if (p.type !== 'ack') continue;
      this.pending.delete(reqId);
      this.subs.get(p.subId)?.queue.unshift(...p.ops);
    }
    this.flush();
  }

  private settle(op: AckOp, error?: Error): void {
    if (op.settle === undefined || settled.has(op)) return;
    settled.add(op);
    op.settle(error);
  }

  private ackTimeout(): TimeoutError {
    return new TimeoutError(`ack not answered within ${this.host.writeTimeoutMs} ms`);
  }

  private fail(sub: Sub, error: Error): void {
    this.subs.delete(sub.api.subId);
    sub.api.failed(error);
    for (const op of sub.queue) this.settle(op, error);
    sub.waiters.rejectAll(error);
    this.host.later(() => sub.api.end(error));
  }
}
