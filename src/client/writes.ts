/**
 * The client's write pipeline: queued writes go to the active in batches (one socket call for many
 * writes), keep their uuid when re-sent after a timeout or a failover (the server applies each
 * once), and settle:
 * - native: once acknowledged and, for a key inside the client's subtree, once the client's own
 *   replica has applied the acknowledged sequence (read-your-writes, read-your-writes.ts). A key
 *   outside the subtree resolves on the acknowledgement: the replica never sees it.
 * - plain CHP: published to every server's collector (Model Six) and resolved with 0.
 * Every wait is bounded by writeTimeoutMs. The client owns the sockets and the phase (WritesHost).
 */
import { encodeKvMsg, encodeRequest, type Durability, type ErrorReply, type Limits } from '../wire/index.js';
import { newUuid } from '../core/index.js';
import {
  AccessDeniedError,
  ClosedError,
  ConflictError,
  LeaseNotFoundError,
  QueueFullError,
  ServerRejectedError,
  TimeoutError,
} from '../errors.js';
import { checkKey, rejectWith } from './arguments.js';
import { checkAckSequences } from './drops.js';
import { BatchSizer } from './batches.js';
import { AppliedWaiters } from './read-your-writes.js';
import type { Link } from './transport.js';

const WRITE_BATCH = 1000;

interface Write {
  readonly key: string;
  readonly uuid: string;
  readonly properties: string;
  readonly body: Buffer;
  readonly deadline: number;
  readonly order: number;
  /** a condition, lease or delete by prefix: a plain CHP server cannot honour it */
  readonly nativeOnly: boolean;
  resolve(sequence: number): void;
  reject(error: Error): void;
  done: boolean;
}

export interface WritesHost {
  readonly links: readonly Link[];
  readonly subtree: string;
  readonly limits: Limits;
  readonly writeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxPendingWrites: number;
  now(): number;
  /** 'native' | 'chp', or 'auto' while undecided */
  mode(): string;
  closed(): boolean;
  /** the active's link when writes may go out (known active, not closed), else undefined */
  target(): Link | undefined;
  reqId(): number;
  /** the sequence the client's replica reflects */
  applied(): number;
  /** the pair's durability changed (TACK 'degraded' or not) */
  degraded(degraded: boolean): void;
  /** acknowledged writes wait for changes that did not come: resume */
  stalled(): void;
  /**
   * Runs the step that settles a write's promise: the client's next-tick queue, so a write
   * resolves after the updates queued before it (at once when absent).
   */
  later?(step: () => void): void;
}

export class Writes {
  private queue: Write[] = [];
  private readonly inflight = new Map<number, { writes: Write[]; sentAt: number }>();
  /** acknowledged writes waiting for the replica to apply their sequence (read-your-writes) */
  private readonly applying = new AppliedWaiters<Write>();
  private order = 0;
  private flushScheduled = false;
  private degradedNow = false;
  /** a running count: walking the in-flight batches on every set() made writes O(in flight) */
  private unsettled = 0;
  /** batches cut to the server's maxBatchEntries and maxBatchBytes (issue 13) */
  private readonly batches: BatchSizer;

  constructor(private readonly host: WritesHost) {
    this.batches = new BatchSizer(host.limits, WRITE_BATCH);
  }

  /** Writes issued and not yet settled. */
  get pending(): number {
    return this.unsettled;
  }

  get degraded(): boolean {
    return this.degradedNow;
  }

  /**
   * A write of `body` (empty: a delete) to `key`; never throws, rejects with a typed error.
   * `nativeOnly` (a condition, a lease): a plain CHP server rejects it with 'plain-chp'.
   */
  write(key: string, body: Buffer, properties: string, nativeOnly = false): Promise<number> {
    const host = this.host;
    try {
      checkKey(key, host.limits);
    } catch (error) {
      return rejectWith(error);
    }
    if (host.closed()) return Promise.reject(new ClosedError());
    if (this.unsettled >= host.maxPendingWrites)
      return Promise.reject(new QueueFullError(host.maxPendingWrites));
    const uuid = newUuid();
    if (nativeOnly && host.mode() === 'chp') return Promise.reject(plainChp());
    if (host.mode() === 'chp') {
      // Model Six: publish to every server's collector; the passive keeps it on its pending list.
      const frames = encodeKvMsg({ key, sequence: 0, uuid, properties, body });
      for (const link of host.links) link.publish(frames);
      return Promise.resolve(0);
    }
    this.unsettled++;
    return new Promise<number>((resolve, reject) => {
      this.queue.push({
        key,
        uuid,
        properties,
        body,
        deadline: host.now() + host.writeTimeoutMs,
        order: this.order++,
        nativeOnly,
        resolve,
        reject,
        done: false,
      });
      this.scheduleFlush();
    });
  }

  scheduleFlush(): void {
    if (this.flushScheduled || this.queue.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Sends queued writes to the active in batches. */
  flush(): void {
    const link = this.host.target();
    const mode = this.host.mode();
    if (link === undefined || mode === 'auto') return; // nothing native before a server advertised it
    if (mode === 'chp') {
      for (const w of this.queue.splice(0)) {
        if (w.nativeOnly) {
          this.fail(w, plainChp());
          continue;
        }
        const { key, uuid, properties, body } = w;
        const frames = encodeKvMsg({ key, sequence: 0, uuid, properties, body });
        for (const l of this.host.links) l.publish(frames);
        this.settle(w, 0);
      }
      return;
    }
    while (this.queue.length > 0) {
      const writes = this.queue.splice(0, this.batches.next(this.queue)).filter((w) => !w.done);
      if (writes.length === 0) continue;
      const reqId = this.host.reqId();
      this.inflight.set(reqId, { writes, sentAt: this.host.now() });
      const entries = writes.map(({ key, uuid, properties, body }) => {
        return { key, sequence: 0, uuid, properties, body, expiresAt: 0 };
      });
      link.request(encodeRequest({ command: 'TSET', reqId, writes: entries }));
    }
  }

  /** Whether `reqId` is a write batch still waiting for its answer. */
  waiting(reqId: number): boolean {
    return this.inflight.has(reqId);
  }

  /**
   * A TACK (decoded). One whose sequences do not match the writes throws (ReplyError) and settles
   * nothing: the batch stays in flight.
   */
  onAck(reqId: number, sequences: readonly number[], durability: Durability): void {
    const batch = this.inflight.get(reqId);
    if (!batch) return; // already answered, or re-sent after a timeout: the later answer settles it
    const seqs = checkAckSequences(sequences, batch.writes.length);
    this.inflight.delete(reqId);
    batch.writes.forEach((w, i) => this.settleWhenApplied(w, seqs[i]!));
    this.noteDurability(durability);
  }

  /** A TACK's durability (a write's or a published event's): a change of `degraded` is told. */
  noteDurability(durability: Durability): void {
    const degraded = durability === 'degraded';
    if (degraded !== this.degradedNow) {
      this.degradedNow = degraded;
      this.host.degraded(degraded);
    }
  }

  /** A TERROR (decoded): true if it answered a write batch. */
  onError(error: ErrorReply): boolean {
    const { reqId, reason, message } = error;
    const batch = this.inflight.get(reqId);
    if (!batch) return false;
    if (reason === 'access-denied' && error.refused !== undefined) {
      // Only the listed writes are refused; nothing of the batch was applied, so the rest go again.
      for (const index of error.refused) {
        const w = batch.writes[index];
        if (w) this.fail(w, new AccessDeniedError(w.key, `${message}: ${JSON.stringify(w.key)}`));
      }
      this.requeue(reqId);
      this.flush();
      return true;
    }
    if ((reason === 'conflict' || reason === 'lease-not-found') && error.refused !== undefined) {
      // A TSET is all or nothing: the refused writes fail, the others of the batch go again.
      error.refused.forEach((index, i) => {
        const w = batch.writes[index];
        if (w) this.fail(w, refusal(reason, w, message, error.current?.[i]));
      });
      this.requeue(reqId);
      this.flush();
      return true;
    }
    if (reason === 'batch-too-large' && this.batches.refused(batch.writes, error.fit)) {
      // Nothing of it was applied: the same writes go again in batches cut to the server's limits.
      this.requeue(reqId);
      this.flush();
      return true;
    }
    this.inflight.delete(reqId);
    for (const w of batch.writes) this.fail(w, new ServerRejectedError(reason, message));
    return true;
  }

  /**
   * Read-your-writes: an acknowledged write to a key of the subtree resolves once the replica has
   * applied its sequence, at once when it has (the usual case), else when the update or a resync
   * brings it there, on this server or after a failover. Its deadline still bounds the wait.
   */
  private settleWhenApplied(w: Write, sequence: number): void {
    if (!w.key.startsWith(this.host.subtree) || sequence <= this.host.applied()) this.settle(w, sequence);
    else this.applying.add(sequence, w.deadline, w, this.host.now());
  }

  /** The replica has moved: the writes it now reflects resolve. */
  applied(sequence: number): void {
    this.applying.release(sequence, this.host.now(), (w, seq) => this.settle(w, seq));
  }

  /** At a failover every unacknowledged write goes back to the queue, in issue order, same uuid. */
  requeueAll(): void {
    for (const reqId of [...this.inflight.keys()]) this.requeue(reqId);
  }

  /** Batches unanswered for requestTimeoutMs go again (same uuids: the server applies each once). */
  retryUnanswered(now: number): void {
    for (const [reqId, batch] of [...this.inflight])
      if (now - batch.sentAt > this.host.requestTimeoutMs) this.requeue(reqId);
    this.scheduleFlush();
  }

  /** The client was frozen: time it slept through does not count against requests. */
  thaw(now: number): void {
    for (const batch of this.inflight.values()) batch.sentAt = Math.max(batch.sentAt, now);
  }

  /** Fails writes past their deadline; asks for a resume when acknowledged changes do not come. */
  expire(now: number): void {
    const expired = (w: Write) => !w.done && w.deadline <= now;
    const ms = this.host.writeTimeoutMs;
    const timeout = () => new TimeoutError(`write not acknowledged within ${ms} ms`);
    if (this.queue.some(expired)) {
      for (const w of this.queue) if (expired(w)) this.fail(w, timeout());
      this.queue = this.queue.filter((w) => !w.done);
    }
    for (const batch of this.inflight.values())
      for (const w of batch.writes) if (expired(w)) this.fail(w, timeout());
    this.applying.expire(now, (w, sequence) =>
      this.fail(
        w,
        new TimeoutError(
          `write acknowledged as sequence ${sequence}, but this client's replica did not reach it within ${ms} ms`,
        ),
      ),
    );
    // An acknowledged change that does not arrive (lost on the way): a resume brings the replica
    // up to the server's sequence.
    if (this.applying.stalled(now, this.host.requestTimeoutMs)) this.host.stalled();
  }

  /** Closing: every write not settled rejects with `error`. */
  failAll(error: Error): void {
    for (const w of this.queue) this.fail(w, error);
    for (const batch of this.inflight.values()) for (const w of batch.writes) this.fail(w, error);
    this.applying.drain((w) => this.fail(w, error));
    this.queue = [];
    this.inflight.clear();
  }

  /** A batch's unsettled writes go back to the queue in issue order, keeping their uuids. */
  private requeue(reqId: number): void {
    const batch = this.inflight.get(reqId);
    if (!batch) return;
    this.inflight.delete(reqId);
    const back = batch.writes.filter((w) => !w.done);
    if (back.length > 0) this.queue = back.concat(this.queue).sort((a, b) => a.order - b.order);
  }

  private settle(w: Write, sequence: number): void {
    if (w.done) return;
    w.done = true;
    this.unsettled--;
    this.later(() => w.resolve(sequence));
  }

  private fail(w: Write, error: Error): void {
    if (w.done) return;
    w.done = true;
    this.unsettled--;
    this.later(() => w.reject(error));
  }

  private later(step: () => void): void {
    if (this.host.later) this.host.later(step);
    else step();
  }
}

function plainChp(): ServerRejectedError {
  return new ServerRejectedError(
    'plain-chp',
    'a plain CHP server cannot apply conditions, leases or deletes by prefix',
  );
}

/** The typed error of a write refused in a 'conflict' or 'lease-not-found' TERROR. */
function refusal(reason: string, w: Write, message: string, current: number | undefined): Error {
  const key = JSON.stringify(w.key);
  if (reason === 'conflict')
    return new ConflictError(w.key, current ?? 0, `${message}: ${key} is at sequence ${current ?? 0}`);
  const lease = Number(/(?:^|\n)lease=(\d+)/.exec(w.properties)?.[1] ?? 0);
  return new LeaseNotFoundError(lease, `${message}: ${key}`);
}
