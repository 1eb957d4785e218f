/**
 * The snapshot ROUTER's requests, from frames to a handler. In order:
 *
 * 1. authentication: with security on, the routing id must be a session token of a listed key
 *    (an empty message is libzmq's notice that a connection began or ended);
 * 2. decoding by the native codec (wire/native.ts), with the server's bounds; a malformed request
 *    is answered TERROR where the client could only retry it in vain, and is counted;
 * 3. per command: rate limits (snapshots), read and write rights, admission (the Binary Star vote
 *    for ICANHAZ? and TVOTE; 'this node sequences' for every other native request);
 * 4. dispatch to the handler of the command family (handlers/).
 *
 * Nothing escapes: whatever a request throws is dropped and counted.
 */
import {
  ICANHAZ,
  decodeRequest,
  decodeRequestId,
  Native,
  NativeMsgError,
  type RequestBounds,
  type SnapshotSocketRequest,
} from '../wire/index.js';
import type { Guard, Principal } from '../security/index.js';
import type { RateLimitedLog } from '../log/index.js';
import type { RateLimiter } from './rate-limiter.js';
import type { ServerContext } from './context.js';
import { serveChpSnapshot, serveNativeSync, serveWatch } from './handlers/snapshot.js';
import { applyWrites, refuseReserved, refuseUnwritable, refuseWrites, toChanges } from './handlers/write.js';
import { follow, unfollow } from './handlers/follow.js';
import { checkConditions } from './handlers/conditions.js';
import { serveLease } from './handlers/leases.js';
import { ackEvents, publishEvents, subscribeEvents, unsubscribeEvents } from './handlers/events.js';
import type { Dispatcher } from './dispatcher.js';
import { notActive, pong } from './handlers/ping.js';

export interface RouterDeps {
  readonly guard: Guard | undefined;
  readonly bounds: RequestBounds;
  /** the event bus's delivery engine (subscriptions, acks, liveness) */
  readonly dispatcher: Dispatcher;
  /** events a fan-out subscription may have unseen when it does not say (maxAckPending) */
  readonly eventWindow: number;
  /** snapshot and resume requests per client */
  readonly snapshotLimiter: RateLimiter;
  readonly warnings: RateLimitedLog;
  /** a request that could not be served: count it (and log it, rate-limited) */
  drop(error: unknown, frames: number): void;
}

export class RequestRouter {
  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: RouterDeps,
  ) {}

  onRequest([identity, command, ...args]: Buffer[]): void {
    if (identity === undefined || command === undefined) return;
    const { guard } = this.deps;
    try {
      // With security on, the routing id is the client's session token (security/session.ts),
      // and an empty message is libzmq's notice that its connection began or ended.
      if (guard && command.length === 0 && args.length === 0) {
        const refused = guard.connectionNotice(identity);
        if (refused) this.deps.warnings.warn({ reason: refused }, 'session token refused');
        return;
      }
      const principal = guard?.principalOf(identity);
      if (guard && principal === undefined) return this.unauthenticated(identity, args);
      let request;
      try {
        request = decodeRequest([command, ...args], this.deps.bounds);
      } catch (error) {
        if (error instanceof NativeMsgError) this.answerMalformed(identity, error);
        throw error;
      }
      this.deps.dispatcher.heardFrom(identity);
      this.dispatch(identity, request, principal);
    } catch (error) {
      this.deps.drop(error, args.length + 1);
    }
  }

  private dispatch(identity: Buffer, request: SnapshotSocketRequest, principal?: Principal): void {
    const ctx = this.ctx;
    switch (request.command) {
      case ICANHAZ:
        ctx.chpAsked();
        if (!this.allowSnapshot(identity, principal)) return;
        this.checkRead(request.subtree, principal);
        // A turned-away CHP client gets silence and tries the other server.
        if (!ctx.policy.admit().accepted) return void ctx.events.emit('rejected', ICANHAZ);
        return serveChpSnapshot(ctx, identity, request.subtree, principal);
      case 'TSNAP':
      case 'TRESUME':
        if (!this.allowSnapshot(identity, principal)) return;
        this.checkRead(request.subtree, principal);
        if (!this.admitNative(identity, request.reqId, request.command)) return;
        return serveNativeSync(ctx, identity, request, principal);
      case 'TSET': {
        const now = ctx.now();
        const asked = toChanges(ctx, identity, request.reqId, request.writes, now);
        if (refuseReserved(ctx, identity, request.reqId, asked)) return;
        if (principal && refuseUnwritable(ctx, identity, request.reqId, asked, principal)) return;
        if (!this.admitNative(identity, request.reqId, Native.SET)) return;
        const changes = checkConditions(ctx, identity, request.reqId, asked);
        if (changes === undefined) return;
        return applyWrites(ctx, identity, request.reqId, changes, now);
      }
      case 'TPING':
        return pong(ctx, identity, request.reqId);
      case 'TVOTE': {
        const admission = ctx.policy.admit();
        if (admission.accepted) return pong(ctx, identity, request.reqId);
        ctx.events.emit('rejected', Native.VOTE);
        return notActive(ctx, identity, request.reqId, admission.reason);
      }
      case 'TFOLLOW':
        if (!this.admitNative(identity, request.reqId, Native.FOLLOW)) return;
        for (const prefix of request.prefixes) this.checkRead(prefix, principal);
        return follow(ctx, identity, request.prefixes, principal);
      case 'TUNFOLLOW':
        return unfollow(ctx, identity);
      case 'TLEASE':
        if (principal && principal.write.length === 0)
          return this.deniedLease(identity, request.reqId, principal);
        if (!this.admitNative(identity, request.reqId, Native.LEASE)) return;
        return serveLease(ctx, identity, request);
      case 'TWATCH':
        if (!this.allowSnapshot(identity, principal)) return;
        this.checkRead(request.prefix, principal);
        if (!this.admitNative(identity, request.reqId, Native.WATCH)) return;
        return serveWatch(ctx, identity, request, principal);
      case 'TEPUB':
        if (!this.admitNative(identity, request.reqId, Native.EVENT_PUBLISH)) return;
        return publishEvents(ctx, identity, request.reqId, request.events, principal);
      case 'TESUB': {
        if (!this.admitNative(identity, request.reqId, Native.EVENT_SUBSCRIBE)) return;
        const { reqId, subId, pattern, options } = request;
        const { dispatcher, eventWindow } = this.deps;
        return subscribeEvents(
          ctx,
          dispatcher,
          identity,
          reqId,
          subId,
          pattern,
          options,
          principal,
          eventWindow,
        );
      }
      case 'TEUNSUB':
        if (!this.admitNative(identity, request.reqId, Native.EVENT_UNSUBSCRIBE)) return;
        return unsubscribeEvents(ctx, this.deps.dispatcher, identity, request.reqId, request.subId);
      case 'TEACK':
        if (!this.admitNative(identity, request.reqId, Native.EVENT_ACK)) return;
        return ackEvents(ctx, this.deps.dispatcher, identity, request.reqId, request.subId, request.acks);
    }
  }

  /** Leases go with keys: a client that may write no key may not hold or revoke one. */
  private deniedLease(identity: Buffer, reqId: number, principal: Principal): void {
    this.ctx.events.emit('denied', 'write', principal.name);
    this.ctx.reply(identity, {
      command: 'TERROR',
      reqId,
      reason: 'access-denied',
      message: `client ${principal.name} may not write, so it may not hold leases`,
    });
  }

  /** Every native request but TPING and TVOTE is served only by the active, and is never a vote. */
  private admitNative(identity: Buffer, reqId: number, command: string): boolean {
    if (this.ctx.sequencing()) return true;
    this.ctx.events.emit('rejected', command);
    notActive(this.ctx, identity, reqId, this.ctx.isActive() ? 'fenced' : 'not-active');
    return false;
  }

  /**
   * A malformed request whose id is readable is told why when the client could only retry it in
   * vain: a TSET (nothing of it is applied), a subtree or prefix too long, too many prefixes.
   */
  private answerMalformed(identity: Buffer, error: NativeMsgError): void {
    if (error.reqId === undefined) return;
    if (error.command === Native.SET) return refuseWrites(this.ctx, identity, error.reqId, error);
    if (error.reason === 'subtree-too-long' || error.reason === 'too-many-prefixes')
      this.ctx.reply(identity, {
        command: 'TERROR',
        reqId: error.reqId,
        reason: error.reason,
        message: error.detail,
      });
  }

  /**
   * A request whose routing id is no valid session token of a listed key. A native request is
   * told why (its id is readable); nothing else is answered.
   */
  private unauthenticated(identity: Buffer, args: Buffer[]): void {
    this.ctx.events.emit('dropped', 'snapshot', 'unauthenticated');
    const reqId = decodeRequestId(args[0]);
    if (reqId === undefined) return;
    this.ctx.reply(identity, {
      command: 'TERROR',
      reqId,
      reason: 'unauthenticated',
      message: 'this server requires a session token of a listed client key (docs/security.md)',
    });
  }

  /** Reading a subtree the client may read only part of is allowed, filtered, and counted. */
  private checkRead(subtree: string, principal: Principal | undefined): void {
    if (principal && !principal.canReadAll(subtree)) this.ctx.events.emit('denied', 'read', principal.name);
  }

  /** A client may ask for a snapshot (or resume) this often; beyond that, requests are dropped. */
  private allowSnapshot(identity: Buffer, principal: Principal | undefined): boolean {
    if (this.deps.snapshotLimiter.take(principal?.publicKey ?? identity.toString('latin1'))) return true;
    this.ctx.events.emit('dropped', 'snapshot', 'rate-limited');
    return false;
  }
}
