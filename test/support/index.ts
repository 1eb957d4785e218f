/**
 * What the integration tests and the benchmarks share: bounded waits, free ports, real server
 * processes and reading a node over HTTP. test/helpers adds what only tests need.
 */
export { waitFor, within } from './wait.js';
export { freePorts, osPort, portIsFree, pairPorts, holdRange, type PairPorts } from './ports.js';
export {
  BIN,
  ServerProcess,
  startSingle,
  pairOptions,
  track,
  killAll,
  liveChildren,
  type ServerProcessOptions,
  type NodeStatus,
} from './server-process.js';
export { metric, digest } from './http.js';
