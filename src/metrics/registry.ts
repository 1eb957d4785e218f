/**
 * The node's prom-client registry: gauges read from the node at each scrape, counters fed by the
 * node's and the clone server's typed events, and the event bus's metrics (bus.ts). A registry of
 * its own per node, so two nodes in one process, as in tests, never share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { STATES } from '../fsm/index.js';
import type { Node } from '../pair/index.js';
import type { AccessFile, Guard } from '../security/index.js';
import { registerBusMetrics } from './bus.js';

/** A secure node's guard and allow-list file, whose refusals and reloads are counted too. */
export interface SecurityEvents {
  guard: Guard;
  allowList: AccessFile;
}

export function createMetrics(node: Node, security?: SecurityEvents): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'twinstar_' });
  const r = [registry];

  new Gauge({
    name: 'twinstar_state',
    help: 'Binary Star state of this node: 1 for the current state, 0 for the others',
    labelNames: ['state'],
    registers: r,
    collect() {
      for (const state of STATES) this.set({ state }, node.state === state ? 1 : 0);
    },
  });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: r,
      collect() {
        this.set(read());
      },
    });
  gauge(
    'twinstar_epoch',
    'Epoch of the latest promotion this node knows (higher wins a dual active)',
    () => node.status().epoch,
  );
  gauge('twinstar_sequence', 'Current sequence number of the key-value state', () => node.store.sequence);
  gauge('twinstar_keys', 'Keys in the map', () => node.store.keyCount);
  gauge('twinstar_peer_up', '1 while the peer has been heard within the failover timeout', () =>
    node.peerUp() ? 1 : 0,
  );
  gauge('twinstar_peer_last_heard_seconds', 'Seconds since the peer was last heard (-1 if never)', () => {
    const ms = node.peerSilenceMs();
    return Number.isFinite(ms) ? ms / 1000 : -1;
  });
  gauge(
    'twinstar_degraded',
    '1 while active without an attached passive: writes are acknowledged by this node alone',
    () => (node.isDegraded() ? 1 : 0),
  );
  gauge(
    'twinstar_replication_lag',
    'Sequences committed on the active and not yet acknowledged by the passive',
    () => node.status().replicationLag,
  );
  gauge(
    'twinstar_pending_updates',
    'CHP updates held on the passive pending list (Model Six)',
    () => node.pendingSize,
  );
  gauge(
    'twinstar_connected_clients',
    'Subscribers connected to the publisher socket (each may hold up to publisher-queue messages: docs/configuration.md)',
    () => node.server.clientSockets.connectedClients,
  );
  gauge(
    'twinstar_request_lane_connections',
    'Client connections sending their requests over the request lane (P+3) rather than the snapshot socket',
    () => node.server.clientSockets.laneConnections,
  );
  gauge(
    'twinstar_subscriber_queue_bound_bytes',
    'Most memory the publisher queues may take for the subscribers connected now (subscribers x publisher-queue x 320 B)',
    () => node.server.clientSockets.subscriberQueueBoundBytes,
  );
  gauge(
    'twinstar_pending_bytes',
    'Bytes of CHP updates held on the passive pending list (bounded by pending-max-bytes)',
    () => node.pendingList.bytes,
  );
  gauge('twinstar_replay_log_entries', 'Changes held in the replay log', () => node.store.replayLog.size);
  gauge(
    'twinstar_replay_log_bytes',
    'Bytes held in the replay log (bounded by replay-log-bytes)',
    () => node.store.replayLog.bytes,
  );
  // Counts kept by the pending list and the replay log, exported as counters.
  const counted = (name: string, help: string, labelNames: string[], read: () => Record<string, number>) => {
    const seen = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames,
      registers: r,
      collect() {
        for (const [label, value] of Object.entries(read())) {
          const grew = value - (seen.get(label) ?? 0);
          if (grew > 0 && labelNames.length > 0) this.inc({ [labelNames[0]!]: label }, grew);
          else if (grew > 0) this.inc(grew);
          seen.set(label, value);
        }
      },
    });
  };
  counted(
    'twinstar_pending_dropped_total',
    'CHP updates dropped from the passive pending list, by reason (count: pending-max, bytes: pending-max-bytes, age: pending-max-age-ms)',
    ['reason'],
    () => node.pendingList.droppedBy,
  );
  counted(
    'twinstar_slow_subscribers_total',
    'Update-stream subscribers disconnected because their queue was full (publisher-queue messages past the socket buffer); each resumes on reconnecting',
    [],
    () => ({ all: node.server.clientSockets.slowSubscribers }),
  );
  counted(
    'twinstar_replay_log_evicted_total',
    'Changes evicted from the replay log to stay within replay-log-bytes (a resume from before them gets a snapshot)',
    [],
    () => ({ all: node.store.replayLog.evictedForBytes }),
  );
  gauge('twinstar_peer_refused', '1 while the peer is refused because settings differ', () =>
    node.status().peerRefused ? 1 : 0,
  );
  gauge(
    'twinstar_history_complete',
    '1 while this node holds a complete copy of the pair history (it may take over; no data, no vote)',
    () => (node.hasHistory() ? 1 : 0),
  );
  gauge(
    'twinstar_fenced',
    '1 while this active met another active and sequences nothing until one has demoted',
    () => (node.status().fenced ? 1 : 0),
  );
  gauge(
    'twinstar_storage_failed',
    "1 once a write to this node's data dir failed (disk full, I/O error): writes are refused with ERR_STORAGE, reads still served",
    () => (node.storageFailure() ? 1 : 0),
  );
  new Gauge({
    name: 'twinstar_unavailable',
    help: '1 while the pair cannot serve from this node, by reason (no-history: no active peer, and this node lacks the history; peer-unknown: restarted from its data and waiting to hear its peer)',
    labelNames: ['reason'],
    registers: r,
    collect() {
      const { unavailable } = node.status();
      for (const reason of ['no-history', 'peer-unknown'])
        this.set({ reason }, unavailable === reason ? 1 : 0);
    },
  });

  const promotions = new Counter({
    name: 'twinstar_promotions_total',
    help: 'Times this node became active',
    labelNames: ['reason'],
    registers: r,
  });
  const transitions = new Counter({
    name: 'twinstar_state_transitions_total',
    help: 'Binary Star state transitions',
    labelNames: ['from', 'to'],
    registers: r,
  });
  // Counted in plain numbers and added when scraped: a labelled inc() hashes and checks its labels
  // on every call, which was 3% of the active's CPU under pipelined writes.
  const sequenced = new Map<string, number>();
  new Counter({
    name: 'twinstar_updates_total',
    help: 'Changes sequenced by this node, by source',
    labelNames: ['source'],
    registers: r,
    collect() {
      for (const [source, count] of sequenced) this.inc({ source }, count);
      sequenced.clear();
    },
  });
  const snapshots = new Counter({
    name: 'twinstar_snapshots_total',
    help: 'Snapshots served, by kind',
    labelNames: ['kind'],
    registers: r,
  });
  const snapshotSeconds = new Histogram({
    name: 'twinstar_snapshot_duration_seconds',
    help: 'Time to stream a snapshot to a client',
    labelNames: ['kind'],
    buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30],
    registers: r,
  });
  const rejected = new Counter({
    name: 'twinstar_rejected_votes_total',
    help: 'Client requests turned away because this node is not (and may not become) active',
    labelNames: ['command'],
    registers: r,
  });
  const dropped = new Counter({
    name: 'twinstar_dropped_messages_total',
    help: 'Messages dropped, by socket and reason (malformed, oversized, unknown, duplicate, ...)',
    labelNames: ['socket', 'reason'],
    registers: r,
  });
  const divergent = new Counter({
    name: 'twinstar_divergent_updates_total',
    help: 'Updates this node had accepted that the winner of a dual active did not have',
    registers: r,
  });
  const evictedEarly = new Counter({
    name: 'twinstar_dedupe_evicted_early_total',
    help: 'Write uuids forgotten before dedupeMs because dedupeSize was reached: a retry of one would apply twice',
    registers: r,
  });
  const stalls = new Counter({
    name: 'twinstar_event_loop_stalls_total',
    help: 'Event-loop stalls longer than half the failover timeout',
    registers: r,
  });

  node.on('state', ({ from, to }) => transitions.inc({ from, to }));
  node.on('promoted', (_epoch, reason) => promotions.inc({ reason }));
  node.on('divergent', (count) => divergent.inc(count));
  node.on('peer-dropped', (reason) => dropped.inc({ socket: 'peer', reason }));
  node.on('stall', () => stalls.inc());
  node.on('dedupe-evicted-early', () => evictedEarly.inc());
  node.server.on('change', (_entry, source) => sequenced.set(source, (sequenced.get(source) ?? 0) + 1));
  node.server.on('snapshot', (kind, _keys, ms) => {
    snapshots.inc({ kind });
    snapshotSeconds.observe({ kind }, ms / 1000);
  });
  node.server.on('rejected', (command) => rejected.inc({ command }));
  new Gauge({
    name: 'twinstar_snapshot_streams',
    help: 'Snapshot and resume streams in progress (bounded by maxSnapshotStreams)',
    registers: r,
    collect() {
      this.set(node.server.snapshotStreams);
    },
  });
  new Gauge({
    name: 'twinstar_snapshot_stream_bytes',
    help: 'Worst-case bytes the snapshot streams in progress can hold buffered (bounded by maxSnapshotBytes)',
    registers: r,
    collect() {
      this.set(node.server.snapshotStreamBytes);
    },
  });
  const streamsRefused = new Counter({
    name: 'twinstar_snapshot_refused_total',
    help: 'Snapshot requests refused at the server cap (server-busy) or the byte budget (bytes-busy), and streams stopped for a newer request of the same client (superseded)',
    labelNames: ['reason'],
    registers: r,
  });
  for (const reason of ['server-busy', 'bytes-busy', 'superseded']) streamsRefused.inc({ reason }, 0);
  node.server.on('stream-refused', (reason) => streamsRefused.inc({ reason }));
  node.server.on('dropped', (socket, reason) => dropped.inc({ socket, reason }));
  const relayed = new Counter({
    name: 'twinstar_relayed_acks_total',
    help: 'Write acknowledgements the active handed to this passive, by outcome: sent to the client, or undeliverable (the client has no connection here; the active answered it)',
    labelNames: ['outcome'],
    registers: r,
  });
  for (const outcome of ['sent', 'undeliverable']) relayed.inc({ outcome }, 0);
  node.server.on('relayed', (delivered) => relayed.inc({ outcome: delivered ? 'sent' : 'undeliverable' }));

  const authFailures = new Counter({
    name: 'twinstar_auth_failures_total',
    help: 'Connections and requests refused because their key is unknown, not the peer, or not allowed on that socket',
    labelNames: ['socket', 'reason'],
    registers: r,
  });
  const denied = new Counter({
    name: 'twinstar_access_denied_total',
    help: 'Reads filtered and writes refused because the client key lacks the right, by operation and client',
    labelNames: ['operation', 'client'],
    registers: r,
  });
  node.server.on('denied', (operation, client) => denied.inc({ operation, client }));
  if (security) {
    const reloads = new Counter({
      name: 'twinstar_allow_list_reloads_total',
      help: 'Reloads of the client allow-list, by result (ok, failed: the previous list stays in force)',
      labelNames: ['result'],
      registers: r,
    });
    gauge(
      'twinstar_allow_list_clients',
      'Client keys on the allow-list in force',
      () => security.allowList.current.size,
    );
    gauge(
      'twinstar_client_sessions',
      'Client connections on the snapshot socket that hold a session (a token bound to their key)',
      () => security.guard.liveSessions,
    );
    security.guard.on('authFailure', (socket, reason) => authFailures.inc({ socket, reason }));
    security.allowList.on('reloaded', () => reloads.inc({ result: 'ok' }));
    security.allowList.on('reloadFailed', () => reloads.inc({ result: 'failed' }));
  }
  registerBusMetrics(registry, node);
  return registry;
}
