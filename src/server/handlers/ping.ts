/**
 * TPING, TVOTE and the TNOTACTIVE answer: who this node is, so a client can find the active.
 * TPING is never a vote; TVOTE is the Binary Star vote of a native client, which sends it only
 * after it found the active silent itself (the router asks the policy, then answers here).
 */
import type { NotActiveReason } from '../../wire/index.js';
import type { ServerContext } from '../context.js';

/** TPONG: state (ACTIVE only while sequencing), sequence, term, HUGZ interval and history. */
export function pong(ctx: ServerContext, identity: Buffer, reqId: number): void {
  const { policy } = ctx;
  ctx.reply(identity, {
    command: 'TPONG',
    reqId,
    state: ctx.sequencing() ? 'ACTIVE' : ctx.isActive() ? 'FENCED' : policy.stateName(),
    sequence: ctx.store.sequence,
    term: policy.term(),
    heartbeatMs: ctx.options.heartbeatMs,
    history: policy.hasHistory() ? 'complete' : 'incomplete',
  });
}

/** TNOTACTIVE: this node does not serve that request, and why. */
export function notActive(
  ctx: ServerContext,
  identity: Buffer,
  reqId: number,
  reason: NotActiveReason,
): void {
  ctx.reply(identity, { command: 'TNOTACTIVE', reqId, state: ctx.policy.stateName(), reason });
}
