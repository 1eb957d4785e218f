/**
 * The one codec of twinstar's native extension on the snapshot socket (docs/protocol.md): its
 * constants, the typed requests a client sends (`NativeRequest`, plus the CHP `ICANHAZ?` that
 * arrives on the same socket) and the typed replies a server sends (`NativeReply`).
 *
 * - A client encodes what it sends with `encodeRequest` and decodes what it receives with
 *   `decodeReply` (TPUB included: the updates of a follower).
 * - A server decodes with `decodeRequest` (routing id stripped) and encodes with `encodeReply`
 *   (then puts the routing id in front); `encodePublication` wraps a kvmsg already encoded.
 *
 * Every decoder checks the frame count of its command (a trailing frame too many is an error as
 * much as one too few) and throws only `NativeMsgError`, a `KvMsgError` whose `reason` is a
 * metric label; the caller drops the message and counts it. Pure: no sockets, no clock.
 */
export * from './native-types.js';
export { encodeRequest, decodeRequest } from './native-requests.js';
export {
  encodeReply,
  encodePackedSync,
  decodeReply,
  isUnauthenticatedReply,
  encodePublication,
  isNativeReply,
} from './native-replies.js';
export { EVENT_ACK_BYTES, EVENT_ACK_KINDS, MAX_NAK_DELAY_MS } from './native-events.js';
