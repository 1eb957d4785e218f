/**
 * twinstar: a highly available key-value event bus. The package root exports what services use
 * (the client) and what operators embed (the server); see README.md.
 */
export {
  connect,
  Client,
  type ClientOptions,
  type ClientEvents,
  type ClientStats,
  type DropInfo,
  type Update,
  type FailoverInfo,
  type SetOptions,
  type ReplicaView,
  type Mode,
  type Status,
  type PublishOptions,
  type SubscribeOptions,
  type SubscribeFrom,
  Subscription,
  type SubscriptionEvent,
  type SubscriptionEvents,
  Lease,
  type LeaseEvents,
  type LeaseInfo,
  type LeaseAdmin,
  type KeyEntry,
  type WatchOptions,
} from './client/index.js';
export * from './errors.js';
export { startServer, type RunningServer } from './server.js';
export { loadConfig, type ServerConfig } from './config/index.js';
export type { Durability } from './wire/index.js';
