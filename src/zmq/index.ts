/** ZeroMQ socket utilities every folder uses: a send queue that never blocks the loop, a receive loop, errno codes. */
export { Outbox, errorCode, DRAIN_BUDGET_MS, type OutboxOptions } from './outbox.js';
export { Fifo } from './fifo.js';
export { receiveLoop } from './receive-loop.js';
export { whenWritable } from './when-writable.js';
export { SocketWatch, QUIET_MS as WATCH_QUIET_MS } from './socket-watch.js';
export { CONTEXT_DESCRIPTORS, OBSERVER_DESCRIPTORS, reserveDescriptors } from './descriptors.js';
export { retryInterrupted, observerOf, INTERRUPTED_TRIES } from './interrupted.js';
export { TurnBudget } from './turn-budget.js';
export { ZmtpSub, type ZmtpSubOptions } from './zmtp-sub.js';
export {
  StreamPublisher,
  type StreamPublisherOptions,
  type LaneHandover,
  type DealerLane,
} from './stream-publisher.js';
export { splitEndpoint, tcpAddress, zmtpConnect, type TcpAddress } from './zmtp-connect.js';
export { BoundedWrites } from './bounded-write.js';
