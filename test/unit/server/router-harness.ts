/**
 * A fake ServerContext around a real Store and Dispatcher, and a RequestRouter on it: what the
 * router and event-bus unit tests send requests through (no sockets). Replies are the frames the
 * server posted; `now` is the harness's clock.
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { Dispatcher } from '../../../src/server/dispatcher.js';
import { RequestRouter } from '../../../src/server/router.js';
import { Followers } from '../../../src/server/followers.js';
import { SnapshotStreams } from '../../../src/server/snapshot-streams.js';
import { RateLimiter } from '../../../src/server/rate-limiter.js';
import {
  DEFAULT_QUOTAS,
  type Admission,
  type ServerEvents,
  type ServicePolicy,
} from '../../../src/server/types.js';
import type { ServerContext } from '../../../src/server/context.js';
import { Store } from '../../../src/core/store.js';
import { Principal, type Guard } from '../../../src/security/index.js';
import type { RateLimitedLog } from '../../../src/log/index.js';
import { DEFAULT_LIMITS, type KvMsgError } from '../../../src/wire/chp.js';
import { type PackedEntry } from '../../../src/wire/packed.js';
import {
  type Durability,
  decodeReply,
  encodeReply,
  encodeRequest,
  type NativeReply,
  type SnapshotSocketRequest,
} from '../../../src/wire/native.js';

export const ID = Buffer.from('client-1');
export const UUID = 'u'.repeat(16);
export const write = (key: string, properties = ''): PackedEntry => ({
  key,
  sequence: 0,
  uuid: `${key}${UUID}`.slice(0, 16),
  properties,
  body: Buffer.from('v'),
  expiresAt: 0,
});

export interface Options {
  active?: boolean;
  serving?: boolean;
  admit?: Admission;
  guard?: Map<string, Principal | undefined>;
  limits?: Partial<typeof DEFAULT_LIMITS>;
  /** what the policy's durable() returns (default: resolved at once) */
  durable?: () => Promise<Durability>;
  /** the policy's watermark (default: everything is publishable) */
  publishableUpTo?: number;
  /** the dispatcher's member timeout (default 5 s) */
  memberTimeoutMs?: number;
  /** whether the next TEVT fails to go out (a full pipe) */
  deliverFails?: () => boolean;
}

export function harness(options: Options = {}) {
  const state = {
    active: options.active ?? true,
    serving: options.serving ?? true,
    admits: 0,
    generation: 1,
    now: 1_000,
    /** ICANHAZ? requests the router told the server of (ctx.chpAsked) */
    chpAsks: 0,
  };
  const sent: Buffer[][] = [];
  const events: unknown[][] = [];
  const drops: string[] = [];
  const store = new Store({ replayLogSize: 100, dedupeSize: 100, dedupeMs: 60_000 });
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const policy: ServicePolicy = {
    admit: () => {
      state.admits++;
      return options.admit ?? { accepted: true };
    },
    serving: () => state.serving,
    hasHistory: () => true,
    stateName: () => 'PASSIVE',
    term: () => 'T1',
    onTimeline: () => true,
    durable: options.durable ?? (() => Promise.resolve('single')),
    publishableUpTo: () => options.publishableUpTo ?? Infinity,
    collectWhileInactive: () => undefined,
  };
  const emitter = new EventEmitter<ServerEvents>();
  const record = emitter.emit.bind(emitter);
  emitter.emit = ((name: keyof ServerEvents, ...args: unknown[]) => {
    events.push([name, ...args]);
    return record(name, ...(args as never));
  }) as typeof emitter.emit;
  const post = (frames: Buffer[]) => {
    sent.push(frames);
    return Promise.resolve();
  };
  const quotas = { ...DEFAULT_QUOTAS, maxSubtreeBytes: 8, maxFollowPrefixes: 2, snapshotsPerSecond: 2 };
  const ctx: ServerContext = {
    options: {
      host: '127.0.0.1',
      port: 0,
      heartbeatMs: 1000,
      limits,
      snapshotChunk: 100,
      quotas,
      store,
      policy,
      log: undefined as never,
    },
    quotas,
    store,
    policy,
    streams: new SnapshotStreams(
      { maxStreams: 4, maxStreamsPerClient: 1, idleMs: 10_000, maxBytes: 1e9, maxBytesPerClient: 1e9 },
      { send: post },
    ),
    followers: new Followers({ send: post, failed: () => undefined }),
    advertised: 'twinstar=1\n',
    events: emitter,
    now: () => state.now,
    reply: (identity, reply) => void post([identity, ...encodeReply(reply)]),
    deliver: (identity, reply) =>
      options.deliverFails?.()
        ? Promise.reject(new Error('EAGAIN'))
        : post([identity, ...encodeReply(reply)]),
    isActive: () => state.active,
    sequencing: () => state.active && state.serving,
    generation: () => state.generation,
    commit: (change, _source, now) => store.commit(change, now),
    chpAsked: () => void state.chpAsks++,
  };
  const guard = options.guard && {
    connectionNotice: () => undefined,
    principalOf: (identity: Buffer) => options.guard!.get(identity.toString()),
  };
  const dispatcher = new Dispatcher(
    ctx,
    {
      memberTimeoutMs: options.memberTimeoutMs ?? 5_000,
      defaults: { ackWaitMs: 30_000, maxDeliver: 10, maxAckPending: 1_000 },
    },
    () => Math.min(store.sequence, options.publishableUpTo ?? Infinity),
  );
  const router = new RequestRouter(ctx, {
    dispatcher,
    eventWindow: 1_000,
    guard: guard as unknown as Guard | undefined,
    bounds: { limits, maxSubtreeBytes: quotas.maxSubtreeBytes, maxFollowPrefixes: quotas.maxFollowPrefixes },
    snapshotLimiter: new RateLimiter(quotas.snapshotsPerSecond, () => 1_000),
    warnings: { warn: () => undefined } as unknown as RateLimitedLog,
    drop: (error) => drops.push((error as KvMsgError).reason ?? 'bad-request'),
  });
  const send = (request: SnapshotSocketRequest | Buffer[], identity: Buffer = ID) =>
    router.onRequest([identity, ...(Array.isArray(request) ? request : encodeRequest(request))]);
  /** the replies sent so far, decoded (routing id checked) */
  const replies = (): NativeReply[] =>
    sent.map((frames) => {
      expect(frames[0]!.equals(ID), 'addressed to the client').to.equal(true);
      return decodeReply(frames.slice(1));
    });
  const named = (name: string) => events.filter((e) => e[0] === name);
  /** the replies to one client so far, decoded */
  const repliesTo = (identity: Buffer): NativeReply[] =>
    sent.filter((frames) => frames[0]!.equals(identity)).map((frames) => decodeReply(frames.slice(1)));
  return { state, store, sent, events, drops, send, replies, repliesTo, named, dispatcher };
}

export const turn = () => new Promise((resolve) => setImmediate(resolve));
