/**
 * What the client's state machine needs of its sockets to one server, as a narrow interface so the
 * machine can be unit-tested with a fake transport (test/unit/client/fake-server.ts); the real
 * one, on ZeroMQ, is transport.ts.
 */
import type { ServerAddress } from './servers.js';

export interface LinkHandlers {
  /** a reply on the snapshot socket */
  reply(frames: Buffer[]): void;
  /** a message from the publisher (KVPUB or HUGZ) */
  update(frames: Buffer[]): void;
  /**
   * the snapshot socket finished a handshake with the server: requests queue from now (before,
   * `immediate` refuses them, so the first ping of a new client is refused)
   */
  connected?(): void;
  /** the libzmq SUB made by `follow` completed a handshake with the publisher (`followReady`) */
  followed?(): void;
  /**
   * the update stream's subscriber connected again: updates published meanwhile were missed, so
   * the first batch of its own resumes, as after a new subscription (inbound.ts `confirm`)
   */
  resubscribed?(): void;
}

export interface Link {
  /** to the snapshot socket; `onFail` is told when the message could not be queued */
  request(frames: Buffer[], onFail?: () => void): void;
  /**
   * start (or restart) following the publisher with these prefix subscriptions; false if no socket
   * could be opened (EMFILE: the link warns and tries again). `native`: the
   * client resumes once the first message shows its subscription in force (inbound.ts), so the
   * lean ZMTP subscriber may take its time to connect; otherwise (plain CHP, HUGZ listening) a
   * libzmq SUB, whose I/O thread subscribes within microseconds of the connection.
   */
  follow(prefixes: string[], native?: boolean): boolean;
  /**
   * false while the libzmq SUB made by `follow` has no completed handshake with the publisher, so
   * its subscriptions may not be in force yet (RFC 12: subscribe, then ask for the snapshot)
   */
  followReady?(): boolean;
  /** stop following the publisher */
  unfollow(): void;
  /** to the collector (plain CHP KVSET); false if its socket could not be opened (EMFILE) */
  publish(frames: Buffer[]): boolean;
  /** Resolves once every KVSET published reached a collector connection, or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void>;
  close(): void;
  /**
   * After close(): resolves once the link's sockets have stopped in the background (their event
   * observers), or after `timeoutMs`. A worker thread that ends before then can abort the process.
   */
  stopped?(timeoutMs: number): Promise<void>;
}

/** Longest close() waits for a link's `stopped`: a few ms in a healthy process; a bound so that it ends. */
export const LINK_STOP_MS = 1000;

export type Transport = (server: ServerAddress, handlers: LinkHandlers) => Link;

/** One link per server; if one cannot be opened (ClientSocketError: EMFILE), those opened are closed. */
export function openLinks(count: number, open: (server: number) => Link): Link[] {
  const links: Link[] = [];
  try {
    for (let i = 0; i < count; i++) links.push(open(i));
  } catch (error) {
    for (const link of links) link.close();
    throw error;
  }
  return links;
}
