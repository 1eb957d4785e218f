/**
 * The native extension's constants, message types and error (docs/protocol.md). Import them
 * from `native.ts`, the codec's public face, which also holds the encoders and decoders.
 */
import { ICANHAZ, KvMsgError, type DecodeReason, type KvMsg, type Limits } from './chp.js';
import { type PackedBatch, type PackedEntry } from './packed.js';

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
  /** [TEPUB, reqId, packed batch of events] -> TACK | TNOTACTIVE | TERROR (event bus, issue 16) */
  EVENT_PUBLISH: 'TEPUB',
  /** [TESUB, reqId, subId, pattern, options] -> TEOK (info) | TNOTACTIVE | TERROR */
  EVENT_SUBSCRIBE: 'TESUB',
  /** [TEUNSUB, reqId, subId] -> TEOK */
  EVENT_UNSUBSCRIBE: 'TEUNSUB',
  /** [TEACK, reqId, subId, acks (13 bytes each)] -> TEOK | TNOTACTIVE | TERROR */
  EVENT_ACK: 'TEACK',
  /** [TEOK, reqId, info]: info is `name=value\n` lines ('' for none) */
  EVENT_OK: 'TEOK',
  /** [TEVT, subId, packed batch of events, counts (4 bytes each)]: events for one subscription */
  EVENT: 'TEVT',
  /** [TLEASE, reqId, op, id (8 bytes), ttlMs (4 bytes)] -> TLEASEOK | TNOTACTIVE | TERROR (issue 17) */
  LEASE: 'TLEASE',
  /** [TLEASEOK, reqId, id (8), ttlMs (4), remainingMs (4), json ('' except for op list)] */
  LEASE_OK: 'TLEASEOK',
  /** [TWATCH, reqId, prefix, fromSequence (8)] -> TSYNC* + TSYNCEND(resume) | TERROR history-unavailable */
  WATCH: 'TWATCH',
} as const;

/** What a TLEASE asks (docs/protocol.md, Leases). */
export type LeaseOp = 'grant' | 'keepalive' | 'revoke' | 'list';
export const LEASE_OPS: ReadonlySet<string> = new Set<LeaseOp>(['grant', 'keepalive', 'revoke', 'list']);

/** One lease of a TLEASEOK answering op 'list'. */
export interface LeaseInfo {
  readonly id: number;
  readonly ttlMs: number;
  readonly remainingMs: number;
  /** how many keys are attached to it */
  readonly keys: number;
}

/** Write properties of KV parity (issue 17), in a TSET write's properties. */
export const WRITE_PROPERTY = {
  /** apply only if the key's current sequence is exactly this (0: the key must not exist); not stored */
  IF_SEQUENCE: 'if-seq',
  /** attach the key to this lease (decimal id); stored */
  LEASE: 'lease',
  /** `1` with an empty body: delete every key under the write's key, as one change */
  DELETE_PREFIX: 'delete-prefix',
  /** on the published change of a delete by prefix: a twinstar replica deletes every key under it */
  PUBLISHED_DELETE_PREFIX: 'twinstar-delete-prefix',
} as const;

/** How a write was made durable: on both nodes, on the active alone, or by a lone single server. */
export type Durability = 'replicated' | 'degraded' | 'single';

/**
 * A native client without CURVE names its DEALERs itself, with the same routing id on both
 * servers: this mark, then 15 random URL-safe characters. The passive can then send the TACK an
 * active relays to it (issue 18) to the right client; an id libzmq made up (5 bytes, a leading 0)
 * is one per server, and a TACK is never relayed to it.
 */
export const RELAY_ID_MARK = 0x74; // 't'
export const RELAY_ID_BYTES = 16;

/** Whether a routing id is one a client chose for both servers (RELAY_ID_MARK). */
export function isRelayId(identity: Buffer): boolean {
  return identity.length === RELAY_ID_BYTES && identity[0] === RELAY_ID_MARK;
}

export function encodeRequestId(id: number): Buffer {
  const frame = Buffer.allocUnsafe(4);
  frame.writeUInt32BE(id >>> 0);
  return frame;
}

export function decodeRequestId(frame: Buffer | undefined): number | undefined {
  return frame !== undefined && frame.length === 4 ? frame.readUInt32BE() : undefined;
}

/** TNOTACTIVE reasons (docs/protocol.md). */
export type NotActiveReason = 'not-active' | 'peer-alive' | 'no-history' | 'fenced' | 'peer-unknown';

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
  /** the node's metrics and health HTTP port (`twinstar endpoint status` finds it here) */
  HTTP: 'http',
} as const;
export const NATIVE_VERSION = '1';

// ------------------------------------------------------------------------------------------------
// Types.

/** TSYNCEND's kind: a full snapshot (the client replaces its replica) or a resume (it applies on top). */
export type SyncKind = 'snapshot' | 'resume';
/** TPONG's history: whether the node holds the pair's complete history (could accept a vote). */
export type PongHistory = 'complete' | 'incomplete';

/** A request a twinstar client sends on its DEALER to the snapshot ROUTER. */
export type NativeRequest =
  | { readonly command: 'TSNAP'; readonly reqId: number; readonly subtree: string }
  | {
      readonly command: 'TRESUME';
      readonly reqId: number;
      readonly subtree: string;
      /** the last sequence the client applied, on timeline `term` */
      readonly fromSequence: number;
      readonly term: string;
    }
  /** writes to sequence; a client sends expiresAt 0 and a `ttl=` property instead */
  | { readonly command: 'TSET'; readonly reqId: number; readonly writes: readonly PackedEntry[] }
  | { readonly command: 'TPING'; readonly reqId: number }
  | { readonly command: 'TVOTE'; readonly reqId: number }
  | { readonly command: 'TFOLLOW'; readonly reqId: number; readonly prefixes: readonly string[] }
  | { readonly command: 'TUNFOLLOW'; readonly reqId: number }
  /** events to publish: key = topic, sequence 0, uuid 16 random bytes, properties = headers */
  | { readonly command: 'TEPUB'; readonly reqId: number; readonly events: readonly PackedEntry[] }
  | {
      readonly command: 'TESUB';
      readonly reqId: number;
      /** chosen by the client, unique within it; TEVT carries it */
      readonly subId: number;
      readonly pattern: string;
      /** `name=value` options (member, group, from, ackWaitMs...): only their syntax is checked here */
      readonly options: Readonly<Record<string, string>>;
    }
  | { readonly command: 'TEUNSUB'; readonly reqId: number; readonly subId: number }
  | {
      readonly command: 'TLEASE';
      readonly reqId: number;
      readonly op: LeaseOp;
      /** grant: 0 (the server picks) or the client's choice; list: 0 */
      readonly id: number;
      /** grant: the lease's TTL (>= 1000); otherwise 0 */
      readonly ttlMs: number;
    }
  | {
      readonly command: 'TWATCH';
      readonly reqId: number;
      readonly prefix: string;
      /** the changes wanted are those with a sequence above this one */
      readonly fromSequence: number;
    }
  | {
      readonly command: 'TEACK';
      readonly reqId: number;
      readonly subId: number;
      readonly acks: readonly EventAck[];
    };

/** What a TEACK says of one event: 0 ack, 1 nak, 2 working, 3 term, 4 seen (fan-out) on the wire. */
export type EventAckKind = 'ack' | 'nak' | 'working' | 'term' | 'seen';

/** One ack of a TEACK. `delayMs` is the nak's delay (0: at once); 0 for every other kind. */
export interface EventAck {
  readonly sequence: number;
  readonly kind: EventAckKind;
  readonly delayMs: number;
}

/** The plain RFC 12 snapshot request, which reaches the same ROUTER: [ICANHAZ?, subtree]. */
export interface IcanhazRequest {
  readonly command: typeof ICANHAZ;
  readonly subtree: string;
}

/** Every request the snapshot socket takes. */
export type SnapshotSocketRequest = NativeRequest | IcanhazRequest;

/** TPONG: who the node is. Servers before heartbeatMs and history sent neither (5 frames). */
export type PongReply = {
  readonly command: 'TPONG';
  readonly reqId: number;
  /** ACTIVE only while the node sequences; otherwise its Binary Star state, or FENCED */
  readonly state: string;
  readonly sequence: number;
  readonly term: string;
} & (
  | { readonly heartbeatMs: number; readonly history: PongHistory }
  | { readonly heartbeatMs?: undefined; readonly history?: undefined }
);

/** TERROR: a request refused for good (or 'busy': for now). Some reasons carry more frames. */
export interface ErrorReply {
  readonly command: 'TERROR';
  readonly reqId: number;
  /** a DecodeReason of the request, or 'busy', 'unauthenticated', 'access-denied' */
  readonly reason: string;
  readonly message: string;
  /** 'access-denied', 'conflict', 'lease-not-found': indexes (into the TSET batch) of the writes refused */
  readonly refused?: readonly number[];
  /** 'conflict': the current sequence of each refused write's key (0: absent), in `refused` order */
  readonly current?: readonly number[];
  /** 'batch-too-large': the server's limits, so the client can cut its batches to fit */
  readonly fit?: { readonly maxBatchEntries: number; readonly maxBatchBytes: number };
}

/** A reply a twinstar server sends on the snapshot ROUTER to a client's DEALER. */
export type NativeReply =
  /** `batch`: checked when a client decodes it, and decoded only when it is used (wire/packed.ts) */
  | { readonly command: 'TSYNC'; readonly reqId: number; readonly batch: PackedBatch }
  | {
      readonly command: 'TSYNCEND';
      readonly reqId: number;
      readonly sequence: number;
      readonly term: string;
      readonly kind: SyncKind;
    }
  | {
      readonly command: 'TACK';
      readonly reqId: number;
      /** one per write, in request order (a duplicate write's is its original sequence) */
      readonly sequences: readonly number[];
      readonly durability: Durability;
    }
  | {
      readonly command: 'TNOTACTIVE';
      readonly reqId: number;
      readonly state: string;
      /** absent from servers older than the reasons */
      readonly reason?: NotActiveReason;
    }
  | ErrorReply
  | PongReply
  /** an update for a follower (TFOLLOW): a KVPUB or HUGZ as the publisher sends it; no reqId */
  | { readonly command: 'TPUB'; readonly msg: KvMsg }
  /** TESUB, TEUNSUB or TEACK done; info: `name=value` lines (TESUB: start= or cursor=) */
  | { readonly command: 'TEOK'; readonly reqId: number; readonly info: Readonly<Record<string, string>> }
  /** a TLEASE done: the lease, its TTL and time left; `leases` only for op 'list' */
  | {
      readonly command: 'TLEASEOK';
      readonly reqId: number;
      readonly id: number;
      readonly ttlMs: number;
      readonly remainingMs: number;
      readonly leases?: readonly LeaseInfo[];
    }
  /** events for subscription subId (no reqId): counts[i] is events[i]'s delivery count (>= 1) */
  | {
      readonly command: 'TEVT';
      readonly subId: number;
      readonly events: readonly PackedEntry[];
      readonly counts: readonly number[];
    };

/** What a decoder refuses. `command` and `reqId` are set when they could be read. */
export class NativeMsgError extends KvMsgError {
  /** the message without its reason prefix */
  readonly detail: string;
  constructor(
    reason: DecodeReason,
    detail: string,
    readonly command?: string,
    readonly reqId?: number,
  ) {
    super(reason, detail);
    this.detail = detail;
  }
}

/** Bounds a server applies while decoding requests; each defaults to no bound beyond the limits. */
export interface RequestBounds {
  /**
   * key, value and properties limits, maxBatchEntries/maxBatchBytes of a TSET or TEPUB, most acks
   * of a TEACK (maxBatchEntries), a TESUB pattern (maxKeyBytes) and its options (properties limits)
   */
  readonly limits?: Limits;
  /** longest subtree (TSNAP, TRESUME, ICANHAZ?) or follow prefix, in bytes */
  readonly maxSubtreeBytes?: number;
  /** most prefixes in one TFOLLOW */
  readonly maxFollowPrefixes?: number;
}

/** The command frame; shared and never written to (zeromq only reads what it sends). */
const FRAMES = new Map([...Object.values(Native), ICANHAZ].map((c) => [c, Buffer.from(c)] as const));
export function commandFrame(command: string): Buffer {
  return FRAMES.get(command) ?? Buffer.from(command);
}
