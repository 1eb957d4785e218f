/**
 * The client's event publishing (issue 16): `publish(topic, data, { headers })` as an
 * acknowledged write of an event. Events are queued, sent to the active in TEPUB batches (cut to
 * the server's batch limits, as writes are), keep their uuid when sent again after a timeout or a
 * failover (the server stores each once), and resolve with their sequence once the server's TACK
 * says they are stored as a write is (replicated, or degraded). There is no replica to wait for:
 * events are not keys. Every wait is bounded by writeTimeoutMs. The agent owns the sockets and the
 * phase (PublishHost); no I/O of its own besides `link.request`.
 */
import { checkTopic } from '../events/index.js';
import {
  encodeRequest,
  formatProperties,
  type ErrorReply,
  type Limits,
  type PackedEntry,
} from '../wire/index.js';
import { newUuid } from '../core/index.js';
import {
  AccessDeniedError,
  ClosedError,
  InvalidArgumentError,
  QueueFullError,
  ServerRejectedError,
  TimeoutError,
} from '../errors.js';
import { rejectWith } from './arguments.js';
import { BatchSizer } from './batches.js';
import { checkAckSequences } from './drops.js';
import type { Link } from './transport.js';

const PUBLISH_BATCH = 1000;

/** What publish() takes besides the topic and data. */
export interface PublishOptions {
  /** headers of the event: names [A-Za-z0-9_.-]+, values without a newline */
  headers?: Record<string, string>;
}

interface Pending {
  readonly key: string;
  readonly uuid: string;
  readonly properties: string;
  readonly body: Buffer;
  readonly deadline: number;
  readonly order: number;
  resolve(sequence: number): void;
  reject(error: Error): void;
  done: boolean;
}

export interface PublishHost {
  readonly limits: Limits;
  readonly writeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxPendingWrites: number;
  now(): number;
  /** 'native' | 'chp', or 'auto' while undecided */
  mode(): string;
  closed(): boolean;
  /** the active's link when requests may go out, else undefined */
  target(): Link | undefined;
  reqId(): number;
  /** runs the step that settles a promise (the client's next-tick queue) */
  later(step: () => void): void;
}

/** The error a publish or subscribe gets from a server that speaks plain CHP only. */
export function plainChpError(): ServerRejectedError {
  return new ServerRejectedError(
    'plain-chp',
    'the server speaks plain CHP (RFC 12) only: it has no event bus (publish, subscribe)',
  );
}

const HEADER_NAME = /^[A-Za-z0-9_.-]+$/;

/** The headers as CHP properties text; a bad name or value throws InvalidArgumentError. */
export function headerText(options: unknown, limits: Limits): string {
  if (options === undefined) return '';
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError('options must be an object');
  const headers = (options as PublishOptions).headers ?? {};
  if (typeof headers !== 'object' || headers === null)
    throw new InvalidArgumentError('headers must be an object of strings');
  const entries = Object.entries(headers);
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name))
      throw new InvalidArgumentError(`header name ${JSON.stringify(name)} must match ${HEADER_NAME.source}`);
    if (typeof value !== 'string' || value.includes('\n'))
      throw new InvalidArgumentError(`header ${name} must be a string without a newline`);
  }
  if (entries.length > limits.maxProperties)
    throw new InvalidArgumentError(`${entries.length} headers; the limit is ${limits.maxProperties}`);
  const text = formatProperties(headers);
  if (Buffer.byteLength(text) > limits.maxPropertiesBytes)
    throw new InvalidArgumentError(`headers take more than ${limits.maxPropertiesBytes} bytes`);
  return text;
}

/** The event's data as a Buffer (may be empty) within the value limit. */
export function eventData(data: unknown, limits: Limits): Buffer {
  const body =
    typeof data === 'string'
      ? Buffer.from(data)
      : Buffer.isBuffer(data)
        ? data
        : data instanceof Uint8Array
          ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
          : undefined;
  if (body === undefined) throw new InvalidArgumentError('data must be a string, a Buffer or a Uint8Array');
  if (body.length > limits.maxValueBytes)
    throw new InvalidArgumentError(`data is ${body.length} bytes; the limit is ${limits.maxValueBytes}`);
  return body;
}

export class Publishes {
  private queue: Pending[] = [];
  private readonly inflight = new Map<number, { events: Pending[]; sentAt: number }>();
  private order = 0;
  private unsettled = 0;
  private flushScheduled = false;
  private readonly batches: BatchSizer;

  constructor(private readonly host: PublishHost) {
    this.batches = new BatchSizer(host.limits, PUBLISH_BATCH);
  }

  /** Events published and not yet settled. */
  get pending(): number {
    return this.unsettled;
  }

  /** Never throws: a bad topic, data or header rejects with InvalidArgumentError. */
  publish(topic: unknown, data: unknown, options?: unknown): Promise<number> {
    const host = this.host;
    let key: string;
    let body: Buffer;
    let properties: string;
    try {
      const problem = typeof topic === 'string' ? checkTopic(topic) : 'topic must be a string';
      if (problem !== undefined) throw new InvalidArgumentError(`invalid topic: ${problem}`);
      key = topic as string;
      body = eventData(data, host.limits);
      properties = headerText(options, host.limits);
    } catch (error) {
      return rejectWith(error);
    }
    if (host.closed()) return Promise.reject(new ClosedError());
    if (host.mode() === 'chp') return Promise.reject(plainChpError());
    if (this.unsettled >= host.maxPendingWrites)
      return Promise.reject(new QueueFullError(host.maxPendingWrites));
    this.unsettled++;
    return new Promise<number>((resolve, reject) => {
      const deadline = host.now() + host.writeTimeoutMs;
      const uuid = newUuid();
      this.queue.push({
        key,
        uuid,
        properties,
        body,
        deadline,
        order: this.order++,
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

  /** Sends queued events to the active in batches; in plain CHP mode they fail. */
  flush(): void {
    const mode = this.host.mode();
    if (mode === 'chp') {
      for (const p of this.queue.splice(0)) this.fail(p, plainChpError());
      return;
    }
    const link = this.host.target();
    if (link === undefined || mode === 'auto') return;
    while (this.queue.length > 0) {
      const events = this.queue.splice(0, this.batches.next(this.queue)).filter((p) => !p.done);
      if (events.length === 0) continue;
      const reqId = this.host.reqId();
      this.inflight.set(reqId, { events, sentAt: this.host.now() });
      const entries: PackedEntry[] = events.map(({ key, uuid, properties, body }) => {
        return { key, sequence: 0, uuid, properties, body, expiresAt: 0 };
      });
      link.request(encodeRequest({ command: 'TEPUB', reqId, events: entries }));
    }
  }

  /** Whether `reqId` is a publish batch waiting for its answer. */
  waiting(reqId: number): boolean {
    return this.inflight.has(reqId);
  }

  /** A TACK for a publish batch: one sequence per event, or it throws (ReplyError) and settles nothing. */
  onAck(reqId: number, sequences: readonly number[]): boolean {
    const batch = this.inflight.get(reqId);
    if (!batch) return false;
    const seqs = checkAckSequences(sequences, batch.events.length);
    this.inflight.delete(reqId);
    batch.events.forEach((p, i) => this.settle(p, seqs[i]!));
    return true;
  }

  /** A TERROR: true if it answered a publish batch. */
  onError(error: ErrorReply): boolean {
    const { reqId, reason, message } = error;
    const batch = this.inflight.get(reqId);
    if (!batch) return false;
    if (reason === 'access-denied' && error.refused !== undefined) {
      for (const index of error.refused) {
        const p = batch.events[index];
        if (p) this.fail(p, new AccessDeniedError(p.key, `${message}: ${JSON.stringify(p.key)}`));
      }
      this.requeue(reqId);
      this.flush();
      return true;
    }
    if (reason === 'batch-too-large' && this.batches.refused(batch.events, error.fit)) {
      this.requeue(reqId);
      this.flush();
      return true;
    }
    this.inflight.delete(reqId);
    for (const p of batch.events) this.fail(p, new ServerRejectedError(reason, message));
    return true;
  }

  /** At a failover every unacknowledged event goes back to the queue, in order, same uuid. */
  requeueAll(): void {
    for (const reqId of [...this.inflight.keys()]) this.requeue(reqId);
  }

  /** Batches unanswered for requestTimeoutMs go again (same uuids: stored once). */
  retryUnanswered(now: number): void {
    for (const [reqId, batch] of [...this.inflight])
      if (now - batch.sentAt > this.host.requestTimeoutMs) this.requeue(reqId);
    this.scheduleFlush();
  }

  /** The client was frozen: time it slept through does not count against requests. */
  thaw(now: number): void {
    for (const batch of this.inflight.values()) batch.sentAt = Math.max(batch.sentAt, now);
  }

  /** Fails events past their deadline with TimeoutError. */
  expire(now: number): void {
    const expired = (p: Pending) => !p.done && p.deadline <= now;
    const timeout = () => new TimeoutError(`publish not acknowledged within ${this.host.writeTimeoutMs} ms`);
    if (this.queue.some(expired)) {
      for (const p of this.queue) if (expired(p)) this.fail(p, timeout());
      this.queue = this.queue.filter((p) => !p.done);
    }
    for (const batch of this.inflight.values())
      for (const p of batch.events) if (expired(p)) this.fail(p, timeout());
  }

  /** Closing: every event not settled rejects with `error`. */
  failAll(error: Error): void {
    for (const p of this.queue) this.fail(p, error);
    for (const batch of this.inflight.values()) for (const p of batch.events) this.fail(p, error);
    this.queue = [];
    this.inflight.clear();
  }

  private requeue(reqId: number): void {
    const batch = this.inflight.get(reqId);
    if (!batch) return;
    this.inflight.delete(reqId);
    const back = batch.events.filter((p) => !p.done);
    if (back.length > 0) this.queue = back.concat(this.queue).sort((a, b) => a.order - b.order);
  }

  private settle(p: Pending, sequence: number): void {
    if (p.done) return;
    p.done = true;
    this.unsettled--;
    this.host.later(() => p.resolve(sequence));
  }

  private fail(p: Pending, error: Error): void {
    if (p.done) return;
    p.done = true;
    this.unsettled--;
    this.host.later(() => p.reject(error));
  }
}
