/**
 * Opening a socket can fail: libzmq refuses a new socket with EMFILE when the process is out of
 * file descriptors (`ulimit -n`) or its context is out of sockets, and an event observer is two
 * more sockets. A failure in a timer or a socket event ended the application's process (an
 * exception nobody could catch), and a failure half-way left the socket opened so far behind.
 */
import type * as zmq from 'zeromq';
import { ClientSocketError } from '../errors.js';
import { OBSERVER_DESCRIPTORS, reserveDescriptors, observerOf } from '../zmq/index.js';

/** `make` a socket and `setUp` it (observers, connect); if the set-up fails, the socket is closed. */
export function openSocket<S extends { close(): void }>(make: () => S, setUp: (socket: S) => void): S {
  const socket = make();
  try {
    setUp(socket);
  } catch (error) {
    socket.close();
    throw error;
  }
  return socket;
}

/**
 * The socket's event observer. It is two sockets: libzmq's monitor, then zeromq.js's PAIR to it.
 * When the PAIR could not be opened, the monitor stayed, and from then on the context released no
 * socket closed on it (with `ulimit -n 154`, 100 event descriptors and 36 TCP connections were
 * still open after every client had closed, and no new client could open): zmq/descriptors.ts.
 */
function observe(socket: zmq.Socket): zmq.Observer {
  reserveDescriptors(OBSERVER_DESCRIPTORS);
  return observerOf(socket);
}

/**
 * The event observers of one link, so that closing can wait for them to stop. zeromq.js stops an
 * observer when libzmq's monitor reports its socket closed, an event from the I/O thread some
 * milliseconds after `close()`. A worker thread that ends before then aborts the whole process
 * ("terminate called after throwing an instance of 'Napi::Error'"): zeromq.js settles the
 * observer's pending read while Node tears the thread's environment down.
 */
export class Observers {
  private readonly running = new Set<Promise<void>>();

  /** The socket's observer (`observe`), watched until it stops. */
  open(socket: zmq.Socket): zmq.Observer {
    const events = observe(socket);
    const stopped = new Promise<void>((resolve) => events.on('end', () => resolve()));
    this.running.add(stopped);
    void stopped.then(() => this.running.delete(stopped));
    return events;
  }

  /** Resolves once every observer opened so far has stopped, or after `timeoutMs`. */
  stopped(timeoutMs: number): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    return Promise.race([Promise.all(this.running).then(() => undefined), late]).finally(() =>
      clearTimeout(timer),
    );
  }
}

/** The typed error for a socket that could not be opened: `what` names it ("a DEALER to ..."). */
export function socketError(what: string, error: unknown): ClientSocketError {
  const reason = error instanceof Error ? error.message : String(error);
  return new ClientSocketError(`could not open ${what}: ${reason}`, { cause: error });
}

/**
 * A warning for each streak of failures, not each retry: `failed` warns the first time after a
 * success, `opened` ends the streak.
 */
export class SocketWarnings {
  private failing = false;

  failed(what: string, error: unknown, retry: string): void {
    if (this.failing) return;
    this.failing = true;
    process.emitWarning(`twinstar client: ${socketError(what, error).message}; ${retry}`);
  }

  opened(): void {
    this.failing = false;
  }
}
