/**
 * Observability for one node: a prom-client registry of its own (so two nodes in one process,
 * as in tests, never share counters) fed by the node's and the clone server's typed events, and
 * the HTTP endpoints Prometheus and load balancers use:
 *
 *   /metrics  Prometheus text format
 *   /healthz  200 while the process and its event loop are responsive
 *   /readyz   200 only while this node is ACTIVE and serving (route clients here)
 *   /status   JSON: role, state, epoch, sequence, keys, peer, lag, pid
 *   /digest   JSON: sequence, keys and a hash of the whole map (are the two nodes in step?)
 *   /streams  JSON: each retention rule's bucket (events, bytes, first and last sequence, dropped)
 *   /groups   JSON: each consumer group's pattern, config and stats; /groups/NAME one of them
 *   POST /promote?force=1  operator override of "no data, no vote" (loopback only)
 *
 * Neither the FSM nor the clone code imports prom-client; they only emit events.
 */
export { createMetrics, type SecurityEvents } from './registry.js';
export { HTTP_MAX_CONNECTIONS, HTTP_TIMEOUT_MS, startMetricsHttp, type MetricsHttpOptions } from './http.js';
export { groupView, groupViews, streamViews, type GroupView, type StreamView } from './bus.js';
