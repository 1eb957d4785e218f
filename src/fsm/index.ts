/** The Binary Star finite-state machine: pure, table-driven, no I/O. */
export * from './binary-star.js';
export { holdsNewer, newer, outranks, wins, type HistoryView } from './order.js';
export { mermaid } from './diagram.js';
