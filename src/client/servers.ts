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

/**
 * The client's votes (TVOTE) by server: at most one outstanding per server, and after a refusal
 * the next one waits a jittered, growing back-off, so that a fleet of clients that found the active
 * silent at the same moment does not vote in lockstep, and a live node never gets a pile of votes.
 * An unanswered vote counts as lost after the vote timeout.
 */
export class VoteBook {
  private readonly outstanding = new Map<number, { reqId: number; sentAt: number }>();
  /** per server: refusals in a row, and no vote before this time */
  private readonly backoff = new Map<number, { refusals: number; notBefore: number }>();

  constructor(
    private readonly voteTimeoutMs: number,
    private readonly retry: { baseMs: number; maxMs: number; random: () => number } = {
      baseMs: 50,
      maxMs: 1000,
      random: Math.random,
    },
  ) {}

  /** Servers (by index) that may be sent a vote now. */
  due(servers: number, now: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < servers; i++) if (this.isDue(i, now)) out.push(i);
    return out;
  }

  isDue(server: number, now: number): boolean {
    const vote = this.outstanding.get(server);
    if (vote !== undefined && now - vote.sentAt <= this.voteTimeoutMs) return false;
    return now >= (this.backoff.get(server)?.notBefore ?? -Infinity);
  }

  sent(server: number, reqId: number, now: number): void {
    this.outstanding.set(server, { reqId, sentAt: now });
  }

  /** The server index a vote reqId went to, if that vote is still outstanding. */
  serverOf(reqId: number): number | undefined {
    for (const [server, vote] of this.outstanding) if (vote.reqId === reqId) return server;
    return undefined;
  }

  /** The vote was answered (accepted) or could not go out: the server may be asked again at once. */
  settle(server: number): void {
    this.outstanding.delete(server);
  }

  /**
   * The vote was refused: the next one to this server waits base * 2^(refusals-1), capped at the
   * maximum, times a random factor in [0.5, 1.5). Returns that wait.
   */
  refused(server: number, now: number): number {
    this.outstanding.delete(server);
    const refusals = (this.backoff.get(server)?.refusals ?? 0) + 1;
    const { baseMs, maxMs, random } = this.retry;
    const wait = Math.min(maxMs, baseMs * 2 ** Math.min(refusals - 1, 20)) * (0.5 + random());
    this.backoff.set(server, { refusals, notBefore: now + wait });
    return wait;
  }

  clear(): void {
    this.outstanding.clear();
    this.backoff.clear();
  }
}
