/**
 * A twinstar node: a single server, or one half of a Binary Star pair (the reactor running the FSM,
 * its peer link, replication and pending list).
 */
export {
  type NodeOptions,
  type NodeStatus,
  type NodeEvents,
  type PeerStatus,
  type StateChange,
} from './node-types.js';
export { Node } from './node.js';
export { BinaryStar, type BinaryStarHooks, type BinaryStarOptions } from './binary-star.js';
export { attachment, type Attachment, type AttachmentFacts } from './attachment.js';
export { PeerLink, type PeerChannel, type PeerLinkOptions } from './peer-link.js';
export { PendingList, type PendingItem } from './pending.js';
export { ReplicationSource } from './replication-source.js';
export { ReplicationSink } from './replication-sink.js';
