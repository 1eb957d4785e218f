/**
 * The events a client emits, and an async iterator over one of them that ends when the client
 * closes.
 */
import type { EventEmitter } from 'node:events';
import type { FailoverInfo, Update } from './client.js';
import type { DropInfo } from './drops.js';
import type { Status } from './session.js';
import { WatchStream } from './watch.js';

export interface ClientEvents {
  update: [update: Update];
  failover: [info: FailoverInfo];
  degraded: [degraded: boolean];
  resync: [info: { sequence: number; server: string }];
  mode: [mode: 'native' | 'chp'];
  ready: [info: { server: string; sequence: number }];
  /** every status signal, also emitted under its own name (session.ts) */
  status: [status: Status];
  disconnected: [status: Extract<Status, { type: 'disconnected' }>];
  reconnecting: [status: Extract<Status, { type: 'reconnecting' }>];
  reconnected: [status: Extract<Status, { type: 'reconnected' }>];
  unavailable: [status: Extract<Status, { type: 'unavailable' }>];
  error: [error: Error];
  /** a message from a server was malformed and dropped (counted in `stats().dropped`) */
  dropped: [info: DropInfo];
  close: [];
}

/** Counters of what the client has seen go wrong. */
export interface ClientStats {
  /** messages from servers dropped as malformed, by reason (e.g. 'batch-truncated', 'ack-size') */
  readonly dropped: Record<string, number>;
}

/** Every `name` event of `emitter` until it emits 'close'. */
export function eventStream<T>(emitter: EventEmitter<ClientEvents>, name: 'status'): WatchStream<T> {
  const stream = new WatchStream<T>(() => {
    emitter.off(name, push);
    emitter.off('close', end);
  });
  const push = (item: unknown) => stream.push(item as T);
  const end = () => stream.end();
  emitter.on(name, push);
  emitter.on('close', end);
  return stream;
}
