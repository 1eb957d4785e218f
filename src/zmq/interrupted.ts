/**
 * A signal that arrives while libzmq waits on its command pipe makes the call fail with EINTR.
 * zeromq.js retries sends, receives, bind and unbind when that happens, but not `connect`,
 * `disconnect` or the making of an event observer (`socket.events`). Any process that handles
 * signals is exposed: a profiler (`node --cpu-prof` sends SIGPROF every millisecond), a parent of
 * child processes (SIGCHLD), a terminal (SIGWINCH). With SIGPROF every 20-50 µs about 1 such call
 * in 100 failed; under the default 1 ms profiler, 100 clients started at once in one process did
 * not all connect. An observer interrupted half-way is worse than a failure: libzmq's monitor
 * stays without zeromq.js's end, and from then on the context frees no socket closed on it (6,000
 * connect and close cycles under a profiler ran the process out of descriptors). Making the
 * observer again replaces that monitor: libzmq stops a socket's previous monitor before it starts
 * a new one.
 */
import type * as zmq from 'zeromq';
import { errorCode } from './outbox.js';

/** tries of one call before an EINTR is let through: a signal storm, not a mishap */
export const INTERRUPTED_TRIES = 100;

const INTERRUPTED: ReadonlySet<string> = new Set(['EINTR']);

/**
 * zeromq.js names the inproc endpoint of an observer's monitor after the observer's address in
 * memory. When a closed socket's observer has been freed and a new one takes its place before
 * libzmq's reaper has unbound the old endpoint, the bind fails with EADDRINUSE (seen with clients
 * connected and closed one after another, client-signals.test.ts). The next try is a new object
 * elsewhere.
 */
const OBSERVER_RETRIED: ReadonlySet<string> = new Set(['EINTR', 'EADDRINUSE']);

/**
 * Runs a synchronous libzmq call again while it fails with one of `codes` (by default EINTR: a
 * signal interrupted it), up to `INTERRUPTED_TRIES` times.
 */
export function retryInterrupted<T>(call: () => T, codes: ReadonlySet<string> = INTERRUPTED): T {
  for (let tries = 1; ; tries++) {
    try {
      return call();
    } catch (error) {
      if (!codes.has(errorCode(error) ?? '') || tries >= INTERRUPTED_TRIES) throw error;
    }
  }
}

/** The socket's event observer (`socket.events`), made again after an EINTR or EADDRINUSE. */
export function observerOf(socket: zmq.Socket): zmq.Observer {
  return retryInterrupted(() => socket.events, OBSERVER_RETRIED);
}
