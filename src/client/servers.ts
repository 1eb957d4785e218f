/**
 * Server addresses, as a small pure piece the client composes (votes are in votes.ts). A server is
 * named by its snapshot endpoint `tcp://HOST:P`; its publisher is P+1 and its collector P+2
 * (RFC 12's layout, DESIGN.md's port table).
 */
import { InvalidArgumentError } from '../errors.js';
import type { KeyPair } from '../security/index.js';

export interface ServerAddress {
  readonly snapshot: string;
  readonly publisher: string;
  readonly collector: string;
  /** with CURVE: this client's keys and the server's public key (docs/security.md) */
  readonly curve?: { readonly own: KeyPair; readonly serverPublicKey: string };
  /** frame size limits of this client's sockets, from its `limits` (wire/sizes.ts) */
  readonly frames?: { readonly dealer: number; readonly sub: number; readonly pub: number };
}

export function parseServer(endpoint: string): ServerAddress {
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/\s]+):(\d{1,5})$/.exec(endpoint.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port > 0 && port <= 65533)) {
    throw new InvalidArgumentError(`server endpoint ${JSON.stringify(endpoint)} is not tcp://HOST:PORT`);
  }
  const host = match[1];
  return {
    snapshot: `tcp://${host}:${port}`,
    publisher: `tcp://${host}:${port + 1}`,
    collector: `tcp://${host}:${port + 2}`,
  };
}
