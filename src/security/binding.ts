/**
 * Binds each snapshot-socket connection to the CURVE key it authenticated with, so that a session
 * token (session.ts) is honoured only on a connection made with the key it names, and only if it
 * was minted at most `lifetimeMs` before that connection was made.
 *
 * Neither libzmq nor zeromq.js hands the application the key behind a message, and the ZAP
 * request (RFC 27) does not carry the connecting peer's routing id: its "identity" frame is the
 * server socket's own. What the application does see, in order:
 *   1. a ZAP request naming the connecting key; the ZAP handler answers it;
 *   2. libzmq finishes that handshake and, with ZMQ_ROUTER_NOTIFY, the ROUTER delivers an empty
 *      message from the new routing id before anything the peer sends.
 * So the ZAP handler admits one snapshot connection at a time: it holds its next answer until the
 * connection it let in last has shown up on the ROUTER (or `attachTimeoutMs` has passed). The
 * routing id that shows up is then known to belong to the key admitted last, and its token must
 * name that key.
 *
 * A second empty message from a routing id is its disconnect notice, or an empty message the peer
 * sent itself: either way that session is over for good, and the id is never bound again. A
 * client therefore mints a new token for every connection it makes. Sessions refused or ended
 * are remembered until their token could no longer start a session anyway.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Fifo } from '../zmq/index.js';
import type { SessionClaim } from './session.js';

export interface SessionBinderOptions {
  /** how long after it was minted a token may still start a session, in ms */
  lifetimeMs: number;
  /** the genuine claim of a routing id, or undefined (session.ts readSessionToken) */
  read: (routingId: Buffer) => SessionClaim | undefined;
  /** how long an admitted connection may take to reach the ROUTER, in ms */
  attachTimeoutMs?: number;
  /** sessions remembered at most; the oldest ended ones are forgotten first */
  maxSessions?: number;
  now?: () => number;
}

/** Why a connection's token was not bound: counted by the caller. */
export type BindRefusal = 'no-token' | 'wrong-key' | 'expired' | 'unexpected';

interface Session {
  /** the key this routing id acts for; null once refused or ended */
  key: string | null;
  /** when this entry may be forgotten without letting the id start a session again */
  forgetAfter: number;
}

interface Admission {
  key: string;
  done: () => void;
}

export const DEFAULT_SESSION_LIFETIME_MS = 300_000;
const DEFAULT_ATTACH_TIMEOUT_MS = 2000;
const DEFAULT_MAX_SESSIONS = 100_000;

export class SessionBinder {
  private readonly sessions = new Map<string, Session>();
  /** the connection ZAP let in last, until it shows up on the ROUTER */
  private admitted: Admission | undefined;
  /** ZAP answers waiting for `admitted` to clear, in order (a Fifo: a connection flood is O(1) each) */
  private readonly waiting = new Fifo<() => void>();
  private readonly now: () => number;
  private readonly attachTimeoutMs: number;
  private readonly maxSessions: number;
  private notices = 0;
  private live = 0;

  constructor(private readonly options: SessionBinderOptions) {
    this.now = options.now ?? Date.now;
    this.attachTimeoutMs = options.attachTimeoutMs ?? DEFAULT_ATTACH_TIMEOUT_MS;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  }

  /**
   * ZAP accepts `publicKey` on the snapshot socket. Resolves when its answer may be sent: when no
   * connection let in before it is still on its way to the ROUTER.
   */
  async admit(publicKey: string): Promise<void> {
    while (this.admitted) await new Promise<void>((resolve) => this.waiting.push(resolve));
    const admission: Admission = {
      key: publicKey,
      done: () => {
        clearTimeout(timer);
        if (this.admitted !== admission) return;
        this.admitted = undefined;
        this.waiting.shift()?.();
      },
    };
    this.admitted = admission;
    const timer = setTimeout(() => {
      // Timers run before I/O after a stall: let a notice that has arrived be read first.
      void yieldToLoop().then(() => admission.done());
    }, this.attachTimeoutMs);
    timer.unref();
  }

  /**
   * An empty message from `routingId` on the ROUTER: a new connection (its first) or the end of
   * one. Returns why a new connection was refused, if it was.
   */
  notice(routingId: Buffer): BindRefusal | undefined {
    const id = routingId.toString('latin1');
    const now = this.now();
    if (++this.notices % 1024 === 0) this.sweep(now);
    const known = this.sessions.get(id);
    if (known) {
      if (known.key !== null) this.live--;
      known.key = null;
      known.forgetAfter = Math.max(known.forgetAfter, now + this.options.lifetimeMs);
      return undefined;
    }
    const admission = this.admitted;
    admission?.done();
    const claim = this.options.read(routingId);
    let refusal: BindRefusal | undefined;
    if (claim === undefined) refusal = 'no-token';
    else if (admission === undefined) refusal = 'unexpected';
    else if (claim.publicKey !== admission.key) refusal = 'wrong-key';
    else if (Math.abs(now - claim.mintedAt) > this.options.lifetimeMs) refusal = 'expired';
    const forgetAfter = (claim ? Math.max(claim.mintedAt, now) : now) + this.options.lifetimeMs;
    this.remember(id, { key: refusal ? null : claim!.publicKey, forgetAfter });
    if (!refusal) this.live++;
    return refusal;
  }

  /** The client key requests from `routingId` act for, or undefined if it has no live session. */
  keyOf(routingId: Buffer): string | undefined {
    return this.sessions.get(routingId.toString('latin1'))?.key ?? undefined;
  }

  /** sessions remembered, live or ended */
  get size(): number {
    return this.sessions.size;
  }

  /** connections that hold a session now */
  get liveSessions(): number {
    return this.live;
  }

  private remember(id: string, session: Session): void {
    if (this.sessions.size >= this.maxSessions) this.forget();
    this.sessions.set(id, session);
  }

  /** Forgets ended sessions whose tokens could no longer start one anyway. */
  private sweep(now: number): void {
    for (const [id, session] of this.sessions)
      if (session.key === null && session.forgetAfter <= now) this.sessions.delete(id);
  }

  /** Makes room: first what can be forgotten safely, then the oldest ended sessions, then the oldest. */
  private forget(): void {
    this.sweep(this.now());
    const target = Math.floor(this.maxSessions * 0.9);
    for (const [id, session] of this.sessions) {
      if (this.sessions.size <= target) return;
      if (session.key === null) this.sessions.delete(id);
    }
    for (const [id, session] of this.sessions) {
      if (this.sessions.size <= target) return;
      if (session.key !== null) this.live--;
      this.sessions.delete(id);
    }
  }
}
