/**
 * The client's agent, the state machine behind the facade (client.ts), owns the links, replica,
 * search (finder.ts), sync (sync.ts), writes (writes.ts), bus (bus.ts), leases and watches (kv.ts)
 * and the one timer, on the injected clock. Phases change in `setPhase` (session.ts); what the
 * application is told goes to the facade's next-tick queue (`AgentHost`). Messages from servers:
 * inbound.ts; the procedure: docs/protocol.md.
 */
import { encodeIcanhaz, encodeRequest, HUGZ, socketFrameLimits, type Limits } from '../wire/index.js';
import { Replica, type ChangeList, type Synced } from '../kv/index.js';
import { DEFAULT_QUOTAS } from '../server/index.js';
import { ClosedError, NoActiveError, UnavailableError } from '../errors.js';
import { RateLimitedLog, type Logger } from '../log/index.js';
import { describeSeen } from './discovery.js';
import { clientFrames } from './servers.js';
import { DropCounter, isMalformed, Quarantine, reasonOf, type DropInfo, type DropSource } from './drops.js';
import type { ClientEvents } from './events.js';
import { Finder, PROBE_MS } from './finder.js';
import { guard, type InboundHost } from './inbound.js';
import type { Mode, ResolvedOptions } from './options.js';
import { ReadyWaiters } from './ready.js';
import { Session, type Phase, type PhaseContext, type Status } from './session.js';
import { SyncAssembly } from './sync.js';
import { openLinks, type Link } from './link.js';
import { Writes } from './writes.js';
import { EventBus } from './bus.js';
import { KvParity } from './kv.js';

/** The facade: it delivers what the agent tells the application, in order, on the next tick. */
export interface AgentHost {
  emit<K extends keyof ClientEvents>(name: K, ...args: ClientEvents[K]): void;
  /** runs `step` with the queued events, in order (settling promises) */
  later(step: () => void): void;
  /** Changes the replica applied, in order: told to the application on the next tick. */
  updates(changes: ChangeList, resync: boolean): void;
}

export class Agent implements InboundHost {
  readonly links: Link[];
  readonly replica: Replica;
  readonly limits: Limits;
  readonly log: Logger;
  readonly finder: Finder;
  readonly writes: Writes;
  readonly bus: EventBus;
  readonly kv: KvParity;
  readonly syncs = new SyncAssembly();
  readonly quarantine = new Quarantine();
  readonly drops = new DropCounter();
  readonly readyWaiters: ReadyWaiters;
  modeNow: Mode;
  current = -1;
  lastHeard = 0;
  subscriptionConfirmed = false;
  private readonly session = new Session();
  private readonly dropLog: RateLimitedLog;
  private readonly timer: unknown;
  private term = '';
  private lastTick: number;
  private following = false;
  private nextReqId = 1;
  private pendingFailoverFrom: string | undefined;

  constructor(
    readonly options: ResolvedOptions,
    private readonly host: AgentHost,
  ) {
    const { clock, servers, subtree } = options;
    this.limits = options.limits;
    this.log = options.log;
    this.modeNow = options.mode;
    this.readyWaiters = new ReadyWaiters(host.later);
    this.dropLog = new RateLimitedLog(this.log, 10, 10_000, () => clock.now());
    this.replica = new Replica(subtree);
    const frames = clientFrames(socketFrameLimits(this.limits, DEFAULT_QUOTAS.maxSubtreeBytes));
    this.links = openLinks(servers.length, (i) =>
      options.transport(
        { ...servers[i]!, frames },
        {
          reply: (frames) => guard(this, i, 'reply', frames),
          update: (frames) => guard(this, i, 'published', frames),
          connected: () => {
            // Ask now, not a probe interval later (the first ping was refused before this); a new
            // connection to the server in use has a new identity, to subscribe the bus again with.
            if (this.phase === 'finding' && this.finder.discovery.reachable(i)) this.probe();
            else if (i === this.current) this.bus.reconnected();
          },
          followed: () => this.phase === 'finding' && this.finder.followed(i) && this.probe(),
          resubscribed: () => void (i === this.current && (this.subscriptionConfirmed = false)),
        },
      ),
    );
    this.finder = new Finder(
      {
        links: this.links,
        subtree,
        log: this.log,
        now: () => clock.now(),
        mode: () => this.modeNow,
        reqId: () => this.nextReqId++,
        unavailable: (error) => this.unavailable(error),
        usable: (server, now) => !this.quarantine.has(server, now),
        random: options.random,
      },
      servers.map((s) => s.snapshot),
      options.serverTimeoutMs,
    );
    this.writes = new Writes({
      ...options,
      links: this.links,
      now: () => clock.now(),
      mode: () => this.modeNow,
      closed: () => this.phase === 'closed',
      target: () =>
        this.phase === 'finding' || this.phase === 'closed' || this.current < 0
          ? undefined
          : this.links[this.current],
      reqId: () => this.nextReqId++,
      applied: () => this.replica.sequence,
      degraded: (degraded) => host.emit('degraded', degraded),
      stalled: () => this.resyncCurrent(),
      later: host.later,
    });
    this.bus = new EventBus(this, () => this.nextReqId++, host.later);
    this.kv = new KvParity(this, () => this.nextReqId++, host.later);
    this.lastTick = clock.now();
    this.timer = clock.setInterval(() => this.tick(), Math.min(PROBE_MS, options.serverTimeoutMs / 5));
    this.findActive(undefined);
  }

  now(): number {
    return this.options.clock.now();
  }

  get phase(): Phase {
    return this.session.phase;
  }

  /** The snapshot endpoint of the server in use, if any. */
  get server(): string | undefined {
    return this.current >= 0 ? this.options.servers[this.current]!.snapshot : undefined;
  }

  /** The term of the history the replica was last synced from ('' before a native sync). */
  get syncedTerm(): string {
    return this.term;
  }

  /** Resolves once the replica has been loaded from the active server (on the injected clock). */
  ready(timeoutMs: number): Promise<void> {
    if (this.phase === 'closed') return Promise.reject(new ClosedError());
    if (this.replica.sequence >= 0 && this.phase === 'ready') return Promise.resolve();
    return this.readyWaiters.wait(this.now(), timeoutMs);
  }

  /** Closing: no more timer; pending writes and ready() reject with ClosedError. */
  close(): void {
    this.setPhase('closed', {});
    this.options.clock.clearInterval(this.timer);
    const error = new ClosedError();
    this.writes.failAll(error);
    this.bus.close();
    this.kv.close();
    this.readyWaiters.rejectAll(error);
  }

  /** The phase funnel, the one way the phase changes; status signals reach listeners on the next tick. */
  setPhase(next: Phase, context: Omit<PhaseContext, 'now'>): void {
    const from = this.phase;
    const signals = this.session.setPhase(next, { now: this.now(), ...context });
    if (signals === undefined) {
      this.log.error({ from, to: next }, 'refused an impossible phase change');
      return;
    }
    this.log.debug({ from, to: next, server: context.server, reason: context.reason }, 'client phase');
    for (const status of signals) this.signal(status);
  }

  private signal(status: Status): void {
    this.host.later(() => {
      if (this.phase === 'closed') return;
      this.host.emit(status.type, status as never);
      this.host.emit('status', status);
    });
  }

  findActive(reason: string | undefined): void {
    if (this.phase === 'closed') return;
    const from = this.server;
    if (reason !== undefined) this.log.warn({ from, reason }, 'looking for the active server');
    if (this.following && this.current >= 0) this.links[this.current]!.unfollow();
    this.following = false;
    this.replica.dropHeld();
    this.setPhase('finding', { server: from, reason: reason ?? 'starting' });
    this.syncs.stop();
    this.writes.requeueAll();
    this.bus.lost();
    this.kv.lost();
    // The failover is from the server last ready on, kept by a search restarted before ready.
    if (reason === undefined) this.pendingFailoverFrom = undefined;
    else if (this.pendingFailoverFrom === undefined) this.pendingFailoverFrom = from ?? '';
    this.finder.begin(this.current >= 0 ? this.current : undefined);
    this.current = -1;
    this.probe();
  }

  probe(): void {
    this.finder.probe();
    const d = this.finder.discovery;
    const report = this.session.reconnecting(this.now(), d.timeout(0), d.seen());
    if (report) this.signal(report);
  }

  /** The only node that answers lacks history and no active is reachable: say so, keep trying. */
  private unavailable(error: UnavailableError): void {
    this.readyWaiters.rejectAll(error);
    const status = this.session.unavailable(error.reason, this.finder.discovery.seen());
    if (status) this.signal(status);
  }

  /** A native sync (resume if the replica has a place on a timeline, else snapshot); never a vote. */
  sendSync(server: number, fresh: boolean): void {
    const reqId = this.nextReqId++;
    const { subtree } = this.options;
    const resume = this.replica.sequence >= 0 && this.term !== '';
    this.links[server]!.request(
      encodeRequest(
        resume
          ? { command: 'TRESUME', reqId, subtree, fromSequence: this.replica.sequence, term: this.term }
          : { command: 'TSNAP', reqId, subtree },
      ),
    );
    this.syncs.startNative(reqId, server, fresh, this.now());
  }

  /** A server said ACTIVE: follow its publisher and sync from it. */
  choose(server: number): void {
    this.current = server;
    // It answered just now: its silence counts from here (a slow snapshot start is not silence).
    this.lastHeard = this.now();
    this.setPhase('syncing', { server: this.options.servers[server]!.snapshot });
    this.replica.beginSync();
    this.startFollowing();
    this.sendSync(server, true);
  }

  startFollowing(): void {
    this.finder.chose(this.current);
    this.following = true;
    this.subscriptionConfirmed = false;
    this.links[this.current]!.follow([this.options.subtree, HUGZ], this.modeNow === 'native');
  }

  /** `wasVote`: the first sync with a newly found active (a plain CHP snapshot always counts). */
  finishSync(sequence: number, term: string, kind: string, synced: Synced, wasVote = true): void {
    const server = this.options.servers[this.current]!.snapshot;
    const hadReplica = this.replica.sequence >= 0;
    this.term = term;
    const resync = kind !== 'resume';
    // Updates held since a native vote may start after a hole (it was answered before we subscribed):
    // the resume confirming the subscription brings them again. Plain CHP subscribed first: kept.
    if (wasVote && this.modeNow === 'native') this.replica.dropHeld();
    const changes = this.replica.loadSync(resync, synced, sequence);
    this.finder.done();
    this.setPhase('ready', { server, sequence: this.replica.sequence });
    this.lastHeard = this.now();
    this.deliver(changes, resync && hadReplica);
    if (resync && hadReplica) this.host.emit('resync', { sequence, server });
    // A search that ends on the same server (it was fenced for a moment, or re-learning its
    // peer) is a reconnection, reported by the status signals, not a failover.
    const from = this.pendingFailoverFrom;
    if (wasVote && from !== undefined && from !== server)
      this.host.emit('failover', { from: from || undefined, to: server, sequence: this.replica.sequence });
    if (wasVote) {
      this.pendingFailoverFrom = undefined;
      this.host.emit('ready', { server, sequence: this.replica.sequence });
    }
    this.readyWaiters.resolveAll();
    // Updates published between the server's answer and our subscription taking effect: once it
    // is confirmed (first message), one more resume closes that window; also after an overflow.
    if (
      this.replica.consumeOverflow() ||
      (wasVote && this.subscriptionConfirmed && this.modeNow === 'native')
    )
      this.resyncCurrent();
    this.writes.scheduleFlush();
    this.bus.onReady(wasVote || (resync && hadReplica));
    this.kv.onReady(wasVote);
  }

  /** A sync (resume) with the server already in use: after a gap, or to confirm a subscription. */
  resyncCurrent(): void {
    if (this.phase !== 'ready') return;
    this.replica.beginSync();
    this.setPhase('syncing', {});
    if (this.modeNow === 'native') return this.sendSync(this.current, false);
    // Plain CHP has no resume: take a fresh snapshot from the same server.
    this.askChpSnapshot(this.current);
  }

  private askChpSnapshot(server: number): void {
    this.syncs.startChp(server, this.now());
    this.links[server]!.request(encodeIcanhaz(this.options.subtree));
  }

  setMode(mode: 'native' | 'chp'): void {
    if (this.modeNow === mode) return;
    this.modeNow = mode;
    if (mode === 'chp') {
      this.log.warn(
        'server speaks plain CHP (RFC 12) only: writes are fire-and-forget and never acknowledged',
      );
    }
    this.host.emit('mode', mode);
  }

  /** The replica moved: its changes go to the application, then the writes it reflects settle. */
  deliver(changes: ChangeList, resync: boolean): void {
    if (changes.length > 0) this.host.updates(changes, resync);
    // Each time the replica moved: writes it reflects resolve after their updates (read-your-writes).
    this.writes.applied(this.replica.sequence);
  }

  /**
   * A message from `server` was dropped. A malformed reply: that server is quarantined for a
   * server timeout (not asked, not chosen) and, if in use, the active is looked for again. A
   * malformed update may hide a change: resume.
   */
  dropped(server: number, source: DropSource, error: unknown, broken = true): void {
    const reason = reasonOf(error);
    this.drops.count(reason);
    const info: DropInfo = {
      server: this.options.servers[server]!.snapshot,
      source,
      reason,
      message: error instanceof Error ? error.message : String(error),
    };
    if (isMalformed(error)) this.dropLog.warn({ ...info }, `dropped a malformed ${source} message`);
    else this.log.error({ ...info, err: error }, `failed to handle a ${source} message`);
    if (this.phase !== 'closed' && broken && isMalformed(error)) {
      if (source === 'reply') {
        this.quarantine.add(server, this.now() + this.options.serverTimeoutMs);
        if (server === this.current) this.findActive(`malformed reply (${reason})`);
      } else if (server === this.current) {
        this.resyncCurrent();
      }
    }
    this.host.emit('dropped', info);
  }

  /** The one timer: silence, stalls, timeouts, vote rounds. */
  private tick(): void {
    if (this.phase === 'closed') return;
    const now = this.now();
    const frozen = now - this.lastTick > this.options.serverTimeoutMs / 2;
    this.lastTick = now;
    if (frozen) {
      // We were frozen (GC, SIGSTOP, a busy loop): silence we slept through proves nothing.
      this.lastHeard = Math.max(this.lastHeard, now);
      this.finder.discovery.thaw(now);
      this.syncs.thaw(now);
      this.writes.thaw(now);
    }
    this.writes.expire(now);
    this.bus.tick(now, frozen);
    this.kv.tick(now, frozen);
    this.readyWaiters.expire(now, (timeoutMs) => {
      const seen = this.finder.discovery.seen();
      return new NoActiveError(`no active server within ${timeoutMs} ms: ${describeSeen(seen)}`, seen);
    });
    switch (this.phase) {
      case 'finding':
        return this.probe();
      case 'syncing':
        if (now - this.lastHeard > this.finder.timeout(this.current)) return this.findActive('server silent');
        return this.syncDue(now);
      case 'ready':
        if (now - this.lastHeard > this.finder.timeout(this.current)) return this.findActive('server silent');
        return this.writes.retryUnanswered(now);
    }
  }

  /**
   * A sync in progress with a server that is heard: a native one asked again after 'busy', or
   * given up when it stalls; a plain CHP snapshot whose request or answer was lost (HUGZ keep the
   * server heard) is asked again of the same server: asking the other would be a vote.
   */
  private syncDue(now: number): void {
    const due = this.syncs.due(now, this.options.requestTimeoutMs);
    if (due?.action === 'retry') {
      this.sendSync(due.server, due.fresh);
    } else if (due?.action === 'stalled') {
      this.findActive('sync stalled');
    } else if (due?.action === 'reask') {
      this.log.warn({ server: this.options.servers[due.server]!.snapshot }, 'snapshot stalled: asking again');
      this.askChpSnapshot(due.server);
    }
  }
}
