/**
 * One subscription as the application holds it (issue 16): an async iterable of events, an
 * EventEmitter of 'event' and 'error', `ready()` and `unsubscribe()`. The bookkeeping that talks to
 * servers (TESUB, TEACK, re-subscribing after a failover) is the manager's (subscriptions.ts);
 * this class only queues what the manager delivers and tells it what the application has taken.
 *
 * Taking: an event is taken when a `for await` loop gets it or, while no loop is open and 'event'
 * listeners are attached, when it is emitted. Until then it waits in the buffer (also with no loop
 * and no listener yet: a loop started later gets it). The manager sends `seen` for taken events
 * of a fan-out subscription, which is what lets the server send more: so the buffer holds at most
 * about `maxAckPending` events, and a slow loop slows the server's sending to it.
 */
import { EventEmitter } from 'node:events';
import { checkPattern } from '../events/index.js';
import { isCounter, parseProperties, type EventAckKind, type PackedEntry } from '../wire/index.js';
import { InvalidArgumentError } from '../errors.js';

/** Where a subscription starts: new events only, the oldest still held, or a sequence (from 1). */
export type SubscribeFrom = 'new' | 'first' | { readonly sequence: number };

export interface SubscribeOptions {
  /** a consumer group ([A-Za-z0-9_-], 1 to 64 characters): each event to one member; absent: fan-out */
  group?: string;
  /**
   * where a fan-out subscription starts, or where a new group starts (a group that exists keeps its
   * cursor): default 'new'
   */
  from?: SubscribeFrom;
  /** group: an event not acked in this time goes to another member */
  ackWaitMs?: number;
  /** group: deliveries after which an event goes to the dead-letter topic `$dlq.<group>` */
  maxDeliver?: number;
  /** events in flight (unacked for a group, not yet taken for fan-out) the server sends at most */
  maxAckPending?: number;
  /** group: keep the cursor while no member is connected (default true) */
  durable?: boolean;
}

/** One event as a subscriber receives it. */
export interface SubscriptionEvent {
  readonly topic: string;
  readonly data: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly sequence: number;
  /** 1 on first delivery; more when redelivered (always 1 for fan-out) */
  readonly deliveryCount: number;
  /** done with it (group); resolves once the server has it (at once for fan-out) */
  ack(): Promise<void>;
  /** give it back, to be delivered again not before `delayMs` (group) */
  nak(delayMs?: number): Promise<void>;
  /** still working on it: its ack wait starts again (group) */
  working(): Promise<void>;
  /** never deliver it again (group) */
  term(): Promise<void>;
}

export interface SubscriptionEvents {
  event: [event: SubscriptionEvent];
  error: [error: Error];
}

/** What a subscription asks of its manager. */
export interface SubscriptionControl {
  /** the application took `event` (for fan-out: it may be marked seen) */
  taken(subId: number, event: SubscriptionEvent): void;
  unsubscribe(subId: number): Promise<void>;
  ready(subId: number, timeoutMs: number): Promise<void>;
  /** a listener threw or a buffer overflowed: logged or counted by the client */
  problem(message: string, error?: unknown): void;
}

const GROUP = /^[A-Za-z0-9_-]{1,64}$/;
const KNOWN = new Set(['group', 'from', 'ackWaitMs', 'maxDeliver', 'maxAckPending', 'durable']);
const GROUP_ONLY = ['ackWaitMs', 'maxDeliver', 'durable'] as const;

/**
 * The pattern and options as TESUB options (`member` is the manager's to add), or an
 * InvalidArgumentError thrown: subscribe() is not promise-returning, so a bad call throws at once.
 */
export function subscribeOptions(pattern: unknown, options: unknown): Record<string, string> {
  if (typeof pattern !== 'string') throw new InvalidArgumentError('pattern must be a string');
  const problem = checkPattern(pattern);
  if (problem !== undefined) throw new InvalidArgumentError(`invalid pattern: ${problem}`);
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError('options must be an object');
  const o = options as Record<string, unknown>;
  for (const name of Object.keys(o))
    if (!KNOWN.has(name)) throw new InvalidArgumentError(`unknown subscribe option ${JSON.stringify(name)}`);
  const out: Record<string, string> = {};
  if (o.group !== undefined) {
    if (typeof o.group !== 'string' || !GROUP.test(o.group))
      throw new InvalidArgumentError(`group must match ${GROUP.source}`);
    out.group = o.group;
  } else {
    for (const name of GROUP_ONLY)
      if (o[name] !== undefined) throw new InvalidArgumentError(`${name} applies to a group only`);
  }
  for (const name of ['ackWaitMs', 'maxDeliver', 'maxAckPending'] as const) {
    const value = o[name];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > 0xffff_ffff)
      throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${0xffff_ffff}`);
    out[name] = String(value);
  }
  if (o.durable !== undefined) {
    if (typeof o.durable !== 'boolean') throw new InvalidArgumentError('durable must be true or false');
    out.durable = o.durable ? '1' : '0';
  }
  if (o.from !== undefined) out.from = fromText(o.from);
  return out;
}

function fromText(from: unknown): string {
  if (from === 'new' || from === 'first') return from;
  const sequence =
    typeof from === 'object' && from !== null ? (from as { sequence?: unknown }).sequence : undefined;
  if (!isCounter(sequence) || sequence < 1)
    throw new InvalidArgumentError("from must be 'new', 'first' or { sequence: a whole number >= 1 }");
  return String(sequence);
}

export class Subscription
  extends EventEmitter<SubscriptionEvents>
  implements AsyncIterable<SubscriptionEvent>
{
  private readonly buffer: SubscriptionEvent[] = [];
  private head = 0;
  private iterators = 0;
  /** loops waiting for the next event, each with its own token */
  private waiting: {
    readonly owner: object;
    readonly resolve: (r: IteratorResult<SubscriptionEvent>) => void;
    readonly reject: (e: Error) => void;
  }[] = [];
  private ended = false;
  private failure: Error | undefined;

  constructor(
    /** the id TEVT carries; unique within the client */
    readonly subId: number,
    readonly pattern: string,
    readonly group: string | undefined,
    private readonly control: SubscriptionControl,
    /** most events held for an iterator before the oldest are dropped (a server ignoring flow control) */
    private readonly maxBuffered: number,
  ) {
    super();
  }

  /** Resolves once the server has the subscription (TEOK); rejects on its refusal, a close or the timeout. */
  ready(timeoutMs = 10_000): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return this.control.ready(this.subId, timeoutMs);
  }

  /** Ends the subscription (its iterators finish); resolves once the server is told, or at once when not connected. */
  unsubscribe(): Promise<void> {
    return this.control.unsubscribe(this.subId);
  }

  /** Whether the subscription has ended (unsubscribed, refused or the client closed). */
  get closed(): boolean {
    return this.ended;
  }

  /** Events waiting for an iterator. */
  get buffered(): number {
    return this.buffer.length - this.head;
  }

  /** (manager) events for this subscription, on the client's next-tick queue */
  deliver(event: SubscriptionEvent): void {
    if (this.ended) return;
    if (this.listenerCount('event') > 0) {
      try {
        this.emit('event', event);
      } catch (error) {
        this.control.problem("a subscription's 'event' listener threw", error);
      }
    }
    if (this.iterators === 0 && this.listenerCount('event') > 0) return this.control.taken(this.subId, event);
    const waiter = this.waiting.shift();
    if (waiter) {
      this.control.taken(this.subId, event);
      return waiter.resolve({ value: event, done: false });
    }
    if (this.buffered >= this.maxBuffered) {
      this.control.problem(
        `subscription ${this.pattern}: more than ${this.maxBuffered} events buffered, oldest dropped`,
      );
      this.head++;
    }
    this.buffer.push(event);
  }

  /** (manager) the server refused the subscription: ready() rejects with `error` from now on */
  failed(error: Error): void {
    this.failure ??= error;
  }

  /** (manager) the subscription is over: iterators finish (rejecting with `error` when given). */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    if (error) this.failure ??= error;
    if (error && this.listenerCount('error') > 0) {
      try {
        this.emit('error', error);
      } catch (inner) {
        this.control.problem("a subscription's 'error' listener threw", inner);
      }
    }
    for (const w of this.waiting.splice(0))
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
  }

  private compact(): void {
    this.buffer.splice(0, this.head);
    this.head = 0;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<SubscriptionEvent> {
    this.iterators++;
    let open = true;
    const owner = {};
    // A loop that ends (break) leaves what it did not take in the buffer, for the next loop.
    const close = () => {
      if (open) this.iterators--;
      open = false;
      const mine = this.waiting.filter((w) => w.owner === owner);
      this.waiting = this.waiting.filter((w) => w.owner !== owner);
      for (const w of mine) w.resolve({ value: undefined, done: true });
    };
    const iterator: AsyncIterableIterator<SubscriptionEvent> = {
      next: () => {
        if (!open) return Promise.resolve({ value: undefined, done: true });
        if (this.head < this.buffer.length) {
          const value = this.buffer[this.head++]!;
          if (this.head > 1024 && this.head * 2 > this.buffer.length) this.compact();
          this.control.taken(this.subId, value);
          return Promise.resolve({ value, done: false });
        }
        if (this.ended) {
          close();
          return this.failure
            ? Promise.reject(this.failure)
            : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => this.waiting.push({ owner, resolve, reject }));
      },
      return: () => {
        close();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}

/** An event as the application sees it; `ack` sends (or, for fan-out, skips) its acknowledgement. */
export function eventOf(
  e: PackedEntry,
  deliveryCount: number,
  ack: (kind: EventAckKind, delayMs: number) => Promise<void>,
): SubscriptionEvent {
  let headers: Record<string, string> = {};
  try {
    headers = Object.fromEntries(parseProperties(e.properties));
  } catch {
    // the codec has checked the syntax already
  }
  return {
    topic: e.key,
    data: e.body,
    headers,
    sequence: e.sequence,
    deliveryCount,
    ack: () => ack('ack', 0),
    nak: (delayMs = 0) => ack('nak', delayMs),
    working: () => ack('working', 0),
    term: () => ack('term', 0),
  };
}
