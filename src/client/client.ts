/**
 * The failover-aware twinstar client: its public face. It keeps a local replica of one subtree
 * (the Clone pattern) and follows whichever server of the pair is active.
 *
 * This module is the facade: the public API (connect, ready, get, set, delete, watch, status,
 * closed, close), its argument checks, and the one queue through which every event and every
 * settled promise reaches the application on the next tick, in the order the client decided
 * (events.ts). The state machine behind it is the agent (agent.ts): finding the active
 * (finder.ts, discovery.ts, votes.ts), the phase table with its one funnel (session.ts), sync
 * assembly (sync.ts), the write queue (writes.ts) and the messages from servers (inbound.ts), all
 * on the injected clock. docs/protocol.md has the procedure.
 *
 * Writes get a uuid when issued and keep it: on the native path they are acknowledged once the
 * pair has made them durable, resolve once this client's replica has applied them when their key
 * is in its subtree (read-your-writes), and any write not yet acknowledged at a failover is sent
 * again to the new active, which applies it once. Every wait has a bound. Nothing a server sends
 * is thrown out of a socket handler: a malformed message is dropped and counted (drops.ts).
 */
import { EventEmitter } from 'node:events';
import type { ChangeList, Entry } from '../kv/index.js';
import { Agent } from './agent.js';
import { LINK_STOP_MS } from './link.js';
import { checkPrefix, checkReadKey, jsonText, parseJson, rejectWith } from './arguments.js';
import {
  eventStream,
  LaterQueue,
  type ClientEvents,
  type ClientStats,
  type FailoverInfo,
  type Update,
} from './events.js';
import {
  resolveOptions,
  systemClock,
  type ClientOptions,
  type Clock,
  type CurveOptions,
  type Mode,
} from './options.js';
import type { Status } from './session.js';
import { WatchStream } from './watch.js';
import type { PublishOptions } from './publishing.js';
import type { SubscribeOptions, Subscription } from './subscription.js';
import type { WriteConditions } from './conditions.js';
import type { Lease } from './leases.js';
import type { KeyEntry } from './revisions.js';
import { checkSequence, type WatchOptions } from './kv-arguments.js';
import * as kvApi from './kv-api.js';

export {
  systemClock,
  type ClientOptions,
  type Clock,
  type CurveOptions,
  type ClientEvents,
  type ClientStats,
  type FailoverInfo,
  type Mode,
  type Update,
};

/** What `Client.view()` returns. */
export interface ReplicaView {
  readonly sequence: number;
  readonly term: string;
  readonly entries: readonly Entry[];
}

/** `set` options: `ttl` seconds (0 or absent: never), `ifSequence` (compare-and-set), `lease`. */
export type SetOptions = WriteConditions;

export class Client extends EventEmitter<ClientEvents> {
  readonly subtree: string;
  private readonly agent: Agent;
  private readonly queue: LaterQueue;
  private readonly lingerMs: number;
  private closing: Promise<void> | undefined;
  private readonly closedPromise: Promise<void>;
  private markClosed!: () => void;
  /** changes the replica has applied, and the number of the one being emitted (for watch()) */
  private changesApplied = 0;
  private changeEmitting = 0;

  constructor(options: ClientOptions) {
    super();
    const resolved = resolveOptions(options);
    this.subtree = resolved.subtree;
    this.lingerMs = resolved.lingerMs;
    this.queue = new LaterQueue(resolved.log);
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve));
    this.agent = new Agent(resolved, {
      emit: (name, ...args) => this.queue.later(() => (this as EventEmitter).emit(name, ...args)),
      later: (step) => this.queue.later(step),
      updates: (changes, resync) => this.queueUpdates(changes, resync),
    });
  }

  // ------------------------------------------------------------------------------------------
  // Public API.

  /** Resolves once the replica has been loaded from the active server. */
  ready(timeoutMs = 10_000): Promise<void> {
    return this.agent.ready(timeoutMs);
  }

  /**
   * Writes a value; resolves with its sequence number once acknowledged and, for a key inside this
   * client's subtree, applied to its replica (0 in plain CHP mode). A key outside the subtree may
   * be written: it resolves on the acknowledgement. Bad arguments (an empty key, an empty or
   * oversized value, a bad ttl) reject with InvalidArgumentError.
   */
  set(key: string, value: Buffer | string, options?: SetOptions): Promise<number> {
    return kvApi.write(this.agent, key, value, options, undefined);
  }

  /**
   * Writes a key that must not exist yet (`set` with ifSequence 0): a key that exists rejects with
   * ConflictError carrying its current sequence.
   */
  create(key: string, value: Buffer | string, options?: Omit<SetOptions, 'ifSequence'>): Promise<number> {
    return kvApi.write(this.agent, key, value, options, 0);
  }

  /**
   * Deletes every key that starts with `prefix` as one sequenced change; resolves with its
   * sequence (acknowledged and, for a prefix inside the subtree, applied to the replica).
   */
  deletePrefix(prefix: string): Promise<number> {
    return kvApi.deletePrefix(this.agent, prefix);
  }

  /**
   * A lease of `ttlMs` (>= 1000) kept alive every ttl/3 by this client, across failovers, until
   * its `close()` or `revoke()`; its 'lost' event says it is gone. Attach keys with `set(key,
   * value, { lease })`.
   */
  lease(options: { ttlMs: number }): Promise<Lease> {
    return kvApi.grant(this.agent, options);
  }

  /** Leases by id (the CLI's `lease revoke|keep-alive|ls`): revoke, keepAliveOnce, list. */
  get leases(): kvApi.LeaseAdmin {
    return kvApi.leaseAdmin(this.agent);
  }

  /**
   * Publishes an event on `topic` (dotted tokens, docs/events.md); resolves with its sequence once
   * stored as a `set` is (acknowledged), and is sent again with the same uuid across a failover.
   * A bad topic, data or header rejects with InvalidArgumentError; a plain CHP server with
   * ServerRejectedError 'plain-chp'.
   */
  publish(topic: string, data: string | Buffer | Uint8Array, options: PublishOptions = {}): Promise<number> {
    return this.agent.bus.publishes.publish(topic, data, options);
  }

  /**
   * Subscribes to the events whose topic matches `pattern` (`*` one token, `>` the rest): every
   * event (fan-out), or with `group` one member's share. Iterate it (`for await`) or listen to its
   * 'event'. Re-subscribed after every failover. A bad pattern or option throws InvalidArgumentError.
   */
  subscribe(pattern: string, options?: SubscribeOptions): Subscription {
    return this.agent.bus.subscriptions.open(pattern, options);
  }

  /**
   * Deletes a key; resolves with the delete's sequence number as set() does (acknowledged,
   * applied). With `ifSequence`, only if the key is at that sequence (else ConflictError).
   */
  delete(key: string, options?: { ifSequence?: number }): Promise<number> {
    return kvApi.remove(this.agent, key, options);
  }

  /** A value as JSON; a value JSON cannot represent (a cycle, undefined) rejects with InvalidArgumentError. */
  setJson(key: string, value: unknown, options?: SetOptions): Promise<number> {
    try {
      return this.set(key, jsonText(value), options);
    } catch (error) {
      return rejectWith(error);
    }
  }

  /**
   * The current value from the local replica (synchronous). Throws InvalidArgumentError for a key
   * outside this client's subtree (the replica does not hold it).
   */
  get(key: string): Buffer | undefined {
    return this.agent.replica.get(checkReadKey(key, this.subtree))?.body;
  }

  /**
   * The value, its sequence (the key's revision), its TTL left and its lease, from the replica
   * (synchronous). A key outside the subtree throws InvalidArgumentError.
   */
  getEntry(key: string): KeyEntry | undefined {
    const entry = this.agent.replica.get(checkReadKey(key, this.subtree));
    return this.agent.kv.revisions.entry(entry, this.agent.now());
  }

  /** The sequence the replica has applied (-1 before the first sync). */
  lastSequence(): number {
    return this.agent.replica.sequence;
  }

  /** The keys under a prefix of the subtree, from the replica, sorted. */
  keys(prefix = this.subtree): string[] {
    checkPrefix(prefix, this.subtree);
    return [...this.agent.replica.values(prefix)].map((e) => e.key).sort();
  }

  /** How many keys the replica holds under a prefix of the subtree. */
  count(prefix = this.subtree): number {
    checkPrefix(prefix, this.subtree);
    return kvApi.count(this.agent.replica.values(prefix));
  }

  getString(key: string): string | undefined {
    return this.get(key)?.toString();
  }

  /** The value parsed as JSON; throws ValueFormatError if it is not JSON. */
  getJson<T = unknown>(key: string): T | undefined {
    const value = this.getString(key);
    return value === undefined ? undefined : parseJson<T>(key, value);
  }

  /**
   * Every key and value under a prefix of this client's subtree, from the local replica. Throws
   * InvalidArgumentError for a prefix outside the subtree.
   */
  entries(prefix = this.subtree): Map<string, Buffer> {
    checkPrefix(prefix, this.subtree);
    const out = new Map<string, Buffer>();
    for (const entry of this.agent.replica.values(prefix)) out.set(entry.key, entry.body);
    return out;
  }

  /**
   * Changes under a prefix as an async iterator. With `initial` (the default) the current values
   * come first, as NATS KV watchers do. The iterator ends when the client closes. A prefix outside
   * this client's subtree throws InvalidArgumentError at once (watch() itself returns no promise).
   */
  watch(prefix = this.subtree, options: WatchOptions = {}): AsyncIterableIterator<Update> {
    checkPrefix(prefix, this.subtree);
    if (options.fromSequence !== undefined)
      return kvApi.watchFrom(this, this.agent, prefix, checkSequence(options.fromSequence, 'fromSequence'));
    const stream = new WatchStream<Update>(() => {
      this.off('update', listener);
      this.off('close', end);
    });
    // Changes already in the replica but still queued for their 'update' event are in the initial
    // values: the stream skips their events, so that each change reaches it once.
    const since = this.changesApplied;
    const listener = (update: Update) => {
      if (this.changeEmitting > since && update.key.startsWith(prefix)) stream.push(update);
    };
    const end = () => stream.end();
    if (options.initial ?? true) {
      const initial = [...this.agent.replica.values(prefix)].sort((a, b) => a.sequence - b.sequence);
      const now = this.agent.now();
      for (const e of initial) {
        const ttlRemainingMs = this.agent.kv.revisions.ttlRemainingMs(e, now);
        stream.push({
          key: e.key,
          value: e.body,
          seq: e.sequence,
          deleted: false,
          resync: false,
          ttlRemainingMs,
        });
      }
    }
    this.on('update', listener);
    this.on('close', end);
    if (this.agent.phase === 'closed') stream.end();
    return stream;
  }

  /**
   * A point-in-time copy of the whole replica, for backups (`twinstar snapshot save`): every entry
   * with its sequence, uuid, properties and TTL deadline, the sequence they reflect and the term
   * of the history they were synced from. A sync brings each entry's deadline; an update applied
   * live since carries none (expiresAt 0, its `ttl=` property still there).
   */
  view(): ReplicaView {
    const { replica } = this.agent;
    return { sequence: replica.sequence, term: this.agent.syncedTerm, entries: [...replica.values('')] };
  }

  /** The sequence the replica reflects (-1 before the first sync). */
  get sequence(): number {
    return this.agent.replica.sequence;
  }

  /** The snapshot endpoint of the server in use, if any. */
  get server(): string | undefined {
    return this.agent.server;
  }

  get mode(): Mode {
    return this.agent.modeNow;
  }

  /** True while the active acknowledges writes without a passive (the pair is degraded). */
  get degraded(): boolean {
    return this.agent.writes.degraded;
  }

  /** What the client has dropped since it started. */
  stats(): ClientStats {
    return { dropped: this.agent.drops.snapshot() };
  }

  /** Writes issued and not yet settled (acknowledged, failed or timed out). */
  get pendingWrites(): number {
    return this.agent.writes.pending;
  }

  /** Status signals (disconnected, reconnecting, reconnected, unavailable) until close. */
  status(): AsyncIterableIterator<Status> {
    const stream = eventStream<Status>(this, 'status');
    if (this.agent.phase === 'closed') stream.end();
    return stream;
  }

  /**
   * Resolves once the client has closed (close() finished: sockets released, 'close' emitted);
   * never rejects. A way to wait for a client that something else closes.
   */
  closed(): Promise<void> {
    return this.closedPromise;
  }

  /**
   * Stops the client: pending writes and ready() reject with ClosedError. Plain CHP writes already
   * published get up to `lingerMs` to reach the collectors before the sockets close.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.agent.close();
    const links = this.agent.links;
    await Promise.all(links.map((link) => link.drain(this.lingerMs).catch(() => undefined)));
    for (const link of links) link.close();
    await Promise.all(links.map((link) => link.stopped?.(LINK_STOP_MS)));
    await new Promise<void>((resolve) =>
      this.queue.later(() => {
        try {
          this.emit('close');
        } finally {
          this.markClosed();
          resolve();
        }
      }),
    );
  }

  /**
   * Changes the replica applied: their 'update' events go out with the queue, in order, as one
   * queued step for the whole batch (a snapshot can bring a million). The Update objects are made
   * as they are emitted, not all held until the next tick.
   */
  private queueUpdates(changes: ChangeList, resync: boolean): void {
    const first = this.changesApplied + 1;
    this.changesApplied += changes.length;
    const { replica, kv } = this.agent;
    this.queue.later(() => {
      // No listener now (a late joiner awaiting connect()): each emit would do nothing, so none is made.
      if (this.listenerCount('update') === 0) return void (this.changeEmitting = first + changes.length - 1);
      const now = this.agent.now();
      for (let i = 0; i < changes.length; i++) {
        const c = changes.at(i)!;
        this.changeEmitting = first + i;
        const ttlRemainingMs = kv.revisions.ofChange(replica, c, now);
        try {
          const { key, value, sequence: seq, deleted } = c;
          this.emit('update', { key, value, seq, deleted, resync, ttlRemainingMs });
        } catch (error) {
          // The application's bug: it must not stop the other updates, the sync or the socket.
          this.agent.log.error({ err: error, key: c.key }, "an 'update' listener threw");
        }
      }
    });
  }
}

/** Connects and resolves once the replica is loaded from the active server. */
export async function connect(options: ClientOptions): Promise<Client> {
  const client = new Client(options);
  try {
    await client.ready(options.connectTimeoutMs ?? 10_000);
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}
