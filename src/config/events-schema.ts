/**
 * The event bus's settings (docs/events.md), part of the convict schema (schema.ts). Retention is
 * one JSON list of rules, each for a topic prefix; a bad list stops start-up with one line naming it.
 */
import { checkRules, type RetentionRule } from '../events/index.js';
import { positive } from './formats.js';

/** What the stream keeps when nothing is configured: a week, a million events, 256 MiB. */
export const DEFAULT_RETENTION =
  '[{"prefix":"","maxEvents":1000000,"maxBytes":268435456,"maxAgeMs":604800000}]';

/** The retention rules of a configuration value (validated by the schema's format first). */
export function retentionRules(text: string): RetentionRule[] {
  return JSON.parse(text) as RetentionRule[];
}

export const eventSchema = {
  eventRetention: {
    doc: 'event retention rules, JSON: [{"prefix":"orders","maxEvents":N,"maxBytes":N,"maxAgeMs":N}, ...]; the longest matching prefix wins, "" covers every topic',
    format: (value: unknown) => {
      let rules: unknown;
      try {
        rules = JSON.parse(String(value));
      } catch {
        throw new Error('must be a JSON list of rules');
      }
      if (!Array.isArray(rules)) throw new Error('must be a JSON list of rules');
      const problem = checkRules(rules as RetentionRule[]);
      if (problem !== undefined) throw new Error(problem);
    },
    default: DEFAULT_RETENTION,
    env: 'TWINSTAR_EVENT_RETENTION',
    arg: 'event-retention',
  },
  eventMemberTimeoutMs: {
    doc: 'a consumer-group member (or subscriber) the active has not heard from for this long is gone: what it held goes to the others, in ms',
    format: positive,
    default: 5_000,
    env: 'TWINSTAR_EVENT_MEMBER_TIMEOUT_MS',
    arg: 'event-member-timeout-ms',
  },
  eventAckWaitMs: {
    doc: 'default ack wait of a new consumer group: an event not acked in time goes to another member, in ms',
    format: positive,
    default: 30_000,
    env: 'TWINSTAR_EVENT_ACK_WAIT_MS',
    arg: 'event-ack-wait-ms',
  },
  eventMaxDeliver: {
    doc: 'default deliveries of one event to a new consumer group before it is dead-lettered to $dlq.<group>',
    format: positive,
    default: 10,
    env: 'TWINSTAR_EVENT_MAX_DELIVER',
    arg: 'event-max-deliver',
  },
  eventMaxAckPending: {
    doc: 'default events a group member (or fan-out subscriber) may hold unacked; a full one gets no more',
    format: positive,
    default: 1_000,
    env: 'TWINSTAR_EVENT_MAX_ACK_PENDING',
    arg: 'event-max-ack-pending',
  },
};

export interface EventConfig {
  eventRetention: string;
  eventMemberTimeoutMs: number;
  eventAckWaitMs: number;
  eventMaxDeliver: number;
  eventMaxAckPending: number;
}
