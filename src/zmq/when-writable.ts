/**
 * Waits for a socket that just completed a handshake to accept a message. libzmq reports the
 * handshake from its I/O thread before the socket has taken the new pipe, so a socket with
 * `immediate` set still refuses a send for a moment (about 1 connect in 4 on loopback here); a
 * client that asked at once was refused and waited a whole probe interval (50-100 ms) to ask again.
 *
 * `writable()` must not be asked of a socket that may have a message coming in: zeromq.js reads
 * ZMQ_EVENTS for it, which takes libzmq's wake-up for that message, and does not look for it
 * (after a send or a receive it does). The pending receive then sleeps until the next send on the
 * socket. A client whose probe sent a request while this was still asking waited for its reply
 * until it sent another: 6 plain CHP connects in 1,500 took the whole 3 s timeout. So the caller
 * answers yes itself once one of its messages has gone out.
 *
 * `ready` is called once `writable()` says yes, or after `maxTries` waits of `waitMs` (then the
 * caller's own retry covers it); never when `cancelled()` says the socket is gone.
 */
export function whenWritable(
  writable: () => boolean,
  ready: () => void,
  cancelled: () => boolean,
  schedule: (fn: () => void, ms: number) => void = (fn, ms) => void setTimeout(fn, ms),
  maxTries = 50,
  waitMs = 1,
): void {
  const attempt = (tries: number): void => {
    if (cancelled()) return;
    if (writable() || tries >= maxTries) return ready();
    schedule(() => attempt(tries + 1), waitMs);
  };
  attempt(0);
}
