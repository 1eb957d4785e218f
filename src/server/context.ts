/**
 * What the router and the request handlers of src/server/handlers/ may use of the server: one
 * object the composition root (server.ts) builds, so handlers are functions of (context, request)
 * and never reach into the CloneServer.
 */
import type { EventEmitter } from 'node:events';
import type { Change, CommitResult, Store } from '../core/index.js';
import type { NativeReply } from '../wire/index.js';
import type { Followers } from './followers.js';
import type { SnapshotStreams } from './snapshot-streams.js';
import type { ChangeSource, CloneServerOptions, ServerEvents, ServerQuotas, ServicePolicy } from './types.js';

export interface ServerContext {
  readonly options: CloneServerOptions;
  readonly quotas: ServerQuotas;
  readonly store: Store;
  readonly policy: ServicePolicy;
  readonly streams: SnapshotStreams;
  readonly followers: Followers;
  /** the properties on KTHXBAI and HUGZ that advertise the native extension (docs/protocol.md) */
  readonly advertised: string;
  readonly events: EventEmitter<ServerEvents>;
  now(): number;
  /** a native reply to the client with this routing id */
  reply(identity: Buffer, reply: NativeReply): void;
  /** `reply`, and whether it went out (a full pipe or a client gone rejects) */
  deliver(identity: Buffer, reply: NativeReply): Promise<void>;
  /** this node is active (possibly fenced by a meeting with another active) */
  isActive(): boolean;
  /** active and not fenced: this node may sequence changes */
  sequencing(): boolean;
  /**
   * Bumps at every change of activity (promotion, demotion): an async continuation that started
   * under one generation does not act under another (STYLE habit 6).
   */
  generation(): number;
  /** a plain CHP client asked for a snapshot (ICANHAZ?): it subscribed to the publisher first */
  chpAsked(): void;
  /** sequence a change, publish it and tell listeners */
  commit(change: Change, source: ChangeSource, now: number): CommitResult;
}
