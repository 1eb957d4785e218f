/**
 * The events a client emits, the queue that delivers them on the next tick, and an async iterator
 * over one of them that ends when the client closes.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from '../log/index.js';
import type { DropInfo } from './drops.js';
import type { Status } from './session.js';
import { WatchStream } from './watch.js';

/** One change as the application sees it. */
export interface Update {
  readonly key: string;
  /** undefined when deleted */
  readonly value: Buffer | undefined;
  readonly seq: number;
  readonly deleted: boolean;
  /** true when this change comes from a full resync rather than the live stream */
  readonly resync: boolean;
  /** milliseconds until the key expires, when it has a TTL (undefined: none, or a delete) */
  readonly ttlRemainingMs?: number | undefined;
}

export interface FailoverInfo {
  readonly from: string | undefined;
  readonly to: string;
  readonly sequence: number;
}

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

/**
 * Everything the client tells its application (events, and the settling of its promises) goes
 * through one first-in first-out queue, run on the next tick: a listener never runs inside a
 * caller's call or half-way through a state change, so it cannot re-enter one (STYLE habit 7), and
 * the order stays what the client decided (an update before the write it acknowledges resolves).
 * A step that throws (a listener's bug) is logged and does not stop the steps after it.
 */
export class LaterQueue {
  private steps: (() => void)[] = [];
  private scheduled = false;

  constructor(private readonly log: Logger) {}

  /** Runs `step` on the next tick, after every step queued before it. */
  later(step: () => void): void {
    this.steps.push(step);
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => this.run());
  }

  private run(): void {
    // Steps queued while running (a listener that writes) run in this same pass, after these.
    for (let i = 0; i < this.steps.length; i++) {
      try {
        this.steps[i]!();
      } catch (error) {
        this.log.error({ err: error }, 'a client event listener threw');
      }
    }
    this.steps = [];
    this.scheduled = false;
  }
}
