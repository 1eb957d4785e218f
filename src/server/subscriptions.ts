/**
 * What the dispatcher (dispatcher.ts) keeps of a subscription, the requests it takes, and how an
 * event goes out in a TEVT. Pure: no sockets, no clock.
 */
import type { GroupConfig, GroupOp } from '../events/index.js';
import { eventProperties, eventTopic, headerLines } from '../events/index.js';
import type { DueChange } from '../core/index.js';
import type { Entry } from '../kv/index.js';
import type { EventAckKind, PackedEntry } from '../wire/index.js';

export type From = 'new' | 'first' | number;

export interface SubscribeRequest {
  readonly subId: number;
  readonly pattern: string;
  readonly member: string;
  readonly from: From;
  readonly group?: {
    readonly name: string;
    readonly ackWaitMs?: number;
    readonly maxDeliver?: number;
    readonly maxAckPending?: number;
    readonly durable?: boolean;
  };
  /** fan-out: events sent and not yet taken, at most */
  readonly window: number;
}

export interface Subscriber {
  readonly member: string;
  identity: Buffer;
  subId: number;
  readonly pattern: string;
  readonly group: string | undefined;
  /** fan-out: the last sequence sent, and those sent and not yet taken */
  cursor: number;
  readonly unseen: number[];
  readonly window: number;
  /**
   * fan-out: whether its TEOK has gone out. Nothing is sent before: a client drops the TEVTs that
   * reach it between a gap and its new TEOK (sent under the subscription it replaces, they come
   * again), so a TEVT of this subscription sent before the TEOK would be dropped and never resent.
   */
  opened: boolean;
}

/** Why a subscription was refused: a TERROR reason and message. */
export class SubscribeError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export function subKey(identity: Buffer, subId: number): string {
  return `${identity.toString('latin1')}\n${subId}`;
}

export function orphanKey(group: string, member: string): string {
  return `${group}\n${member}`;
}

/** An event as TEVT carries it: the topic as key, the headers as properties. */
export function delivered(sequence: number, entry: Entry): PackedEntry {
  return {
    key: eventTopic(entry.properties),
    sequence,
    uuid: entry.uuid,
    properties: headerLines(entry.properties),
    body: entry.body,
    expiresAt: 0,
  };
}

export function checkSame(
  name: string,
  config: GroupConfig,
  pattern: string,
  request: SubscribeRequest,
): void {
  const asked = request.group!;
  const differs: string[] = [];
  if (pattern !== request.pattern) differs.push(`pattern ${pattern}`);
  for (const field of ['ackWaitMs', 'maxDeliver', 'maxAckPending', 'durable'] as const)
    if (asked[field] !== undefined && asked[field] !== config[field])
      differs.push(`${field} ${config[field]}`);
  if (differs.length > 0)
    throw new SubscribeError('group-mismatch', `group ${name} exists with ${differs.join(', ')}`);
}

/** A publish: the event entry to sequence, its key taken at commit time (handlers/events.ts). */
export function eventChange(
  topic: string,
  headers: Record<string, string>,
  data: Buffer,
  time: number,
): DueChange {
  return { key: '', properties: eventProperties({ topic, time, headers }), body: data, expiresAt: 0 };
}

/** Where a subscription or a new group starts: after this sequence. */
export function startOf(from: From, published: number): number {
  if (from === 'new') return published;
  if (from === 'first') return 0;
  return Math.max(0, from - 1);
}

/** The group op of one ack of a TEACK (not `seen`, which is fan-out's). */
export function ackOp(
  kind: Exclude<EventAckKind, 'seen'>,
  event: number,
  member: string,
  now: number,
  delayMs: number,
  ackWaitMs: number,
): GroupOp {
  if (kind === 'nak') return { type: 'nak', event, member, notBefore: now + delayMs };
  if (kind === 'working') return { type: 'working', event, member, deadline: now + ackWaitMs };
  return { type: kind, event, member };
}
