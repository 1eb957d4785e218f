/**
 * Acknowledged writes (TSET): each write is checked (TTL), then the router checks write rights
 * and admission, then every write is sequenced and the batch is answered once all of them are
 * durable (promise 2). Nothing of a batch that cannot be applied whole is applied.
 */
import type { Principal } from '../../security/index.js';
import {
  checkedTtlSeconds,
  highestOf,
  isRelayId,
  KvMsgError,
  type KvMsg,
  type Limits,
  type PackedEntry,
} from '../../wire/index.js';
import type { Change } from '../../core/index.js';
import { eventKey, isReserved } from '../../events/index.js';
import type { ServerContext } from '../context.js';

/**
 * The writes of a TSET as changes to sequence. A write that cannot be (a TTL out of range) fails
 * the batch: the client is told why (TERROR) and the error is thrown on, to be counted.
 */
export function toChanges(
  ctx: ServerContext,
  identity: Buffer,
  reqId: number,
  writes: readonly PackedEntry[],
  now: number,
): Change[] {
  try {
    return writes.map((write) => toChange(write, now, ctx.options.limits));
  } catch (error) {
    // The request id is readable, so say why instead of leaving the client to time out and
    // retry a batch that can never succeed. Nothing in the batch is applied.
    if (error instanceof KvMsgError) refuseWrites(ctx, identity, reqId, error);
    throw error;
  }
}

/** A TSET that cannot be applied: TERROR with the reason, and the limits if it was too large. */
export function refuseWrites(ctx: ServerContext, identity: Buffer, reqId: number, error: KvMsgError): void {
  const { maxBatchEntries, maxBatchBytes } = ctx.options.limits;
  ctx.reply(identity, {
    command: 'TERROR',
    reqId,
    reason: error.reason,
    message: error.message,
    ...(error.reason === 'batch-too-large' ? { fit: { maxBatchEntries, maxBatchBytes } } : {}),
  });
}

/**
 * Nothing of a batch with a key the client may not write is applied. TERROR lists the refused
 * writes (4-byte indexes) so the client fails those and sends the others again. False when every
 * write is allowed.
 */
export function refuseUnwritable(
  ctx: ServerContext,
  identity: Buffer,
  reqId: number,
  changes: readonly Change[],
  principal: Principal,
): boolean {
  if (changes.every((change) => principal.canWrite(change.key))) return false;
  const refused = changes.flatMap((change, i) => (principal.canWrite(change.key) ? [] : [i]));
  for (let i = 0; i < refused.length; i++) ctx.events.emit('denied', 'write', principal.name);
  ctx.events.emit('dropped', 'snapshot', 'access-denied');
  const first = changes[refused[0]!]!.key;
  ctx.reply(identity, {
    command: 'TERROR',
    reqId,
    reason: 'access-denied',
    message: `client ${principal.name} may not write ${JSON.stringify(first.slice(0, 200))}`,
    refused,
  });
  return true;
}

/**
 * Keys in the event bus's reserved namespace (a leading NUL) are the server's own: a batch with
 * one is refused whole with TERROR 'reserved-key'. False when there is none.
 */
export function refuseReserved(
  ctx: ServerContext,
  identity: Buffer,
  reqId: number,
  changes: readonly Change[],
): boolean {
  const bad = changes.find((change) => isReserved(change.key));
  if (bad === undefined) return false;
  ctx.events.emit('dropped', 'snapshot', 'reserved-key');
  ctx.reply(identity, {
    command: 'TERROR',
    reqId,
    reason: 'reserved-key',
    message: `key ${JSON.stringify(bad.key.slice(0, 80))} starts with a NUL byte, the namespace the event bus keeps for itself`,
  });
  return true;
}

/** Sequence each write (a duplicate keeps its first sequence), then TACK once all are durable. */
export function applyWrites(
  ctx: ServerContext,
  identity: Buffer,
  reqId: number,
  changes: Change[],
  now: number,
): void {
  const failure = ctx.policy.storageFailure?.();
  if (failure) return refuseForStorage(ctx, identity, reqId, failure);
  const sequences = changes.map((change) => {
    // An event (handlers/events.ts) is named by its own sequence: its key is taken at commit.
    const named = change.key === '' ? { ...change, key: eventKey(ctx.store.sequence + 1) } : change;
    const result = ctx.commit(named, 'native', now);
    return result.duplicate ? result.sequence : result.entry.sequence;
  });
  const highest = highestOf(sequences);
  // The passive may answer first (three hops, not four): only a client that named its DEALERs
  // alike on both nodes can be found there, and never with CURVE, whose ids are per server.
  if (!ctx.options.guard && isRelayId(identity)) ctx.policy.relay?.({ identity, reqId, sequences });
  ctx.policy.durable(highest).then(
    (durability) => {
      ctx.reply(identity, { command: 'TACK', reqId, sequences, durability });
      ctx.events.emit('acknowledged', changes, durability);
    },
    (error: unknown) =>
      (error as { code?: unknown } | undefined)?.code === 'ERR_STORAGE'
        ? refuseForStorage(ctx, identity, reqId, error as Error)
        : ctx.reply(identity, {
            command: 'TNOTACTIVE',
            reqId,
            state: ctx.policy.stateName(),
            reason: 'not-active',
          }),
  );
}

/** The node's storage cannot write (disk full, I/O error): TERROR 'storage', never a TACK. */
function refuseForStorage(ctx: ServerContext, identity: Buffer, reqId: number, error: Error): void {
  ctx.reply(identity, {
    command: 'TERROR',
    reqId,
    reason: 'storage',
    message: `ERR_STORAGE: ${error.message}`,
  });
}

/**
 * A client's KVSET (or native write) as a change to sequence: relative TTL becomes a deadline.
 * A TTL outside the limits' range is refused.
 */
export function toChange(msg: KvMsg, now: number, limits: Limits): Change {
  const ttl = checkedTtlSeconds(msg.properties, limits);
  return {
    key: msg.key,
    uuid: msg.uuid,
    properties: msg.properties,
    body: msg.body,
    expiresAt: ttl > 0 && msg.body.length > 0 ? now + ttl * 1000 : 0,
  };
}
