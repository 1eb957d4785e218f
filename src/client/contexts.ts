/**
 * ZeroMQ contexts shared by every client of the process, one per server host. A context is one
 * libzmq I/O thread: a context per client meant 100 watchers in one process ran 100 I/O threads,
 * each woken for every update (issue 18: about a third of the watchers' CPU on 2 cores). Sharing
 * one per host keeps what a context per server was for: libzmq resolves a host name again at every
 * reconnect, inside the I/O thread, and a dead server's name can take seconds to fail; that stalls
 * only the sockets to the same host name, never those to the other server of the pair (unless both
 * have the same name, when they stand or fall together anyway).
 *
 * Reference-counted: a context is held while a link uses it and forgotten when the last one lets go
 * (zeromq.js keeps it alive for sockets still lingering and ends it when they are gone).
 */
import { splitEndpoint } from './servers.js';

export class ContextPool<C> {
  private readonly held = new Map<string, { context: C; users: number }>();

  constructor(private readonly create: () => C) {}

  /** The context for `host`, made on first use; every acquire needs one release. */
  acquire(host: string): C {
    let entry = this.held.get(host);
    if (entry === undefined) {
      entry = { context: this.create(), users: 0 };
      this.held.set(host, entry);
    }
    entry.users++;
    return entry.context;
  }

  release(host: string): void {
    const entry = this.held.get(host);
    if (entry === undefined) return;
    if (--entry.users <= 0) this.held.delete(host);
  }

  /** hosts with a context in use */
  get size(): number {
    return this.held.size;
  }
}

/** The host of a `tcp://HOST:PORT` endpoint (the endpoint itself if it has no such form). */
export function hostOf(endpoint: string): string {
  return splitEndpoint(endpoint)?.host ?? endpoint;
}
