/**
 * The Clone server: snapshot ROUTER, publisher and collector sockets (sockets.ts), the request
 * router and its handlers (router.ts, handlers/), TFOLLOW fan-out (followers.ts), publication
 * (publishing.ts), quotas and snapshot streams. `CloneServer` (server.ts) wires them together.
 */
export { CloneServer } from './server.js';
export { toChange } from './handlers/write.js';
export {
  DEFAULT_QUOTAS,
  type ServerQuotas,
  type ServicePolicy,
  type Admission,
  type ServerEvents,
  type ChangeSource,
  type DropReason,
  type SnapshotKind,
  type CloneServerOptions,
  type ServerEndpoints,
} from './types.js';
