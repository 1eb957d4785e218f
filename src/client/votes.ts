/**
 * The client's vote and back-off policy, pure (no sockets; `now` is passed in, the random source is
 * injected so tests are deterministic):
 * - at most one vote (TVOTE) outstanding per server; an unanswered one counts as lost after the
 *   vote timeout;
 * - the first vote of a search goes out at once: it is the failover time, and a fleet voting in
 *   the same instant costs nothing (the passive promotes on the first and answers the rest
 *   ACTIVE); spreading it over 50 ms added ~50 ms to the median failover in the bench;
 * - after a refusal the next vote waits base * 2^(refusals-1), capped, times a random factor in
 *   [0.5, 1.5): a live node never gets a pile of votes, and the fleet stays spread out;
 * - a server that answered a sync with TERROR 'busy' is asked again after a jittered back-off.
 */

/** A source of numbers in [0, 1), like Math.random (the default). */
export type Random = () => number;

export interface VotePolicy {
  /** the first back-off after a refusal */
  readonly baseMs: number;
  /** the back-off never grows past this */
  readonly maxMs: number;
  readonly random: Random;
}

/** A random value checked into [0, 1): a broken source must not stall the vote for ever. */
function draw(random: Random): number {
  const r = random();
  return Number.isFinite(r) ? Math.min(Math.max(r, 0), 0.999_999) : 0.5;
}

export class VoteBook {
  private readonly outstanding = new Map<number, { reqId: number; sentAt: number }>();
  /** per server: refusals in a row, and no vote before this time */
  private readonly backoff = new Map<number, { refusals: number; notBefore: number }>();

  constructor(
    private readonly voteTimeoutMs: number,
    private readonly policy: VotePolicy = { baseMs: 50, maxMs: 1000, random: Math.random },
  ) {}

  /** Servers (by index) that may be sent a vote now. */
  due(servers: number, now: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < servers; i++) if (this.isDue(i, now)) out.push(i);
    return out;
  }

  /** Whether `server` may be sent a vote now: at once in a new search, later after a refusal. */
  isDue(server: number, now: number): boolean {
    const vote = this.outstanding.get(server);
    if (vote !== undefined && now - vote.sentAt <= this.voteTimeoutMs) return false;
    const wait = this.backoff.get(server);
    return wait === undefined || now >= wait.notBefore;
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
    const { baseMs, maxMs, random } = this.policy;
    const wait = Math.min(maxMs, baseMs * 2 ** Math.min(refusals - 1, 20)) * (0.5 + draw(random));
    this.backoff.set(server, { refusals, notBefore: now + wait });
    return wait;
  }

  /** A new search (or the search is over): every server starts afresh. */
  clear(): void {
    this.outstanding.clear();
    this.backoff.clear();
  }
}

/**
 * How long a client waits before asking a busy server (TERROR 'busy' on a sync) again: between
 * one and two times min(250 ms, requestTimeoutMs / 4), so a fleet's retries spread out.
 */
export function busyBackoffMs(requestTimeoutMs: number, random: Random): number {
  const base = Math.min(250, requestTimeoutMs / 4);
  return base + draw(random) * base;
}
