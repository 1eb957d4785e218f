/**
 * A socket's events (zeromq.js's observer), read by one receive loop with a time budget, and
 * handed to the handlers registered for their type. zeromq.js's own `events.on` reads them in one
 * unbroken chain of promises: when a listening socket cannot accept (EMFILE, out of descriptors),
 * libzmq tries again at once, as long as connections wait in the backlog, and posts an
 * `accept:error` each time; 150 TCP connections to the publisher of a node limited to 80
 * descriptors held its event loop for 4.1 s (promise 7). Closing the observer instead is worse:
 * zeromq.js leaves libzmq's monitor running, whose next event then blocks the I/O thread for good.
 */
import type * as zmq from 'zeromq';
import { receiveLoop } from './receive-loop.js';
import { observerOf } from './interrupted.js';

/** errors of accept() that libzmq retries at once while connections wait: a flood of events */
const FLOODING = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** a flood is told once, and again only after this long without a failed accept */
export const QUIET_MS = 5000;

type Handler = (event: zmq.Event) => void;

const watches = new WeakMap<zmq.Socket, SocketWatch>();

export class SocketWatch {
  /** told at the start of each flood of failed accepts (`error.code` EMFILE: out of descriptors) */
  onAcceptFailed: (error: Error & { code?: string }) => void = () => undefined;
  private readonly handlers = new Map<zmq.EventType, Handler[]>();
  private lastFailure = -Infinity;

  /** The socket's watch, made at the first call (with its observer). */
  static of(socket: zmq.Socket): SocketWatch {
    let watch = watches.get(socket);
    if (watch === undefined) {
      watch = new SocketWatch(observerOf(socket));
      watches.set(socket, watch);
    }
    return watch;
  }

  private constructor(observer: zmq.Observer) {
    void receiveLoop(observer, (event) => this.dispatch(event));
  }

  on<E extends zmq.EventType>(type: E, handler: (event: zmq.EventOfType<E>) => void): void {
    const list = this.handlers.get(type) ?? [];
    list.push(handler as Handler);
    this.handlers.set(type, list);
  }

  private dispatch(event: zmq.Event): void {
    if (event.type === 'accept:error' && FLOODING.has(event.error.code ?? '')) {
      const now = performance.now();
      if (now - this.lastFailure > QUIET_MS) this.onAcceptFailed(event.error);
      this.lastFailure = now;
    }
    for (const handler of this.handlers.get(event.type) ?? []) handler(event);
  }
}
