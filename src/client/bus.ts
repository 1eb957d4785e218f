/**
 * The client's event bus (issue 16) as the agent sees it: publishing (publishing.ts) and
 * subscriptions (subscriptions.ts) behind a few hooks the agent calls at its own moments (ready on
 * a server, the server lost, its timer, close), and the replies inbound.ts hands over (TACK and
 * TERROR of a publish, TEOK, TEVT, TNOTACTIVE). Keeps agent.ts a thin delegation.
 */
import type { ErrorReply, Limits, PackedEntry } from '../wire/index.js';
import { ClosedError } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { DropSource } from './drops.js';
import { ReplyError } from './drops.js';
import type { Finder } from './finder.js';
import type { Mode, ResolvedOptions } from './options.js';
import { Publishes } from './publishing.js';
import type { Phase } from './session.js';
import { Subscriptions } from './subscriptions.js';
import type { Link } from './link.js';

/** What the bus reads of the agent. */
export interface BusAgent {
  readonly options: ResolvedOptions;
  readonly limits: Limits;
  readonly log: Logger;
  readonly links: readonly Link[];
  readonly phase: Phase;
  readonly modeNow: Mode;
  readonly current: number;
  readonly finder: Finder;
  now(): number;
  dropped(server: number, source: DropSource, error: unknown, broken?: boolean): void;
}

export class EventBus {
  readonly publishes: Publishes;
  readonly subscriptions: Subscriptions;

  constructor(
    private readonly agent: BusAgent,
    reqId: () => number,
    later: (step: () => void) => void,
  ) {
    const { options } = agent;
    const common = {
      limits: agent.limits,
      writeTimeoutMs: options.writeTimeoutMs,
      requestTimeoutMs: options.requestTimeoutMs,
      now: () => agent.now(),
      mode: () => agent.modeNow,
      reqId,
      later,
    };
    this.publishes = new Publishes({
      ...common,
      maxPendingWrites: options.maxPendingWrites,
      closed: () => agent.phase === 'closed',
      target: () => this.target(),
    });
    this.subscriptions = new Subscriptions({
      ...common,
      closed: () => agent.phase === 'closed',
      log: agent.log,
      target: () => this.target(),
      heartbeatMs: () => agent.finder.discovery.heartbeatMs(agent.current),
    });
  }

  /** Requests go to the active only once the client is ready on it. */
  private target(): Link | undefined {
    const { phase, current } = this.agent;
    return phase === 'ready' && current >= 0 ? this.agent.links[current] : undefined;
  }

  /** Ready on a server: `again` (a new active, or a resync) subscribes everything anew. */
  onReady(again: boolean): void {
    this.publishes.flush();
    this.subscriptions.onReady(again);
  }

  /**
   * A new connection to the server in use (its DEALER reconnected): the server knows it by a new
   * identity, so the subscriptions go again, and what the old connection carried unanswered.
   */
  reconnected(): void {
    this.lost();
    if (this.target() !== undefined) this.onReady(false);
  }

  /** The server in use is lost: unanswered publishes, subscriptions and acks go to the next one. */
  lost(): void {
    this.publishes.requeueAll();
    this.subscriptions.lost();
  }

  /** The agent's timer; `frozen`: the client slept through a gap that must not count. */
  tick(now: number, frozen: boolean): void {
    if (frozen) this.publishes.thaw(now);
    this.publishes.expire(now);
    if (this.target() !== undefined) this.publishes.retryUnanswered(now);
    this.subscriptions.tick(now);
  }

  close(): void {
    this.publishes.failAll(new ClosedError());
    this.subscriptions.close();
  }

  /** Whether `reqId` is one of the bus's requests (a TNOTACTIVE to it: look for the active). */
  waiting(reqId: number): boolean {
    return this.publishes.waiting(reqId) || this.subscriptions.waiting(reqId);
  }

  /** A TACK that is not a key write's: true when it answered a publish. */
  onAck(reqId: number, sequences: readonly number[]): boolean {
    return this.publishes.onAck(reqId, sequences);
  }

  onError(reply: ErrorReply): boolean {
    return this.publishes.onError(reply) || this.subscriptions.onError(reply);
  }

  onOk(reqId: number, info: Readonly<Record<string, string>>): void {
    this.subscriptions.onOk(reqId, info);
  }

  /** A TEVT: from the server in use, for an open subscription, or dropped and counted. */
  onEvents(server: number, subId: number, events: readonly PackedEntry[], counts: readonly number[]): void {
    if (server !== this.agent.current) {
      const error = new ReplyError('unknown-subscription', `TEVT from a server not in use`);
      this.subscriptions.missed(subId);
      return this.agent.dropped(server, 'reply', error, false);
    }
    try {
      this.subscriptions.onEvents(subId, events, counts);
    } catch (error) {
      if (!(error instanceof ReplyError)) throw error;
      this.agent.dropped(server, 'reply', error, false);
    }
  }
}
