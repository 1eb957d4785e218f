/** The Binary Star pair: a node running the FSM, its peer link, replication and pending list. */
export {
  Node,
  type NodeOptions,
  type NodeStatus,
  type NodeEvents,
  type PeerStatus,
  type StateChange,
} from './node.js';
export { PeerLink, type PeerChannel, type PeerLinkOptions } from './peer-link.js';
export { PendingList, type PendingItem } from './pending.js';
export { ReplicationSource } from './replication-source.js';
export { ReplicationSink } from './replication-sink.js';
