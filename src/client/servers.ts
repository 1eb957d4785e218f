/**
 * Server addresses, as a small pure piece the client composes (votes are in votes.ts). A server is
 * named by its snapshot endpoint `tcp://HOST:P`; its publisher is P+1 and its collector P+2
 * (RFC 12's layout, DESIGN.md's port table), and its native update stream P+3 (wire/updates.ts).
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { RELAY_ID_BYTES, RELAY_ID_MARK, type SocketFrameLimits } from '../wire/index.js';
import type { KeyPair } from '../security/index.js';
import { splitEndpoint } from '../zmq/index.js';

export interface ServerAddress {
  readonly snapshot: string;
  readonly publisher: string;
  readonly collector: string;
  /** the native update stream (none for a P above 65532: the client then follows the publisher) */
  readonly updates?: string;
  /** with CURVE: this client's keys and the server's public key (docs/security.md) */
  readonly curve?: { readonly own: KeyPair; readonly serverPublicKey: string };
  /** frame size limits of this client's sockets, from its `limits` (wire/sizes.ts) */
  readonly frames?: {
    readonly dealer: number;
    readonly sub: number;
    readonly pub: number;
    /** the update stream's batches (as big as a snapshot chunk) */
    readonly updates: number;
  };
  /** without CURVE: the DEALER's routing id, the client's own on every server (relayId()) */
  readonly routingId?: string;
}

/** The frame size limits of a client's sockets, from those its limits give (wire/sizes.ts). */
export function clientFrames(sizes: SocketFrameLimits): NonNullable<ServerAddress['frames']> {
  return {
    dealer: sizes.clientDealer,
    sub: sizes.clientSub,
    pub: sizes.subscriptionsOnly,
    updates: sizes.clientDealer,
  };
}

/**
 * A client's routing id for its DEALERs without CURVE, the same on both servers, so that the
 * passive can send it the acknowledgements an active relays (wire isRelayId): the mark, then 15
 * random URL-safe characters (90 bits; ASCII, so that the bytes on the wire are these).
 */
export function relayId(): string {
  return (
    String.fromCharCode(RELAY_ID_MARK) +
    randomBytes(12)
      .toString('base64url')
      .slice(0, RELAY_ID_BYTES - 1)
  );
}

export function parseServer(endpoint: string): ServerAddress {
  const split = splitEndpoint(endpoint.trim());
  const port = split ? split.port : NaN;
  if (!split || !(port > 0 && port <= 65533)) {
    throw new InvalidArgumentError(`server endpoint ${JSON.stringify(endpoint)} is not tcp://HOST:PORT`);
  }
  const { host } = split;
  return {
    snapshot: `tcp://${host}:${port}`,
    publisher: `tcp://${host}:${port + 1}`,
    collector: `tcp://${host}:${port + 2}`,
    ...(port + 3 <= 65535 ? { updates: `tcp://${host}:${port + 3}` } : {}),
  };
}
