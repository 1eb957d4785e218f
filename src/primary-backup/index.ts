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
export { encodePeerMessage, decodePeerMessage, type Heartbeat, type PeerMessage } from './peer-protocol.js';
export { PendingList, type PendingItem } from './pending.js';
export { Timeline, type TimelineEntry } from './timeline.js';
export { ReplicationSource } from './replication-source.js';
export { ReplicationSink } from './replication-sink.js';
