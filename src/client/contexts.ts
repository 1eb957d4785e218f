/**
 * ZeroMQ contexts shared by every client of the process, one per server host. A context is one
 * libzmq I/O thread: a context per client meant 100 watchers in one process ran 100 I/O threads,
 * each woken for every update (issue 18: about a third of the watchers' CPU on 2 cores). Sharing
 * one per host keeps what a context per server was for: libzmq resolves a host name again at every
 * reconnect, inside the I/O thread, and a dead server's name can take seconds to fail; that stalls
 * only the sockets to the same host name, never those to the other server of the pair (unless both
 * have the same name, when they stand or fall together anyway).
 *
 * Kept for the life of the process, even with no client left. zeromq.js has no way to end a
 * context: one that is dropped is shut down when collected but terminated only at process exit, so
 * it kept its two threads and five descriptors. Dropping a host's context with its last client
 * leaked them at every connect and close: 50 in a row left 250 descriptors and 51 threads behind,
 * and a service that made a client per job ran out of descriptors.
 */
import { splitEndpoint } from '../zmq/index.js';

export class ContextPool<C> {
  private readonly made = new Map<string, C>();

  constructor(private readonly create: () => C) {}

  /** The context for `host`, made on first use (throws if it cannot be made) and kept. */
  get(host: string): C {
    let context = this.made.get(host);
    if (context === undefined) {
      context = this.create();
      this.made.set(host, context);
    }
    return context;
  }

  /** hosts with a context */
  get size(): number {
    return this.made.size;
  }
}

/** The host of a `tcp://HOST:PORT` endpoint (the endpoint itself if it has no such form). */
export function hostOf(endpoint: string): string {
  return splitEndpoint(endpoint)?.host ?? endpoint;
}
