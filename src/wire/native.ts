/**
 * Wire constants in one place: the CHP commands of RFC 12 and twinstar's native extensions on
 * the snapshot socket. docs/protocol.md describes every frame of every message listed here.
 */
export { ICANHAZ, KTHXBAI, HUGZ } from './chp.js';

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
  /**
   * [TNOTACTIVE, reqId, state, reason]: this node does not serve. Reason (may be absent from old
   * servers): 'not-active' (a non-vote request reached a node that is not active), 'peer-alive'
   * (a vote was refused because this node still hears an active peer), 'no-history' (this node
   * does not hold a complete copy of the history and never accepts a vote: promise 3), 'fenced'
   * (this active met another active and does not sequence until one of them has demoted).
   */
  NOT_ACTIVE: 'TNOTACTIVE',
  /** [TERROR, reqId, reason, message] */
  ERROR: 'TERROR',
  /**
   * [TPING, reqId] -> [TPONG, reqId, state, sequence, term, heartbeatMs, history]; never a vote.
   * heartbeatMs: the server's HUGZ interval as ASCII decimal. history: 'complete' when this node
   * holds a complete copy of the pair's history (it could accept a vote), 'incomplete' otherwise.
   */
  PING: 'TPING',
  PONG: 'TPONG',
  /**
   * [TVOTE, reqId]: the Binary Star client vote. A client sends it to a non-active server only
   * after it has itself found the active silent for its server timeout. Accepted: TPONG (state
   * ACTIVE). Refused: TNOTACTIVE with a reason. No other native request is ever a vote: TSNAP,
   * TRESUME, TSET and TFOLLOW sent to a node that is not active get TNOTACTIVE 'not-active'.
   */
  VOTE: 'TVOTE',
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

/** TNOTACTIVE reasons (docs/protocol.md). */
export type NotActiveReason = 'not-active' | 'peer-alive' | 'no-history' | 'fenced';

/**
 * Properties twinstar adds to KTHXBAI and HUGZ, CHP-legal places (RFC 12 allows any properties),
 * so that a client can learn, without sending anything a plain RFC 12 server would refuse, that
 * the server speaks the native extension and how often it sends HUGZ.
 */
export const ADVERTISE = {
  /** native protocol version; present only on twinstar servers */
  NATIVE: 'twinstar',
  /** the server's HUGZ interval in milliseconds */
  HUGZ_MS: 'hugz-ms',
  /** on HUGZ from a node that is not active (or is fenced): its state; absent on the active's */
  STATE: 'state',
} as const;
export const NATIVE_VERSION = '1';
