/**
 * Byte formats only, pure: CHP (RFC 12) kvmsg and the packed batch, the native extension, peer
 * messages, sizes, and the ZMTP 3.0 framing the update stream speaks over Node's sockets.
 */
export * from './chp.js';
export * from './packed.js';
export * from './properties.js';
export * from './sizes.js';
export * from './native.js';
export {
  encodePeerMessage,
  decodePeerMessage,
  type Heartbeat,
  type PeerMessage,
  type TimelineEntry,
} from './peer.js';
export { unpackEntries, packEntries, highestOf, type RelayedAck } from './peer.js';
export { updatesTopic, updatesPrefix, encodeUpdates, isUpdates } from './updates.js';
export * as zmtp from './zmtp.js';
