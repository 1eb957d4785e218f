/** The public failover-aware client. */
export {
  Client,
  connect,
  systemClock,
  type ClientOptions,
  type ClientEvents,
  type ClientStats,
  type Clock,
  type FailoverInfo,
  type Mode,
  type ReplicaView,
  type SetOptions,
  type Update,
} from './client.js';
export type { DropInfo, DropSource } from './drops.js';
export { Lease, type LeaseEvents } from './leases.js';
export type { LeaseInfo } from '../wire/index.js';
export type { KeyEntry } from './revisions.js';
export type { WatchOptions } from './kv-arguments.js';
export type { LeaseAdmin } from './kv-api.js';
export type { LeaseRef, WriteConditions } from './conditions.js';
export { parseServer, type ServerAddress } from './servers.js';
export { VoteBook, type Random } from './votes.js';
export type { Status } from './session.js';
export type { ServerSeen } from './discovery.js';
export { zmqTransport } from './transport.js';
export type { Link, LinkHandlers, Transport } from './link.js';
export { WatchStream } from './watch.js';
export type { PublishOptions } from './publishing.js';
export {
  Subscription,
  type SubscribeFrom,
  type SubscribeOptions,
  type SubscriptionEvent,
  type SubscriptionEvents,
} from './subscription.js';
