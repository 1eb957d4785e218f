/** The Clone pattern over CHP (RFC 12): codec, sequenced map, store, server and client core. */
export * from './kvmsg.js';
export { KvMap, type Entry } from './kvmap.js';
export { digestOf, type Digest } from './digest.js';
export { ReplayLog } from './replay-log.js';
export {
  Store,
  StoreBuilder,
  isDedupeUuid,
  type Change,
  type CommitResult,
  type ReplicateResult,
  type StoreOptions,
} from './store.js';
export { Replica, type Change as ReplicaChange, type OfferResult } from './replica.js';
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
export {
  Native,
  ADVERTISE,
  NATIVE_VERSION,
  encodeRequestId,
  decodeRequestId,
  type Durability,
  type NotActiveReason,
} from './protocol.js';
export { Outbox, errorCode, DRAIN_BUDGET_MS, type OutboxOptions } from './outbox.js';
export { Fifo } from './fifo.js';
export { UuidWindow, type UuidWindowOptions } from './uuid-window.js';
export { receiveLoop } from './receive-loop.js';
export { newUuid } from './uuid.js';
export * from './sizes.js';
