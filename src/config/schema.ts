/**
 * The convict schema is the single source of every server setting: its default, its environment
 * variable (`TWINSTAR_*`), its command-line flag and its documentation (docs/configuration.md is
 * generated from it with `npm run docs`; `twinstar server --help` prints it). Names carry their
 * units.
 *
 * Some defaults depend on the role, so that a primary and a backup pair on one host with no
 * flags at all: those settings default to null here and are filled in by `resolveDefaults`
 * (load.ts).
 */
import { DEFAULT_LIMITS } from '../wire/index.js';
import { DEFAULT_QUOTAS } from '../server/index.js';
import { MAX_SIZE as MAX_DEDUPE_SIZE } from '../core/index.js';
import { eventSchema } from './events-schema.js';
import { positive, positiveAtMost } from './formats.js';
import { securitySchema } from './security-schema.js';

const hostPort = (value: unknown) => {
  if (value === null) return;
  if (typeof value !== 'string' || !/^[^:\s]+:\d{1,5}$/.test(value)) throw new Error('must be HOST:PORT');
};

/** A length a packed entry stores in 16 bits (wire/chp.ts): the store keeps every entry packed. */
const packedLength = positiveAtMost(0xffff, 'a packed length is 16 bits');

export const schema = {
  role: {
    doc: 'single (one server, no pair), primary or backup',
    format: ['single', 'primary', 'backup'],
    default: 'single',
    env: 'TWINSTAR_ROLE',
    arg: 'role',
  },
  name: {
    doc: 'node name on every log line and in /status (default: the role)',
    format: String,
    default: '',
    env: 'TWINSTAR_NAME',
    arg: 'name',
  },
  host: {
    doc: 'address the client sockets bind to',
    format: String,
    default: '127.0.0.1',
    env: 'TWINSTAR_HOST',
    arg: 'host',
  },
  port: {
    doc: 'snapshot port P (publisher P+1, collector P+2, update stream P+3); default 5556, or 5566 for the backup',
    format: 'port',
    default: null as number | null,
    nullable: true,
    env: 'TWINSTAR_PORT',
    arg: 'port',
  },
  heartbeatHost: {
    doc: 'address the peer heartbeat socket binds to (default: host)',
    format: String,
    default: '',
    env: 'TWINSTAR_HEARTBEAT_HOST',
    arg: 'heartbeat-host',
  },
  heartbeatPort: {
    doc: "this node's peer heartbeat port; default 5003, or 5004 for the backup",
    format: 'port',
    default: null as number | null,
    nullable: true,
    env: 'TWINSTAR_HEARTBEAT_PORT',
    arg: 'heartbeat-port',
  },
  peer: {
    doc: "the other node's snapshot endpoint HOST:PORT; default 127.0.0.1:5566 (primary) or 127.0.0.1:5556 (backup)",
    format: hostPort,
    default: null as string | null,
    nullable: true,
    env: 'TWINSTAR_PEER',
    arg: 'peer',
  },
  peerHeartbeat: {
    doc: "the other node's heartbeat endpoint HOST:PORT; default the peer's host with port 5004 (primary) or 5003 (backup)",
    format: hostPort,
    default: null as string | null,
    nullable: true,
    env: 'TWINSTAR_PEER_HEARTBEAT',
    arg: 'peer-heartbeat',
  },
  heartbeatMs: {
    doc: 'interval of peer heartbeats and of HUGZ to clients; must match on both nodes',
    format: positive,
    default: 100,
    env: 'TWINSTAR_HEARTBEAT_MS',
    arg: 'heartbeat-ms',
  },
  failoverMs: {
    doc: 'peer silence after which a client vote may promote the passive; must match on both nodes',
    format: positive,
    default: 500,
    env: 'TWINSTAR_FAILOVER_MS',
    arg: 'failover-ms',
  },
  httpHost: {
    doc: 'address the metrics and health HTTP server binds to (default: host)',
    format: String,
    default: '',
    env: 'TWINSTAR_HTTP_HOST',
    arg: 'http-host',
  },
  httpPort: {
    doc: 'metrics and health HTTP port; default 9556, or 9566 for the backup; 0 picks a free port',
    format: 'port',
    default: null as number | null,
    nullable: true,
    env: 'TWINSTAR_HTTP_PORT',
    arg: 'http-port',
  },
  logLevel: {
    doc: 'pino log level',
    format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    env: 'TWINSTAR_LOG_LEVEL',
    arg: 'log-level',
  },
  dataDir: {
    doc: "directory of this node's durable state (lmdb, created if missing); default data/NAME under the working directory, NAME being the name setting",
    format: String,
    default: '',
    env: 'TWINSTAR_DATA_DIR',
    arg: 'data-dir',
  },
  memory: {
    doc: 'keep everything in memory only, as before durable storage: nothing survives a restart, no files are written (data-dir is then ignored)',
    format: 'strict-boolean',
    default: false,
    env: 'TWINSTAR_MEMORY',
    arg: 'memory',
  },
  fsync: {
    doc: 'when a write is on disk before it is acknowledged: always (fsynced, on the passive too), batch (in the OS at once, fsynced every 200 ms), off (the OS writes back when it likes); docs/binary-star.md',
    format: ['always', 'batch', 'off'],
    default: 'batch',
    env: 'TWINSTAR_FSYNC',
    arg: 'fsync',
  },
  pairId: {
    doc: "the pair this node's data directory must belong to: written at its first start, and a directory holding another id is refused (default: whatever id the directory holds, a new one at first start)",
    format: String,
    default: '',
    env: 'TWINSTAR_PAIR_ID',
    arg: 'pair-id',
  },
  replayLogSize: {
    doc: 'recent changes kept so that passives and clients can resume instead of re-snapshotting',
    format: positive,
    default: 100_000,
    env: 'TWINSTAR_REPLAY_LOG_SIZE',
    arg: 'replay-log-size',
  },
  dedupeMs: {
    doc: "every write uuid is remembered at least this long after its entry is replaced or deleted (until then the entry remembers it), so that a retried write applies once; keep it above the clients' writeTimeoutMs (10 s); at least 1000",
    format: (value: unknown) => {
      positive(value);
      if ((value as number) < 1000) throw new Error('must be at least 1000 (1 s)');
    },
    default: 30_000,
    env: 'TWINSTAR_DEDUPE_MS',
    arg: 'dedupe-ms',
  },
  dedupeSize: {
    doc: 'memory cap on the write uuids remembered for replaced or deleted entries (about 45 bytes each, in typed arrays outside the heap; about 130 MB when full); a uuid it forces out before dedupeMs is counted in twinstar_dedupe_evicted_early_total',
    format: positiveAtMost(MAX_DEDUPE_SIZE),
    default: 3_000_000,
    env: 'TWINSTAR_DEDUPE_SIZE',
    arg: 'dedupe-size',
  },
  pendingMax: {
    doc: 'most CHP updates the passive holds on its pending list (Model Six); the oldest go first',
    format: positive,
    default: 10_000,
    env: 'TWINSTAR_PENDING_MAX',
    arg: 'pending-max',
  },
  pendingMaxAgeMs: {
    doc: 'a pending-list update the active has not replicated within this time is dropped',
    format: positive,
    default: 10_000,
    env: 'TWINSTAR_PENDING_MAX_AGE_MS',
    arg: 'pending-max-age-ms',
  },
  snapshotChunk: {
    doc: 'entries per native snapshot chunk (TSYNC) and per replication chunk to the passive',
    format: positive,
    default: 1000,
    env: 'TWINSTAR_SNAPSHOT_CHUNK',
    arg: 'snapshot-chunk',
  },
  maxKeyBytes: {
    doc: 'longest key accepted; at most 65535',
    format: packedLength,
    default: DEFAULT_LIMITS.maxKeyBytes,
    env: 'TWINSTAR_MAX_KEY_BYTES',
    arg: 'max-key-bytes',
  },
  maxValueBytes: {
    doc: 'largest value accepted',
    format: positive,
    default: DEFAULT_LIMITS.maxValueBytes,
    env: 'TWINSTAR_MAX_VALUE_BYTES',
    arg: 'max-value-bytes',
  },
  maxPropertiesBytes: {
    doc: 'largest properties frame accepted; at most 65535',
    format: packedLength,
    default: DEFAULT_LIMITS.maxPropertiesBytes,
    env: 'TWINSTAR_MAX_PROPERTIES_BYTES',
    arg: 'max-properties-bytes',
  },
  maxProperties: {
    doc: 'most name=value properties in one message',
    format: positive,
    default: DEFAULT_LIMITS.maxProperties,
    env: 'TWINSTAR_MAX_PROPERTIES',
    arg: 'max-properties',
  },
  minTtlMs: {
    doc: 'shortest TTL a write may ask for (ttl property), in milliseconds',
    format: positive,
    default: DEFAULT_LIMITS.minTtlSeconds * 1000,
    env: 'TWINSTAR_MIN_TTL_MS',
    arg: 'min-ttl-ms',
  },
  maxTtlMs: {
    doc: 'longest TTL a write may ask for, in milliseconds (default 30 days)',
    format: positive,
    default: DEFAULT_LIMITS.maxTtlSeconds * 1000,
    env: 'TWINSTAR_MAX_TTL_MS',
    arg: 'max-ttl-ms',
  },
  maxBatchEntries: {
    doc: 'most writes in one native write request (TSET); a bigger one is refused whole (TERROR batch-too-large) and the client splits its batches to fit. One batch is applied in one step: this bounds how long it holds the event loop',
    format: positive,
    default: DEFAULT_LIMITS.maxBatchEntries,
    env: 'TWINSTAR_MAX_BATCH_ENTRIES',
    arg: 'max-batch-entries',
  },
  maxBatchBytes: {
    doc: 'largest packed batch in one native write request (TSET), refused like max-batch-entries; at least one largest write (max-key-bytes + max-value-bytes + max-properties-bytes + 280)',
    format: positive,
    default: DEFAULT_LIMITS.maxBatchBytes,
    env: 'TWINSTAR_MAX_BATCH_BYTES',
    arg: 'max-batch-bytes',
  },
  snapshotsPerSecond: {
    doc: 'snapshot and resume requests one client may make per second (bursts of as many)',
    format: positive,
    default: DEFAULT_QUOTAS.snapshotsPerSecond,
    env: 'TWINSTAR_SNAPSHOTS_PER_SECOND',
    arg: 'snapshots-per-second',
  },
  clientQueue: {
    doc: 'messages queued towards one client on the snapshot socket (high-water mark)',
    format: positive,
    default: DEFAULT_QUOTAS.clientQueue,
    env: 'TWINSTAR_CLIENT_QUEUE',
    arg: 'client-queue',
  },
  publisherQueue: {
    doc: 'messages queued towards one subscriber of the publisher (high-water mark)',
    format: positive,
    default: DEFAULT_QUOTAS.publisherQueue,
    env: 'TWINSTAR_PUBLISHER_QUEUE',
    arg: 'publisher-queue',
  },
  publisherQueueBytes: {
    doc: 'bytes queued towards one subscriber of the update stream (P+3, native clients) past its socket buffer; a subscriber past them, or past publisher-queue messages, is disconnected as slow and resumes on reconnecting (twinstar_slow_subscribers_total)',
    format: positive,
    default: DEFAULT_QUOTAS.publisherQueueBytes,
    env: 'TWINSTAR_PUBLISHER_QUEUE_BYTES',
    arg: 'publisher-queue-bytes',
  },
  collectorQueue: {
    doc: 'CHP writes queued on the collector (high-water mark)',
    format: positive,
    default: DEFAULT_QUOTAS.collectorQueue,
    env: 'TWINSTAR_COLLECTOR_QUEUE',
    arg: 'collector-queue',
  },
  // Memory bounds against oversized requests and state (issue 13 B4): one block, kept together.
  maxSubtreeBytes: {
    doc: 'longest subtree (ICANHAZ?, TSNAP, TRESUME) or follow prefix (TFOLLOW) accepted; longer requests are dropped and counted (native ones get TERROR subtree-too-long)',
    format: positive,
    default: DEFAULT_QUOTAS.maxSubtreeBytes,
    env: 'TWINSTAR_MAX_SUBTREE_BYTES',
    arg: 'max-subtree-bytes',
  },
  maxFollowPrefixes: {
    doc: 'most prefixes in one follow request (TFOLLOW); more are dropped and counted (TERROR too-many-prefixes)',
    format: positive,
    default: DEFAULT_QUOTAS.maxFollowPrefixes,
    env: 'TWINSTAR_MAX_FOLLOW_PREFIXES',
    arg: 'max-follow-prefixes',
  },
  // Snapshot streams in progress (issue 13 B3): what bounds the memory snapshots take.
  maxSnapshotStreams: {
    doc: 'snapshot and resume streams in progress on the server (each holds a point-in-time view of its entries, an array of references in memory or a read transaction on a durable node, plus up to client-queue messages in its pipe); beyond it a request is refused: TERROR busy to a native client, which backs off and asks again, silence to ICANHAZ?; counted in twinstar_snapshot_refused_total{reason="server-busy"}',
    format: positive,
    default: DEFAULT_QUOTAS.maxSnapshotStreams,
    env: 'TWINSTAR_MAX_SNAPSHOT_STREAMS',
    arg: 'max-snapshot-streams',
  },
  maxSnapshotStreamsPerClient: {
    doc: 'snapshot and resume streams in progress towards one client connection; a request beyond it stops that client\'s oldest stream (twinstar_snapshot_refused_total{reason="superseded"})',
    format: positive,
    default: DEFAULT_QUOTAS.maxSnapshotStreamsPerClient,
    env: 'TWINSTAR_MAX_SNAPSHOT_STREAMS_PER_CLIENT',
    arg: 'max-snapshot-streams-per-client',
  },
  snapshotIdleMs: {
    doc: 'a snapshot stream whose client takes no message for this long is stopped (a client that is gone stops its streams at once)',
    format: positive,
    default: DEFAULT_QUOTAS.snapshotIdleMs,
    env: 'TWINSTAR_SNAPSHOT_IDLE_MS',
    arg: 'snapshot-idle-ms',
  },
  maxSnapshotBytes: {
    doc: 'bytes all snapshot streams together may hold buffered, worst case: a stream counts min(its bytes, client-queue x its largest message); a stream that does not fit is refused (TERROR busy, or silence to ICANHAZ?) unless no other stream holds bytes; counted in twinstar_snapshot_refused_total{reason="bytes-busy"}',
    format: positive,
    default: DEFAULT_QUOTAS.maxSnapshotBytes,
    env: 'TWINSTAR_MAX_SNAPSHOT_BYTES',
    arg: 'max-snapshot-bytes',
  },
  maxSnapshotBytesPerClient: {
    doc: 'bytes one snapshot stream may hold buffered, worst case: a native stream whose full-size chunks would not fit it is cut into chunks of max-snapshot-bytes-per-client / client-queue bytes (at least 4 KiB) so a full pipe does; a larger stream (CHP with large values) only runs while no other stream holds bytes',
    format: positive,
    default: DEFAULT_QUOTAS.maxSnapshotBytesPerClient,
    env: 'TWINSTAR_MAX_SNAPSHOT_BYTES_PER_CLIENT',
    arg: 'max-snapshot-bytes-per-client',
  },
  replayLogBytes: {
    doc: 'bytes the replay log may hold (besides replay-log-size entries); the oldest changes go first, and a resume from before them gets a snapshot',
    format: positive,
    default: 64 * 1024 * 1024,
    env: 'TWINSTAR_REPLAY_LOG_BYTES',
    arg: 'replay-log-bytes',
  },
  pendingMaxBytes: {
    doc: 'bytes of CHP updates the passive holds on its pending list (besides pending-max updates); the oldest go first, counted in twinstar_pending_dropped_total',
    format: positive,
    default: 64 * 1024 * 1024,
    env: 'TWINSTAR_PENDING_MAX_BYTES',
    arg: 'pending-max-bytes',
  },
  // End of the B4 memory bounds block.
  ...securitySchema,
  ...eventSchema,
};

/** Flag name, environment variable, default and doc of every setting, for --help and docs. */
export function describeSettings(): { flag: string; env: string; default: unknown; doc: string }[] {
  return Object.entries(schema).map(([, s]) => ({
    flag: `--${s.arg}`,
    env: s.env,
    default: s.default,
    doc: s.doc,
  }));
}
