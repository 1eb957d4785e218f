/**
 * Server addresses and vote bookkeeping, as small pure pieces the client composes. A server is
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
  /** frame size limits of this client's sockets, from its `limits` (clone/sizes.ts) */
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

/**
 * Which servers have an unanswered vote (sync request) out. A server gets a new vote only when
 * its last one was answered "not active", could not be sent, or went unanswered past the vote
 * timeout, so a live server never receives a pile of votes, each answered with a whole snapshot.
 */
export class VoteBook {
  private readonly outstanding = new Map<number, { reqId: number; sentAt: number }>();

  constructor(private readonly voteTimeoutMs: number) {}

  /** Servers (by index) that may be sent a vote now. */
  due(servers: number, now: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < servers; i++) {
      const vote = this.outstanding.get(i);
      if (vote === undefined || now - vote.sentAt > this.voteTimeoutMs) out.push(i);
    }
    return out;
  }

  sent(server: number, reqId: number, now: number): void {
    this.outstanding.set(server, { reqId, sentAt: now });
  }

  /** The server index a vote reqId went to, if that vote is still outstanding. */
  serverOf(reqId: number): number | undefined {
    for (const [server, vote] of this.outstanding) if (vote.reqId === reqId) return server;
    return undefined;
  }

  /** The vote was answered (accepted or refused) or could not go out. */
  settle(server: number): void {
    this.outstanding.delete(server);
  }

  clear(): void {
    this.outstanding.clear();
  }
}
