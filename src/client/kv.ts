/**
 * The client's KV-parity parts (issue 17) as the agent sees them: revisions and TTLs of the
 * replica's entries (revisions.ts), leases (leases.ts) and watches from a sequence (history.ts),
 * behind the hooks the agent calls at its own moments (ready on a server, the server lost, its
 * timer, close) and the replies inbound.ts hands over (TLEASEOK, TERROR, TSYNC and TSYNCEND of a
 * replay). Keeps agent.ts a thin delegation, as bus.ts does for the event bus.
 */
import type { ErrorReply, NativeReply } from '../wire/index.js';
import type { Phase } from './session.js';
import type { Link } from './link.js';
import { Histories } from './history.js';
import { Leases } from './leases.js';
import type { ResolvedOptions } from './options.js';
import { Revisions } from './revisions.js';

/** What the KV parts read of the agent. */
export interface KvAgent {
  readonly options: ResolvedOptions;
  readonly links: readonly Link[];
  readonly phase: Phase;
  readonly modeNow: string;
  readonly current: number;
  now(): number;
}

export class KvParity {
  readonly revisions = new Revisions();
  readonly leases: Leases;
  readonly histories: Histories;

  constructor(
    private readonly agent: KvAgent,
    reqId: () => number,
    later: (step: () => void) => void,
  ) {
    const common = {
      now: () => agent.now(),
      reqId,
      target: () => this.target(),
      mode: () => agent.modeNow,
    };
    const { requestTimeoutMs, writeTimeoutMs } = agent.options;
    this.leases = new Leases({ ...common, requestTimeoutMs, writeTimeoutMs, later });
    this.histories = new Histories({
      ...common,
      ttlRemainingMs: (entry) => this.revisions.ttlRemainingMs(entry, agent.now()),
    });
  }

  /** Requests go to the active only once the client is ready on it. */
  private target(): Link | undefined {
    const { phase, current } = this.agent;
    return phase === 'ready' && current >= 0 ? this.agent.links[current] : undefined;
  }

  /** Ready on a server; `again`: a new active (or a resync), where leases are kept alive at once. */
  onReady(again: boolean): void {
    this.leases.onReady(again);
    this.histories.onReady();
  }

  lost(): void {
    this.leases.lost();
    this.histories.lost();
  }

  tick(now: number, frozen: boolean): void {
    this.leases.tick(now, frozen);
    this.histories.tick(now, this.agent.options.requestTimeoutMs);
  }

  close(): void {
    this.leases.close();
  }

  /** Whether `reqId` is a lease request or a replay (a TNOTACTIVE to it: look for the active). */
  waiting(reqId: number): boolean {
    return this.leases.waiting(reqId) || this.histories.waiting(reqId);
  }

  onLeaseOk(reply: Extract<NativeReply, { command: 'TLEASEOK' }>): void {
    this.leases.onOk(reply);
  }

  onError(reply: ErrorReply): boolean {
    return this.leases.onError(reply) || this.histories.onError(reply);
  }

  /** A TSYNC or TSYNCEND: true if it answers a replay (from the server in use). */
  onSync(server: number, reply: Extract<NativeReply, { command: 'TSYNC' | 'TSYNCEND' }>): boolean {
    if (server !== this.agent.current) return false;
    if (reply.command === 'TSYNC') return this.histories.onSync(reply.reqId, reply.batch, undefined);
    return this.histories.onSync(reply.reqId, undefined, reply.sequence);
  }
}
