/** The public shapes of a node: its events, its status and its options. */
import type { CloneServer } from '../server/index.js';
import type { State } from '../fsm/index.js';
import type { ServerConfig } from '../config/index.js';
import type { Guard } from '../security/index.js';
import type { Logger } from '../log/index.js';
import type { PeerMessage } from '../wire/index.js';
import type { MemoryStorageOptions, Storage } from '../core/index.js';
import type { PeerChannel } from './peer-link.js';

export interface StateChange {
  readonly from: State;
  readonly to: State;
  readonly reason: string;
}

export interface NodeEvents {
  state: [change: StateChange];
  promoted: [epoch: number, reason: string];
  divergent: [count: number];
  /** why this node cannot serve and the pair has no active it could follow (null: it can) */
  unavailable: [reason: string | null];
  degraded: [degraded: boolean];
  'peer-refused': [reason: string];
  'peer-dropped': [reason: string];
  stall: [ms: number];
  /** `dedupeSize` forced out a write uuid only `ageMs` old, younger than `dedupeMs` */
  'dedupe-evicted-early': [ageMs: number];
  /** a storage write failed: writes are refused from now on, reads still served */
  'storage-failed': [error: Error];
}

export interface PeerStatus {
  name: string;
  state: State;
  epoch: number;
  sequence: number;
  synced: boolean;
  lastHeardMs: number;
  up: boolean;
}

export interface NodeStatus {
  name: string;
  /** twinstar's version (package.json) */
  version?: string;
  role: ServerConfig['role'];
  state: State;
  epoch: number;
  term: string;
  sequence: number;
  keys: number;
  degraded: boolean;
  replicationLag: number;
  pending: number;
  peer: PeerStatus | null;
  peerRefused: string | null;
  /** does this node hold a complete copy of the pair's history (could it take over)? */
  history: 'complete' | 'incomplete';
  /** this active met another active and sequences nothing until one has demoted */
  fenced: boolean;
  /** why the pair cannot serve from this node: 'no-history', or null */
  unavailable: string | null;
  endpoints: CloneServer['endpoints'];
  pid: number;
  uptimeMs: number;
}

export interface NodeOptions {
  config: ServerConfig;
  log: Logger;
  now?: () => number;
  /** replaces the peer link's sockets (tests) */
  channel?: (onMessage: (msg: PeerMessage) => void) => PeerChannel;
  /** CURVE on every socket, the allow-list and per-subtree rights (docs/security.md) */
  guard?: Guard;
  /**
   * Opens the durable storage the store runs over (src/server.ts: lmdb on the data dir), given
   * the store's window options; it may throw a StorageError (the directory is refused). Without
   * it the node keeps everything in memory.
   */
  openStorage?: (options: MemoryStorageOptions) => ClosableStorage;
}

/** A storage the node closes when it stops (lmdb: the last commits are flushed and synced). */
export type ClosableStorage = Storage & { close?(): Promise<void> };
