/**
 * TLEASE (issue 17, docs/protocol.md "Leases"): grant, keep alive, revoke and list leases. Each
 * grant, keep-alive and revoke is sequenced (core/lease-machine.ts) and answered once durable, so
 * a lease the client was told about survives a failover; a keep-alive is not a key change, so no
 * watcher sees it.
 */
import { ZERO_UUID } from '../../core/index.js';
import type { NativeRequest } from '../../wire/index.js';
import type { ServerContext } from '../context.js';

/** The shortest lease: a keep-alive every third of it must be practical (etcd's minimum is 5 s). */
export const MIN_LEASE_TTL_MS = 1_000;

export function serveLease(
  ctx: ServerContext,
  identity: Buffer,
  request: Extract<NativeRequest, { command: 'TLEASE' }>,
): void {
  const { reqId, op, id, ttlMs } = request;
  const now = ctx.now();
  const leases = ctx.store.leases;
  const refuse = (reason: string, message: string) =>
    ctx.reply(identity, { command: 'TERROR', reqId, reason, message });
  const answer = (lease: number, ttl: number, remaining: number) =>
    ctx.reply(identity, { command: 'TLEASEOK', reqId, id: lease, ttlMs: ttl, remainingMs: remaining });
  /** Sequence the changes, then answer once they are durable (or say this node stopped serving). */
  const commitThen = (changes: ReturnType<typeof leases.revokeChanges>, then: () => void) => {
    for (const change of changes) ctx.commit({ ...change, uuid: ZERO_UUID }, 'native', now);
    ctx.policy.durable(ctx.store.sequence).then(then, () =>
      ctx.reply(identity, {
        command: 'TNOTACTIVE',
        reqId,
        state: ctx.policy.stateName(),
        reason: 'not-active',
      }),
    );
  };
  switch (op) {
    case 'list': {
      const list = leases.ids().map((lease) => ({ id: lease, ...leases.info(lease, now)! }));
      return ctx.reply(identity, {
        command: 'TLEASEOK',
        reqId,
        id: 0,
        ttlMs: 0,
        remainingMs: 0,
        leases: list,
      });
    }
    case 'grant': {
      if (!(ttlMs >= MIN_LEASE_TTL_MS))
        return refuse('invalid-ttl', `a lease's TTL is at least ${MIN_LEASE_TTL_MS} ms, not ${ttlMs}`);
      if (id !== 0 && leases.has(id)) return refuse('lease-exists', `lease ${id} exists`);
      // The server's choice: the sequence the grant takes, unique on the pair's history.
      const lease = id !== 0 ? id : ctx.store.sequence + 1;
      return commitThen([leases.keepChange(lease, ttlMs, now)], () => answer(lease, ttlMs, ttlMs));
    }
    case 'keepalive': {
      const info = leases.info(id, now);
      if (info === undefined) return refuse('lease-not-found', `no lease ${id} (expired or revoked)`);
      return commitThen([leases.keepChange(id, info.ttlMs, now)], () => answer(id, info.ttlMs, info.ttlMs));
    }
    case 'revoke': {
      if (!leases.has(id)) return refuse('lease-not-found', `no lease ${id} (expired or revoked)`);
      return commitThen(leases.revokeChanges(id), () => answer(id, 0, 0));
    }
  }
}
