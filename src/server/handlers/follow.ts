/**
 * TFOLLOW and TUNFOLLOW: a client whose key may read only some subtrees follows updates over the
 * snapshot socket (followers.ts sends them). The router has admitted the request and counted the
 * prefixes the client may read only in part.
 */
import type { Principal } from '../../security/index.js';
import type { ServerContext } from '../context.js';

/** From now on, updates under the prefixes go to this client, only those it may read. */
export function follow(
  ctx: ServerContext,
  identity: Buffer,
  prefixes: readonly string[],
  principal: Principal | undefined,
): void {
  ctx.followers.add(identity, prefixes, principal);
}

export function unfollow(ctx: ServerContext, identity: Buffer): void {
  ctx.followers.remove(identity);
}
