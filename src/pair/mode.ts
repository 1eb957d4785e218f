/**
 * What differs between a single server and a node of a pair, as two policy objects behind one
 * interface (src/pair/single.ts, src/pair/pair-mode.ts): the node (src/pair/node.ts) composes
 * the parts both share and asks its mode everything that depends on having a peer.
 */
import type { EventEmitter } from 'node:events';
import type { Admission, CloneServer } from '../server/index.js';
import type { Store } from '../core/index.js';
import type { Timeline } from '../core/index.js';
import type { Durability, Limits, RelayedAck } from '../wire/index.js';
import type { State } from '../fsm/index.js';
import type { ServerConfig } from '../config/index.js';
import type { Logger, RateLimitedLog } from '../log/index.js';
import type { NodeEvents, NodeStatus } from './node-types.js';
import type { PendingList } from './pending.js';

/** The parts of a node every mode works with. */
export interface NodeParts {
  readonly config: ServerConfig;
  readonly log: Logger;
  readonly now: () => number;
  readonly limits: Limits;
  readonly store: Store;
  readonly server: CloneServer;
  readonly timeline: Timeline;
  readonly pending: PendingList;
  /** warnings a misbehaving peer could repeat on every message */
  readonly refusals: RateLimitedLog;
  /** the node's events, emitted synchronously (a mode defers with process.nextTick where due) */
  readonly emit: EventEmitter<NodeEvents>['emit'];
  /** open a new term of the timeline at `epoch`, starting after the current sequence */
  openTerm(epoch: number, reason: string): void;
}

export type ForceResult = { ok: true; epoch: number } | { ok: false; reason: string };

/** What /status says that depends on the mode. */
export type ModeStatus = Pick<
  NodeStatus,
  | 'state'
  | 'epoch'
  | 'degraded'
  | 'replicationLag'
  | 'peer'
  | 'peerRefused'
  | 'history'
  | 'fenced'
  | 'unavailable'
>;

export interface Mode {
  readonly state: State;
  readonly promotions: number;
  start(): Promise<void>;
  close(): Promise<void>;
  /** the periodic timer: every heartbeatMs */
  tick(): void;
  admit(): Admission;
  serving(): boolean;
  hasHistory(): boolean;
  durable(sequence: number): Promise<Durability>;
  /** a pair hands a write's TACK to its passive (false: it did not) */
  relay?(ack: RelayedAck): boolean;
  publishableUpTo(): number;
  forcePromote(): ForceResult;
  isDegraded(): boolean;
  peerUp(): boolean;
  peerSilenceMs(): number;
  reactorHealthy(): boolean;
  status(): ModeStatus;
}
