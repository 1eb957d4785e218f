/**
 * What clients see of the log: committed changes go out on the publisher and to every follower
 * once the policy allows (the publication watermark, core/publication.ts), in order, without
 * holding the event loop.
 */
import { encodeKvMsg } from '../wire/index.js';
import { PublicationQueue } from '../core/index.js';
import { PREV_PROPERTY, isDeletePrefix, type Entry } from '../kv/index.js';
import { isReserved } from '../events/index.js';
import { DRAIN_BUDGET_MS, type Outbox } from '../zmq/index.js';
import type { Followers } from './followers.js';
import type { UpdateStream } from './update-stream.js';

/** messages on a send queue above which publishing waits for a later turn */
const RELEASE_BACKLOG = 2_000;
/**
 * How long after an ICANHAZ? every key change goes to the publisher, whether or not a subscription
 * has been read from it yet: a plain CHP client subscribes, then asks, and its subscription may be
 * read after the request it sent later on another socket.
 */
export const CHP_ASK_GRACE_MS = 10_000;
/**
 * The same after a connection to the publisher is accepted: libzmq takes its subscriptions a
 * handshake later, the server reads them a moment after that (a client that never asks).
 */
export const CONNECT_GRACE_MS = 2_000;

export interface PublishingDeps {
  readonly pubOut: Outbox;
  readonly routerOut: Outbox;
  readonly followers: Followers;
  /** the native update stream (not there with CURVE) */
  readonly updates?: UpdateStream;
  /** the highest sequence clients may see now (ServicePolicy.publishableUpTo) */
  publishableUpTo(): number;
  /** the sequence of the last key change the store holds (a node that becomes active starts there) */
  lastKeySequence?(): number;
  /**
   * the prefixes subscribed to on the publisher now, HUGZ left out (for deletes by prefix, and
   * whether a KVPUB can reach anyone; undefined: assume something is)
   */
  subscriptions?(): Iterable<string>;
  /** a monotonic clock in ms (default: performance.now) */
  now?(): number;
  /** an entry of the event bus's namespace passed the watermark: its subscribers may get it */
  released?(entry: Entry): void;
}

export class Publishing {
  /** committed changes not yet published: clients only ever see what the passive holds */
  private readonly queue = new PublicationQueue<Entry>();
  private scheduled: NodeJS.Immediate | undefined;
  /** the last key change published (events of the bus are sequenced but never published) */
  private lastKey = 0;
  /** until when key changes go to the publisher with no subscription read (CHP_ASK_GRACE_MS) */
  private askedUntil = -Infinity;
  /** whether key changes go to the publisher, decided once per release that frees one */
  private toPublisher: boolean | undefined;

  constructor(private readonly deps: PublishingDeps) {}

  /** The sequence of the last change released (key changes and events). */
  get publishedSequence(): number {
    return this.queue.publishedSequence;
  }

  /**
   * The sequence of the last key change published: what the active's HUGZ carry, so that a
   * replica of the whole map compares its sequence with the key changes it could have seen.
   */
  get keySequence(): number {
    return this.lastKey;
  }

  /**
   * A committed change goes to clients once the passive holds it. A client that saw a change the
   * passive lacks would, after a failover, see its sequence number reused for another change
   * (promise 1); publishing in step with replication rules that out.
   */
  announce(entry: Entry): void {
    this.queue.push(entry);
    this.release();
  }

  /**
   * Publish, in order, every committed change the policy allows clients to see now. The rest
   * waits for a later event-loop turn after DRAIN_BUDGET_MS of that (promise 7), or while more
   * than RELEASE_BACKLOG messages already wait on a send queue: replies to clients (TPONG, TACK)
   * queue behind follower updates, and a client that waits longer than its server timeout for an
   * answer fails over (issue 13: a 200-write batch to 1,000 followers delayed every reply by 47 s).
   */
  release(): void {
    if (this.scheduled) return; // the scheduled turn picks up from where the last one stopped
    this.toPublisher = undefined;
    const { pubOut, routerOut } = this.deps;
    const started = performance.now();
    const outcome = this.queue.release(
      this.deps.publishableUpTo(),
      (entry) => this.releaseOne(entry),
      (released) => {
        const backlog = routerOut.length > RELEASE_BACKLOG || pubOut.length > RELEASE_BACKLOG;
        return !backlog && !(released > 0 && performance.now() - started > DRAIN_BUDGET_MS);
      },
    );
    // What this release freed goes out on the update stream as one batch per prefix.
    this.deps.updates?.flush();
    if (outcome === 'paused')
      this.scheduled = setImmediate(() => {
        this.scheduled = undefined;
        this.release();
      });
  }

  /**
   * A key change goes out, with the sequence of the key change before it when an event came in
   * between (kv/replica.ts PREV_PROPERTY); an event goes to the bus's subscribers instead.
   */
  private releaseOne(entry: Entry): void {
    if (isReserved(entry.key)) return this.deps.released?.(entry);
    const prev = this.lastKey;
    this.lastKey = entry.sequence;
    const published =
      prev === entry.sequence - 1
        ? entry
        : { ...entry, properties: `${entry.properties}${PREV_PROPERTY}=${prev}\n` };
    this.deps.updates?.add(published);
    const deletesPrefix = isDeletePrefix(entry);
    // Nobody to send a KVPUB to: not encoded, not sent (it was a third of the active's work in
    // pipelined writes). A delete by prefix always goes: it is rare, and its copies are per prefix.
    if (!deletesPrefix && !(this.toPublisher ??= this.publisherHeard())) return;
    const kvmsg = encodeKvMsg(published);
    if (!deletesPrefix) return this.publish(kvmsg, entry.key);
    // A delete by prefix: a SUB matches the key against its own prefix, so a subscriber of a
    // narrower subtree under it gets a copy keyed by that subtree, which its replica applies to
    // the same keys (issue 17).
    this.deps.pubOut.post(kvmsg);
    for (const prefix of this.deps.subscriptions?.() ?? [])
      if (prefix.length > entry.key.length && prefix.startsWith(entry.key))
        this.deps.pubOut.post(encodeKvMsg({ ...published, key: prefix }));
    this.deps.followers.publish(kvmsg, entry.key, true);
  }

  /** To the publisher, and to every follower whose prefixes match and who may read the key. */
  private publish(kvmsg: Buffer[], key: string): void {
    this.deps.pubOut.post(kvmsg);
    this.deps.followers.publish(kvmsg, key);
  }

  /**
   * A HUGZ: to the publisher, every follower and the update stream; there only to subscribers sent
   * no batch in the last `quietMs` (the active's HUGZ, which say only that it is alive; 0: to all).
   */
  heartbeat(hugz: Buffer[], quietMs: number): void {
    this.deps.pubOut.post(hugz);
    this.deps.followers.publish(hugz);
    this.deps.updates?.heartbeat(hugz, quietMs);
  }

  private now(): number {
    return this.deps.now?.() ?? performance.now();
  }

  /**
   * A subscription the server has not read yet may be in force for `ms`: a plain CHP client asked
   * for a snapshot (CHP_ASK_GRACE_MS), or connected to the publisher (CONNECT_GRACE_MS).
   */
  expectSubscriber(ms: number): void {
    this.askedUntil = Math.max(this.askedUntil, this.now() + ms);
    this.toPublisher = true;
  }

  /**
   * Whether a KVPUB may reach anyone: a plain CHP subscription read from the publisher, a follower
   * (TFOLLOW), or one not read yet (`expectSubscriber`). Native clients follow the update stream.
   */
  private publisherHeard(): boolean {
    const subscriptions = this.deps.subscriptions?.();
    return (
      this.deps.followers.size > 0 ||
      this.now() < this.askedUntil ||
      subscriptions === undefined ||
      !subscriptions[Symbol.iterator]().next().done
    );
  }

  /**
   * Drops every change not yet published (a demoted node's are not on the winner's timeline);
   * with a sequence (this node became active), what it holds counts as published.
   */
  reset(sequence?: number): void {
    this.queue.reset(sequence);
    if (sequence !== undefined) this.lastKey = this.deps.lastKeySequence?.() ?? sequence;
    clearImmediate(this.scheduled);
    this.scheduled = undefined;
  }
}
