/**
 * What the client's subscription manager (subscriptions.ts) keeps for each subscription and each
 * request in flight: plain types, apart so that the manager stays one readable module.
 */
import type { EventAck, Limits } from '../wire/index.js';
import type { Logger } from '../log/index.js';
import type { ReadyWaiters } from './ready.js';
import type { Subscription } from './subscription.js';
import type { Link } from './link.js';

export interface SubscriptionsHost {
  readonly limits: Limits;
  readonly requestTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly log: Logger;
  now(): number;
  mode(): string;
  closed(): boolean;
  /** the active's link when the client is ready on it, else undefined */
  target(): Link | undefined;
  reqId(): number;
  /** the HUGZ interval of the server in use */
  heartbeatMs(): number;
  later(step: () => void): void;
}

export interface AckOp extends EventAck {
  readonly deadline: number;
  /** absent for the client's own `seen` */
  readonly settle?: (error?: Error) => void;
}

export interface Sub {
  readonly api: Subscription;
  /** TESUB options but `from` (computed at each send) */
  readonly options: Readonly<Record<string, string>>;
  readonly fanOut: boolean;
  readonly waiters: ReadyWaiters;
  confirmed: boolean;
  /** a TESUB went to the server in use (cleared when it is lost) */
  sent: boolean;
  /** the TESUB in flight (undefined: none, or answered) */
  subReq: number | undefined;
  subSentAt: number;
  /** fan-out: the last sequence received (from the server's start=, then each TEVT) */
  after: number | undefined;
  /** fan-out: a TEVT of it was dropped; later ones are too until a new TESUB is answered */
  stale: boolean;
  /** fan-out: the last sequence taken, and the last one a `seen` went out for */
  taken: number;
  seenQueued: number;
  seenCount: number;
  seenSince: number;
  queue: AckOp[];
}

export type Pending =
  | { readonly type: 'ack'; readonly subId: number; readonly ops: AckOp[]; sentAt: number }
  | { readonly type: 'unsub'; readonly subId: number; readonly done: () => void; readonly sentAt: number };

/** Ack operations already settled (a timeout, a close): they are sent no more. */
export const settled = new WeakSet<AckOp>();
