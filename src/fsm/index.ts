/** The Binary Star finite-state machine: pure, table-driven, no I/O. */
export * from './binary-star.js';
