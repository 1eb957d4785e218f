/**
 * The clone server's types: the policy the node around it implements, its events, quotas and
 * options. Kept apart so that every module of src/server/ can name them without a cycle.
 */
import type * as zmq from 'zeromq';
import type { Logger } from '../log/index.js';
import type { Guard } from '../security/index.js';
import type { DecodeReason, KvMsg, Limits, Durability, NotActiveReason, RelayedAck } from '../wire/index.js';
import type { Entry } from '../kv/index.js';
import type { Change, Store } from '../core/index.js';
import type { StreamRefusal } from './snapshot-streams.js';

/** What the node around the server decides: who is served and when a write is durable. */
export interface ServicePolicy {
  /**
   * A client voted for this node (ICANHAZ? or TVOTE): the Binary Star vote. Accepted when this
   * node serves now (it may have just been promoted by this very vote); otherwise why not.
   */
  admit(): Admission;
  /** This node may sequence changes now: active, and not settling a meeting with another active. */
  serving(): boolean;
  /** This node holds a complete copy of the pair's history (advertised in TPONG). */
  hasHistory(): boolean;
  /** The state reported to a native client that is turned away. */
  stateName(): string;
  /** The id of the current timeline (changes at every promotion), for resume requests. */
  term(): string;
  /** Whether a client that applied up to `sequence` under `term` shares this node's history. */
  onTimeline(sequence: number, term: string): boolean;
  /** Resolves once `sequence` is durable (promise 2); rejects if this node stops being active. */
  durable(sequence: number): Promise<Durability>;
  /**
   * The highest sequence clients may see: what the passive has confirmed, or everything when
   * there is no passive to wait for. The node calls `releasePublications()` when it grows.
   */
  publishableUpTo(): number;
  /** A CHP KVSET reached this node while it is not active (Model Six pending list). */
  collectWhileInactive(msg: KvMsg, receivedAt: number): void;
  /** Set once a storage write failed: native writes are refused with TERROR 'storage'. */
  storageFailure?(): Error | undefined;
  /** Hands a write's TACK to the passive to send, if there is one that can (pair/node.ts). */
  relay?(ack: RelayedAck): void;
}

export type Admission =
  { readonly accepted: true } | { readonly accepted: false; readonly reason: NotActiveReason };

export type ChangeSource = 'collector' | 'native' | 'ttl' | 'pending' | 'bus';
export type SocketName = 'snapshot' | 'collector';
export type SnapshotKind = 'chp' | 'native' | 'resume';

export interface ServerEvents {
  change: [entry: Entry, source: ChangeSource];
  dropped: [socket: SocketName, reason: DropReason];
  /** a request an authenticated client has no right to make; what it asked is not done */
  denied: [operation: 'read' | 'write', client: string];
  snapshot: [kind: SnapshotKind, keys: number, ms: number];
  rejected: [command: string];
  /** a TACK the active relayed went to its client (or could not: the client is not connected) */
  relayed: [delivered: boolean];
  /** snapshot streams in progress changed; or a request or stream was refused by a cap */
  /** streams in progress, and the bytes they can hold buffered at most */
  streams: [count: number, bytes: number];
  'stream-refused': [reason: StreamRefusal];
  /** these writes were acknowledged to the client that sent them */
  acknowledged: [changes: readonly Change[], durability: Durability];
  /** an event of the bus (or a group slot write) passed the publication watermark */
  'event-released': [entry: Entry];
}

export type DropReason =
  | DecodeReason
  | 'duplicate'
  | 'send-failed'
  | 'client-gone'
  | 'bad-request'
  | 'rate-limited'
  | 'busy'
  | 'stalled'
  | 'unauthenticated'
  | 'access-denied'
  | 'reserved-key'
  | 'conflict';

/** How much one client may ask for and how much the server queues for it. */
export interface ServerQuotas {
  /** snapshot and resume requests per client per second (a burst of as many is allowed) */
  snapshotsPerSecond: number;
  /** messages queued towards one client on the snapshot socket */
  clientQueue: number;
  /** messages queued towards one subscriber on the publisher */
  publisherQueue: number;
  /** bytes queued towards one subscriber of the update stream (P+3); past them it is disconnected */
  publisherQueueBytes: number;
  /** messages queued from all CHP writers on the collector */
  collectorQueue: number;
  /** longest subtree (snapshot, resume) or follow prefix a client may ask for */
  maxSubtreeBytes: number;
  /** most prefixes in one TFOLLOW */
  maxFollowPrefixes: number;
  /** snapshot and resume streams in progress on the server; more are refused ('busy') */
  maxSnapshotStreams: number;
  /** snapshot and resume streams in progress towards one client; one more stops its oldest */
  maxSnapshotStreamsPerClient: number;
  /** a snapshot stream whose client takes nothing for this long is stopped, in ms */
  snapshotIdleMs: number;
  /** bytes all snapshot streams can hold buffered at once, worst case (snapshot-streams.ts) */
  maxSnapshotBytes: number;
  /** bytes one snapshot stream can hold buffered, worst case; native chunks are cut to fit it */
  maxSnapshotBytesPerClient: number;
}

export const DEFAULT_QUOTAS: ServerQuotas = {
  snapshotsPerSecond: 20,
  clientQueue: 10_000,
  publisherQueue: 100_000,
  publisherQueueBytes: 64 * 1024 * 1024,
  collectorQueue: 100_000,
  maxSubtreeBytes: 1024,
  maxFollowPrefixes: 16,
  maxSnapshotStreams: 16,
  maxSnapshotStreamsPerClient: 1,
  snapshotIdleMs: 30_000,
  maxSnapshotBytes: 1024 * 1024 * 1024,
  maxSnapshotBytesPerClient: 256 * 1024 * 1024,
};

export interface ServerEndpoints {
  snapshot: string;
  publisher: string;
  collector: string;
  /** the native update stream, P+3 (not bound with CURVE) */
  updates?: string;
}

export interface CloneServerOptions {
  host: string;
  /** snapshot port; publisher is port + 1, collector port + 2, update stream port + 3 */
  port: number;
  heartbeatMs: number;
  limits: Limits;
  /** entries per native snapshot chunk (TSYNC) and per replication snapshot chunk */
  snapshotChunk: number;
  quotas?: ServerQuotas;
  store: Store;
  policy: ServicePolicy;
  log: Logger;
  now?: () => number;
  /** the ZeroMQ context of the sockets (the ZAP handler of a secure server lives there) */
  context?: zmq.Context;
  /** with a guard, every socket is a CURVE server and every request is checked (docs/security.md) */
  guard?: Guard;
  /** the event bus's settings (docs/events.md); defaults: EVENT_DEFAULTS */
  events?: EventSettings;
  /** this node's HTTP port (metrics, health), advertised on KTHXBAI and HUGZ; absent: not advertised */
  httpPort?: number;
}

/** How the active delivers events. */
export interface EventSettings {
  /** a group member (or fan-out subscriber) not heard for this long is gone */
  readonly memberTimeoutMs: number;
  /** group settings a subscription does not give (JetStream's defaults, but maxDeliver) */
  readonly ackWaitMs: number;
  readonly maxDeliver: number;
  readonly maxAckPending: number;
}

export const EVENT_DEFAULTS: EventSettings = {
  memberTimeoutMs: 5_000,
  ackWaitMs: 30_000,
  maxDeliver: 10,
  maxAckPending: 1_000,
};
