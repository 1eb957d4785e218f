/**
 * How the client's sockets hand what they receive to its handlers, and why nothing a handler does
 * can stop a socket from receiving.
 */
import { receiveLoop } from '../zmq/index.js';

/**
 * The handlers (the client's) drop and count whatever they cannot use and never throw; this is the
 * last line: an exception out of a handler would end the receive loop (the socket would go deaf)
 * and reject a promise nobody awaits, which ends the application's process.
 */
export function guarded(handle: (frames: Buffer[]) => void): (frames: Buffer[]) => void {
  return (frames) => {
    try {
      handle(frames);
    } catch (error) {
      process.emitWarning(`twinstar client: a socket handler threw: ${String(error)}`);
    }
  };
}

/**
 * Runs a socket's receive loop with a guarded handler. The loop ends with an error when its socket
 * is closed under it (ENOTSOCK on a SUB closed while its backlog drains: this crashed a client
 * process that closed during a burst); that is expected then, and never left as an unhandled
 * rejection, which would end the application's process.
 */
export function listen(
  socket: AsyncIterable<Buffer[]>,
  wanted: () => boolean,
  handle: (frames: Buffer[]) => void,
): void {
  receiveLoop(socket, guarded(handle)).catch((error: unknown) => {
    if (wanted()) process.emitWarning(`twinstar client: a socket stopped receiving: ${String(error)}`);
  });
}
