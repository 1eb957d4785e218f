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
import { encodeRequest, formatProperties, type Limits } from '../wire/index.js';
import { newUuid } from '../core/index.js';
import { ClosedError, InvalidArgumentError, QueueFullError, ServerRejectedError } from '../errors.js';
import { AckedQueue, queued } from './acked-queue.js';
import { rejectWith } from './arguments.js';
import { checkAckSequences } from './drops.js';
import type { Link } from './link.js';

const PUBLISH_BATCH = 1000;

/** What publish() takes besides the topic and data. */
export interface PublishOptions {
  /** headers of the event: names [A-Za-z0-9_.-]+, values without a newline */
  headers?: Record<string, string>;
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

export class Publishes extends AckedQueue {
  constructor(private readonly host: PublishHost) {
    super(host, PUBLISH_BATCH);
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
    return new Promise<number>((resolve, reject) => {
      const deadline = host.now() + host.writeTimeoutMs;
      this.enqueue(queued(key, newUuid(), properties, body, deadline, true, resolve, reject));
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
    this.sendBatches(link, (reqId, events) => encodeRequest({ command: 'TEPUB', reqId, events }));
  }

  /** A TACK for a publish batch: one sequence per event, or it throws (ReplyError) and settles nothing. */
  onAck(reqId: number, sequences: readonly number[]): boolean {
    const batch = this.inflight.get(reqId);
    if (!batch) return false;
    const seqs = checkAckSequences(sequences, batch.items.length);
    this.inflight.delete(reqId);
    batch.items.forEach((p, i) => this.settle(p, seqs[i]!));
    return true;
  }

  /** Fails events past their deadline with TimeoutError. */
  expire(now: number): void {
    if (this.unsettled === 0) return; // nothing queued or in flight: no message to build, no walk
    this.expireItems(now, `publish not acknowledged within ${this.host.writeTimeoutMs} ms`);
  }
}
