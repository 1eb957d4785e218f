/**
 * What the client's acknowledged requests share (writes: TSET, writes.ts; events: TEPUB,
 * publishing.ts): a queue sent to the active in batches cut to the server's limits (one socket
 * call for many), each item keeping its uuid when sent again after a timeout or a failover (the
 * server applies each once), settled once, on the client's next tick, and bounded in time by its
 * deadline. A subclass says how a batch goes out (`flush`) and how an acknowledgement settles.
 */
import { AccessDeniedError, ServerRejectedError, TimeoutError } from '../errors.js';
import { packedSize, type ErrorReply, type Limits, type PackedEntry } from '../wire/index.js';
import { BatchSizer } from './batches.js';
import type { Link } from './link.js';

/**
 * One queued request (a write, an event) in the form its batch packs (wire/packed.ts): sequence
 * and expiry 0 (the server sequences it; a ttl travels as a property), its packed size counted
 * once. Made by `queued`, so every item has one shape.
 */
export interface Queued extends PackedEntry {
  readonly deadline: number;
  /** the entry's packed size (sizes.ts `packedSize`), which cuts the batches */
  readonly size: number;
  /** a condition, a lease, a delete by prefix or an event: a plain CHP server cannot take it */
  readonly nativeOnly: boolean;
  resolve(sequence: number): void;
  reject(error: Error): void;
  /** issue order, given when queued */
  order: number;
  done: boolean;
}

/** A new item for `enqueue`. */
export function queued(
  key: string,
  uuid: string,
  properties: string,
  body: Buffer,
  deadline: number,
  nativeOnly: boolean,
  resolve: (sequence: number) => void,
  reject: (error: Error) => void,
): Queued {
  const size = packedSize({ key, uuid, properties, body });
  return {
    key,
    sequence: 0,
    uuid,
    properties,
    body,
    expiresAt: 0,
    deadline,
    size,
    nativeOnly,
    resolve,
    reject,
    order: 0,
    done: false,
  };
}

export interface AckedQueueHost {
  readonly limits: Limits;
  readonly requestTimeoutMs: number;
  now(): number;
  reqId(): number;
  /** runs the step that settles a promise (the client's next-tick queue; at once when absent) */
  later?(step: () => void): void;
}

export abstract class AckedQueue {
  protected queue: Queued[] = [];
  protected readonly inflight = new Map<number, { items: Queued[]; sentAt: number }>();
  /** a running count: walking the in-flight batches on every call made writes O(in flight) */
  protected unsettled = 0;
  private order = 0;
  private flushScheduled = false;
  /** batches cut to the server's maxBatchEntries and maxBatchBytes (issue 13) */
  protected readonly batches: BatchSizer;

  constructor(
    private readonly base: AckedQueueHost,
    batchMax: number,
  ) {
    this.batches = new BatchSizer(base.limits, batchMax);
  }

  /** Items issued and not yet settled. */
  get pending(): number {
    return this.unsettled;
  }

  /** Sends what is queued (and whatever the mode calls for). */
  abstract flush(): void;

  /** Queues an item (counted until settled) and sends it on the next turn with the others. */
  protected enqueue(item: Queued): void {
    item.order = this.order++;
    this.unsettled++;
    this.queue.push(item);
    this.scheduleFlush();
  }

  scheduleFlush(): void {
    if (this.flushScheduled || this.queue.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Sends the queue to `link` in batches, each as `encode` makes it, and keeps them in flight. */
  protected sendBatches(link: Link, encode: (reqId: number, items: Queued[]) => Buffer[]): void {
    while (this.queue.length > 0) {
      const items = this.queue.splice(0, this.batches.next(this.queue)).filter((w) => !w.done);
      if (items.length === 0) continue;
      const reqId = this.base.reqId();
      this.inflight.set(reqId, { items, sentAt: this.base.now() });
      link.request(encode(reqId, items));
    }
  }

  /** Whether `reqId` is a batch still waiting for its answer. */
  waiting(reqId: number): boolean {
    return this.inflight.has(reqId);
  }

  /**
   * A TERROR for one of these batches (false: not ours). Nothing of the batch was applied: with
   * 'access-denied', or a reason `refusal` knows, only the listed items fail and the rest go again;
   * a batch over the server's limits goes again cut smaller; any other reason fails the batch.
   */
  onError(
    error: ErrorReply,
    refusal?: (reason: string) => ((item: Queued, i: number) => Error) | undefined,
  ): boolean {
    const { reqId, reason, message } = error;
    const batch = this.inflight.get(reqId);
    if (!batch) return false;
    const refuse =
      reason === 'access-denied'
        ? (item: Queued) => new AccessDeniedError(item.key, `${message}: ${JSON.stringify(item.key)}`)
        : refusal?.(reason);
    if (refuse !== undefined && error.refused !== undefined) {
      error.refused.forEach((index, i) => {
        const item = batch.items[index];
        if (item) this.fail(item, refuse(item, i));
      });
      return this.again(reqId);
    }
    if (reason === 'batch-too-large' && this.batches.refused(batch.items, error.fit))
      return this.again(reqId);
    this.inflight.delete(reqId);
    for (const item of batch.items) this.fail(item, new ServerRejectedError(reason, message));
    return true;
  }

  private again(reqId: number): true {
    this.requeue(reqId);
    this.flush();
    return true;
  }

  /** At a failover every unacknowledged item goes back to the queue, in issue order, same uuid. */
  requeueAll(): void {
    for (const reqId of [...this.inflight.keys()]) this.requeue(reqId);
  }

  /** Batches unanswered for requestTimeoutMs go again (same uuids: the server applies each once). */
  retryUnanswered(now: number): void {
    if (this.inflight.size === 0 && this.queue.length === 0) return;
    for (const [reqId, batch] of [...this.inflight])
      if (now - batch.sentAt > this.base.requestTimeoutMs) this.requeue(reqId);
    this.scheduleFlush();
  }

  /** The client was frozen: time it slept through does not count against requests. */
  thaw(now: number): void {
    for (const batch of this.inflight.values()) batch.sentAt = Math.max(batch.sentAt, now);
  }

  /** Fails items past their deadline, queued or in flight, with TimeoutError(`message`). */
  protected expireItems(now: number, message: string): void {
    const expired = (w: Queued) => !w.done && w.deadline <= now;
    if (this.queue.some(expired)) {
      for (const w of this.queue) if (expired(w)) this.fail(w, new TimeoutError(message));
      this.queue = this.queue.filter((w) => !w.done);
    }
    for (const batch of this.inflight.values())
      for (const w of batch.items) if (expired(w)) this.fail(w, new TimeoutError(message));
  }

  /** Closing: every item not settled rejects with `error`. */
  failAll(error: Error): void {
    for (const w of this.queue) this.fail(w, error);
    for (const batch of this.inflight.values()) for (const w of batch.items) this.fail(w, error);
    this.queue = [];
    this.inflight.clear();
  }

  /** A batch's unsettled items go back to the queue in issue order, keeping their uuids. */
  protected requeue(reqId: number): void {
    const batch = this.inflight.get(reqId);
    if (!batch) return;
    this.inflight.delete(reqId);
    const back = batch.items.filter((w) => !w.done);
    if (back.length > 0) this.queue = back.concat(this.queue).sort((a, b) => a.order - b.order);
  }

  protected settle(w: Queued, sequence: number): void {
    if (w.done) return;
    w.done = true;
    this.unsettled--;
    this.later(() => w.resolve(sequence));
  }

  protected fail(w: Queued, error: Error): void {
    if (w.done) return;
    w.done = true;
    this.unsettled--;
    this.later(() => w.reject(error));
  }

  private later(step: () => void): void {
    if (this.base.later) this.base.later(step);
    else step();
  }
}
