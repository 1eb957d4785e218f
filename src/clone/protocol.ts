/**
 * Wire constants in one place: the CHP commands of RFC 12 and twinstar's native extensions on
 * the snapshot socket. docs/protocol.md describes every frame of every message listed here.
 */
export { ICANHAZ, KTHXBAI, HUGZ } from './kvmsg.js';

/** Native requests a twinstar client sends on the snapshot ROUTER (DEALER side), and replies. */
export const Native = {
  /** [TSNAP, reqId, subtree] -> TSYNC* + TSYNCEND(kind=snapshot) */
  SNAPSHOT: 'TSNAP',
  /** [TRESUME, reqId, subtree, fromSeq, term] -> TSYNC* + TSYNCEND(kind=resume or snapshot) */
  RESUME: 'TRESUME',
  /** [TSYNC, reqId, packed batch] */
  SYNC: 'TSYNC',
  /** [TSYNCEND, reqId, sequence, term, kind] */
  SYNC_END: 'TSYNCEND',
  /** [TSET, reqId, packed batch of writes] -> TACK | TNOTACTIVE | TERROR */
  SET: 'TSET',
  /** [TACK, reqId, sequences (8 bytes each, in request order), durability] */
  ACK: 'TACK',
  /** [TNOTACTIVE, reqId, state] */
  NOT_ACTIVE: 'TNOTACTIVE',
  /** [TERROR, reqId, reason, message] */
  ERROR: 'TERROR',
  /** [TPING, reqId] -> [TPONG, reqId, state, sequence, term]; not a vote */
  PING: 'TPING',
  PONG: 'TPONG',
  /** [TFOLLOW, reqId, prefix, ...] -> TPUB* until TUNFOLLOW, the client leaves or the node steps down */
  FOLLOW: 'TFOLLOW',
  /** [TUNFOLLOW, reqId] */
  UNFOLLOW: 'TUNFOLLOW',
  /** [TPUB, key, sequence, uuid, properties, body]: a KVPUB or HUGZ, for one follower only */
  PUBLISH: 'TPUB',
} as const;

/** How a write was made durable: on both nodes, on the active alone, or by a lone single server. */
export type Durability = 'replicated' | 'degraded' | 'single';

export function encodeRequestId(id: number): Buffer {
  const frame = Buffer.allocUnsafe(4);
  frame.writeUInt32BE(id >>> 0);
  return frame;
}

export function decodeRequestId(frame: Buffer | undefined): number | undefined {
  return frame !== undefined && frame.length === 4 ? frame.readUInt32BE() : undefined;
}
