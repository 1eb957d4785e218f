/**
 * The event bus's requests (issue 16, docs/protocol.md "Event bus"): TEPUB is acknowledged like a
 * TSET (the same durability), TESUB / TEUNSUB / TEACK go to the dispatcher and are answered TEOK.
 * Every request is checked here (topics, patterns, options, rights); what is refused is answered
 * TERROR with a reason and changes nothing.
 */
import { checkGroupName, checkMemberId, checkPattern, checkTopic, prefixOf } from '../../events/index.js';
import type { Principal } from '../../security/index.js';
import { parseProperties, type EventAck, type PackedEntry } from '../../wire/index.js';
import type { ServerContext } from '../context.js';
import {
  eventChange,
  SubscribeError,
  type Dispatcher,
  type From,
  type SubscribeRequest,
} from '../dispatcher.js';
import { applyWrites } from './write.js';

/** The topic rights of a client: publishing and subscribing are checked by topic prefix. */
function mayPublish(principal: Principal | undefined, topic: string): boolean {
  return principal === undefined || principal.canPublish(topic);
}

export function publishEvents(
  ctx: ServerContext,
  identity: Buffer,
  reqId: number,
  events: readonly PackedEntry[],
  principal: Principal | undefined,
): void {
  const refuse = (reason: string, message: string, refused?: number[]) =>
    ctx.reply(identity, { command: 'TERROR', reqId, reason, message, ...(refused ? { refused } : {}) });
  for (const event of events) {
    const problem = checkTopic(event.key);
    if (problem !== undefined) return refuse('invalid-topic', problem);
  }
  const denied = events.flatMap((event, i) => (mayPublish(principal, event.key) ? [] : [i]));
  if (denied.length > 0) {
    ctx.events.emit('denied', 'write', principal!.name);
    const topic = events[denied[0]!]!.key;
    return refuse('access-denied', `client ${principal!.name} may not publish on ${topic}`, denied);
  }
  const now = ctx.now();
  let changes;
  try {
    changes = events.map((event) => ({
      ...eventChange(event.key, Object.fromEntries(parseProperties(event.properties)), event.body, now),
      uuid: event.uuid,
    }));
  } catch (error) {
    return refuse('properties-syntax', (error as Error).message);
  }
  applyWrites(ctx, identity, reqId, changes, now);
}

/** TESUB: the options checked and turned into a subscription, or TERROR. */
export function subscribeEvents(
  ctx: ServerContext,
  dispatcher: Dispatcher,
  identity: Buffer,
  reqId: number,
  subId: number,
  pattern: string,
  options: Readonly<Record<string, string>>,
  principal: Principal | undefined,
  defaultWindow: number,
): void {
  const refuse = (reason: string, message: string) =>
    ctx.reply(identity, { command: 'TERROR', reqId, reason, message });
  const problem = checkPattern(pattern);
  if (problem !== undefined) return refuse('invalid-pattern', problem);
  if (principal !== undefined && !principal.canSubscribe(prefixOf(pattern))) {
    ctx.events.emit('denied', 'read', principal.name);
    return refuse('access-denied', `client ${principal.name} may not subscribe to ${pattern}`);
  }
  let request: SubscribeRequest;
  try {
    request = parseSubscribe(subId, pattern, options, defaultWindow);
  } catch (error) {
    return refuse('invalid-options', (error as Error).message);
  }
  const generation = ctx.generation();
  dispatcher.subscribe(identity, request).then(
    (info) => {
      if (ctx.generation() === generation) ctx.reply(identity, { command: 'TEOK', reqId, info });
    },
    (error: unknown) =>
      error instanceof SubscribeError
        ? refuse(error.reason, error.message)
        : ctx.reply(identity, {
            command: 'TNOTACTIVE',
            reqId,
            state: ctx.policy.stateName(),
            reason: 'not-active',
          }),
  );
}

export function unsubscribeEvents(
  ctx: ServerContext,
  dispatcher: Dispatcher,
  identity: Buffer,
  reqId: number,
  subId: number,
): void {
  dispatcher.unsubscribe(identity, subId).then(
    () => ctx.reply(identity, { command: 'TEOK', reqId, info: {} }),
    () =>
      ctx.reply(identity, {
        command: 'TNOTACTIVE',
        reqId,
        state: ctx.policy.stateName(),
        reason: 'not-active',
      }),
  );
}

export function ackEvents(
  ctx: ServerContext,
  dispatcher: Dispatcher,
  identity: Buffer,
  reqId: number,
  subId: number,
  acks: readonly EventAck[],
): void {
  dispatcher.ack(identity, subId, acks).then(
    (notHeld) =>
      notHeld.length === 0
        ? ctx.reply(identity, { command: 'TEOK', reqId, info: {} })
        : ctx.reply(identity, {
            command: 'TERROR',
            reqId,
            reason: 'not-held',
            message: `event ${acks[notHeld[0]!]!.sequence} is not held by this member: it was redelivered after the ack wait, or its delivery was lost in a failover; it will be delivered again`,
            refused: notHeld,
          }),
    (error: unknown) =>
      error instanceof SubscribeError
        ? ctx.reply(identity, { command: 'TERROR', reqId, reason: error.reason, message: error.message })
        : ctx.reply(identity, {
            command: 'TNOTACTIVE',
            reqId,
            state: ctx.policy.stateName(),
            reason: 'not-active',
          }),
  );
}

const WHOLE = /^[1-9]\d{0,14}$/;

/** TESUB options (docs/protocol.md): throws an Error naming the first bad one. */
export function parseSubscribe(
  subId: number,
  pattern: string,
  options: Readonly<Record<string, string>>,
  defaultWindow: number,
): SubscribeRequest {
  const known = new Set(['member', 'group', 'from', 'ackWaitMs', 'maxDeliver', 'maxAckPending', 'durable']);
  for (const name of Object.keys(options)) if (!known.has(name)) throw new Error(`unknown option ${name}`);
  const member = options.member ?? '';
  const memberProblem = checkMemberId(member);
  if (memberProblem !== undefined) throw new Error(memberProblem);
  const whole = (name: string): number | undefined => {
    const raw = options[name];
    if (raw === undefined) return undefined;
    if (!WHOLE.test(raw)) throw new Error(`${name}=${raw} is not a whole number >= 1`);
    return Number(raw);
  };
  const rawFrom = options.from ?? 'new';
  let from: From;
  if (rawFrom === 'new' || rawFrom === 'first') from = rawFrom;
  else if (WHOLE.test(rawFrom)) from = Number(rawFrom);
  else throw new Error(`from=${rawFrom} is not new, first or a sequence`);
  const maxAckPending = whole('maxAckPending');
  const base = { subId, pattern, member, from, window: maxAckPending ?? defaultWindow };
  if (options.group === undefined) {
    for (const name of ['ackWaitMs', 'maxDeliver', 'durable'])
      if (options[name] !== undefined) throw new Error(`${name} is an option of a group subscription`);
    return base;
  }
  const groupProblem = checkGroupName(options.group);
  if (groupProblem !== undefined) throw new Error(groupProblem);
  const durable = options.durable;
  if (durable !== undefined && durable !== '1' && durable !== '0')
    throw new Error(`durable=${durable} is not 1 or 0`);
  const group: NonNullable<SubscribeRequest['group']> = {
    name: options.group,
    ...defined('ackWaitMs', whole('ackWaitMs')),
    ...defined('maxDeliver', whole('maxDeliver')),
    ...defined('maxAckPending', maxAckPending),
    ...(durable === undefined ? {} : { durable: durable === '1' }),
  };
  return { ...base, group };
}

function defined<K extends string>(name: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [name]: value } as Record<K, number>);
}
