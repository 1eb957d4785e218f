/**
 * Leases, like etcd's (issue 17; docs/protocol.md, Leases): `grant` asks the active for a lease
 * and returns a `Lease` that keeps itself alive, sending a keep-alive every ttl/3 to whichever
 * server is active (after a failover, at once to the new one, which has given every lease a
 * fresh TTL). A lease is `lost` when a keep-alive is answered lease-not-found, or when nothing
 * answered one for a whole TTL. One-shot requests (grant, revoke, keep-alive once, list) are
 * asked again after a failover or `requestTimeoutMs` without answer, until `writeTimeoutMs`.
 * No sockets of its own: the agent gives the active's link when the client is ready on it.
 */
import { EventEmitter } from 'node:events';
import {
  encodeRequest,
  type ErrorReply,
  type LeaseInfo,
  type LeaseOp,
  type NativeReply,
} from '../wire/index.js';
import { ClosedError, LeaseNotFoundError, ServerRejectedError, TimeoutError } from '../errors.js';
import type { Link } from './link.js';

export type LeaseOk = Extract<NativeReply, { command: 'TLEASEOK' }>;

export interface LeasesHost {
  readonly requestTimeoutMs: number;
  readonly writeTimeoutMs: number;
  now(): number;
  reqId(): number;
  /** the active's link when requests may go out (ready on it), else undefined */
  target(): Link | undefined;
  /** 'native' | 'chp' | 'auto' */
  mode(): string;
  /** settles a promise on the client's next-tick queue */
  later(step: () => void): void;
}

export interface LeaseEvents {
  /** the lease is gone: 'not-found' (the server no longer has it) or 'unanswered' (a whole TTL) */
  lost: [reason: 'not-found' | 'unanswered'];
}

/** A granted lease, kept alive until `close()`, `revoke()`, its loss or the client's close. */
export class Lease extends EventEmitter<LeaseEvents> {
  /** when the last keep-alive (or the grant) was answered, and the time it said was left */
  private answeredAt: number;
  private remainingAtAnswer: number;
  private lastSent: number;
  private open = true;

  constructor(
    private readonly leases: Leases,
    readonly id: number,
    readonly ttlMs: number,
    granted: LeaseOk,
    now: number,
  ) {
    super();
    this.answeredAt = now;
    this.lastSent = now;
    this.remainingAtAnswer = granted.remainingMs || ttlMs;
  }

  /** Milliseconds left before the lease expires, by what the server last said (0: due). */
  ttlRemainingMs(): number {
    return Math.max(0, this.remainingAtAnswer - (this.leases.now() - this.answeredAt));
  }

  /** Whether keep-alives still go out (not closed, revoked or lost). */
  get alive(): boolean {
    return this.open;
  }

  /** Deletes the lease and every key attached to it; stops the keep-alive. */
  revoke(): Promise<void> {
    this.close();
    return this.leases.request('revoke', this.id, 0).then(() => undefined);
  }

  /** Stops the keep-alive (the lease then expires after its TTL, with its keys). */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.leases.forget(this);
  }

  /** The agent's timer: a keep-alive every ttl/3; lost after a whole TTL without an answer. */
  tick(now: number, link: Link | undefined): void {
    if (!this.open) return;
    if (now - this.answeredAt >= this.ttlMs) return this.lose('unanswered');
    if (link !== undefined && now - this.lastSent >= this.ttlMs / 3) this.keepAlive(now, link);
  }

  /** Sends a keep-alive now (also at once on a new active). */
  keepAlive(now: number, link: Link): void {
    this.lastSent = now;
    this.leases.sendKeepAlive(this, link);
  }

  answered(reply: LeaseOk, now: number): void {
    this.answeredAt = now;
    this.remainingAtAnswer = reply.remainingMs || reply.ttlMs || this.ttlMs;
  }

  lose(reason: 'not-found' | 'unanswered'): void {
    if (!this.open) return;
    this.close();
    this.leases.host.later(() => this.emit('lost', reason));
  }

  /** The client's timer was frozen: the time it slept through does not count against the lease. */
  thaw(now: number): void {
    this.lastSent = -Infinity; // a keep-alive at once tells whether the lease outlived the freeze
    this.answeredAt = Math.max(this.answeredAt, now - this.ttlMs / 2);
  }
}

interface Pending {
  readonly op: LeaseOp;
  readonly id: number;
  readonly ttlMs: number;
  readonly deadline: number;
  sentAt: number | undefined;
  attempts: number;
  resolve(reply: LeaseOk): void;
  reject(error: Error): void;
}

export class Leases {
  private readonly open = new Set<Lease>();
  /** one-shot requests by request id once sent (queued ones: reqId undefined) */
  private readonly pending = new Map<number, Pending>();
  private queue: Pending[] = [];
  /** keep-alives in flight, by request id */
  private readonly keepAlives = new Map<number, { lease: Lease; sentAt: number }>();
  private closed = false;

  constructor(readonly host: LeasesHost) {}

  now(): number {
    return this.host.now();
  }

  /** A new lease of `ttlMs` (>= 1000), kept alive from now on. */
  async grant(ttlMs: number): Promise<Lease> {
    const reply = await this.request('grant', 0, ttlMs);
    const lease = new Lease(this, reply.id, reply.ttlMs || ttlMs, reply, this.now());
    if (this.closed) throw new ClosedError();
    this.open.add(lease);
    return lease;
  }

  /** One TLEASE, asked again across failovers until it is answered or `writeTimeoutMs` passes. */
  request(op: LeaseOp, id: number, ttlMs: number): Promise<LeaseOk> {
    if (this.closed) return Promise.reject(new ClosedError());
    if (this.host.mode() === 'chp')
      return Promise.reject(new ServerRejectedError('plain-chp', 'a plain CHP server has no leases'));
    return new Promise<LeaseOk>((resolve, reject) => {
      const deadline = this.now() + this.host.writeTimeoutMs;
      this.queue.push({ op, id, ttlMs, deadline, sentAt: undefined, attempts: 0, resolve, reject });
      this.flush();
    });
  }

  /** Sends what is queued to the active, if the client is ready on one. */
  flush(): void {
    const link = this.host.target();
    if (link === undefined || this.host.mode() !== 'native') return;
    for (const p of this.queue.splice(0)) {
      const reqId = this.host.reqId();
      p.sentAt = this.now();
      p.attempts++;
      this.pending.set(reqId, p);
      link.request(encodeRequest({ command: 'TLEASE', reqId, op: p.op, id: p.id, ttlMs: p.ttlMs }));
    }
  }

  sendKeepAlive(lease: Lease, link: Link): void {
    const reqId = this.host.reqId();
    this.keepAlives.set(reqId, { lease, sentAt: this.now() });
    link.request(encodeRequest({ command: 'TLEASE', reqId, op: 'keepalive', id: lease.id, ttlMs: 0 }));
  }

  forget(lease: Lease): void {
    this.open.delete(lease);
  }

  /** Ready on an active: queued requests go, and on a new active every lease is kept alive at once. */
  onReady(again: boolean): void {
    const link = this.host.target();
    if (link !== undefined && again) for (const lease of this.open) lease.keepAlive(this.now(), link);
    this.flush();
  }

  /** The server in use is lost: requests not answered go again to the next one. */
  lost(): void {
    const back = [...this.pending.values()];
    this.pending.clear();
    this.keepAlives.clear();
    this.queue = back.concat(this.queue);
  }

  waiting(reqId: number): boolean {
    return this.pending.has(reqId) || this.keepAlives.has(reqId);
  }

  tick(now: number, frozen: boolean): void {
    // Every client ticks 20 times a second: with nothing to do, allocate nothing.
    if (this.open.size + this.pending.size + this.queue.length + this.keepAlives.size === 0) return;
    const link = this.host.target();
    for (const lease of [...this.open]) {
      if (frozen) lease.thaw(now);
      lease.tick(now, link);
    }
    for (const [reqId, p] of [...this.pending]) {
      if (now >= p.deadline) this.settle(reqId, p, timeout(p));
      else if (p.sentAt !== undefined && now - p.sentAt > this.host.requestTimeoutMs) {
        this.pending.delete(reqId);
        this.queue.push(p);
      }
    }
    for (const p of this.queue.filter((q) => now >= q.deadline)) this.settleQueued(p, timeout(p));
    for (const [reqId, k] of [...this.keepAlives])
      if (now - k.sentAt > k.lease.ttlMs) this.keepAlives.delete(reqId);
    if (this.queue.length > 0) this.flush();
  }

  onOk(reply: LeaseOk): boolean {
    const keepAlive = this.keepAlives.get(reply.reqId);
    if (keepAlive) {
      this.keepAlives.delete(reply.reqId);
      keepAlive.lease.answered(reply, this.now());
      return true;
    }
    const p = this.pending.get(reply.reqId);
    if (!p) return false;
    this.settle(reply.reqId, p, reply);
    return true;
  }

  onError(reply: ErrorReply): boolean {
    const keepAlive = this.keepAlives.get(reply.reqId);
    if (keepAlive) {
      this.keepAlives.delete(reply.reqId);
      if (reply.reason === 'lease-not-found') keepAlive.lease.lose('not-found');
      return true;
    }
    const p = this.pending.get(reply.reqId);
    if (!p) return false;
    // a revoke asked again after a failover finds the lease already gone: it was revoked
    if (reply.reason === 'lease-not-found' && p.op === 'revoke' && p.attempts > 1)
      return this.settle(reply.reqId, p, {
        command: 'TLEASEOK',
        reqId: reply.reqId,
        id: p.id,
        ttlMs: 0,
        remainingMs: 0,
      });
    const error =
      reply.reason === 'lease-not-found'
        ? new LeaseNotFoundError(p.id, `lease ${p.id}: ${reply.message}`)
        : new ServerRejectedError(reply.reason, reply.message);
    return this.settle(reply.reqId, p, error);
  }

  close(): void {
    this.closed = true;
    for (const lease of [...this.open]) lease.close();
    const error = new ClosedError();
    for (const [reqId, p] of [...this.pending]) this.settle(reqId, p, error);
    for (const p of [...this.queue]) this.settleQueued(p, error);
  }

  private settle(reqId: number, p: Pending, outcome: LeaseOk | Error): true {
    this.pending.delete(reqId);
    this.host.later(() => (outcome instanceof Error ? p.reject(outcome) : p.resolve(outcome)));
    return true;
  }

  private settleQueued(p: Pending, error: Error): void {
    this.queue = this.queue.filter((q) => q !== p);
    this.host.later(() => p.reject(error));
  }
}

function timeout(p: Pending): TimeoutError {
  return new TimeoutError(`lease ${p.op} not answered in time`);
}

export type { LeaseInfo };
