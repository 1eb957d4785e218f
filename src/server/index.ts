/** The Clone server: snapshot ROUTER, publisher and collector sockets, quotas and snapshot streams. */
export {
  CloneServer,
  DEFAULT_QUOTAS,
  toChange,
  type ServerQuotas,
  type ServicePolicy,
  type Admission,
  type ServerEvents,
  type ChangeSource,
  type DropReason,
  type SnapshotKind,
  type CloneServerOptions,
  type ServerEndpoints,
} from './server.js';
