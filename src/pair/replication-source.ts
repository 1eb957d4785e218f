/**
 * The active's side of replication. Every committed change joins a batch that goes to the passive
 * at the end of the current event-loop turn (one socket call for many changes). The passive answers
 * with the sequence it has applied; a native write is acknowledged to its client only once that
 * sequence covers it (promise 2). With no passive counted ("attached"), writes are acknowledged at
 * once as degraded, and the pair says so.
 *
 * The passive may also ask for everything after a sequence: it gets the changes from the replay
 * log if that still reaches back and the request is on our timeline, or else a snapshot, streamed
 * one chunk per event-loop turn so heartbeats keep flowing (promise 7).
 */
import { chunked, packEntries, type Durability, type RelayedAck } from '../wire/index.js';
import { eachRun, type Entry } from '../kv/index.js';
import { type Store } from '../core/index.js';
import { NotActiveError } from '../errors.js';
import type { PeerChannel } from './peer-link.js';
import type { Timeline } from '../core/index.js';
import type { Logger } from '../log/index.js';

interface Waiter {
  readonly sequence: number;
  readonly since: number;
  resolve(durability: Durability): void;
  reject(error: Error): void;
}

export interface SourceOptions {
  channel: PeerChannel;
  store: Store;
  timeline: Timeline;
  snapshotChunk: number;
  /** byte budget of one packed batch: the passive's peer socket refuses bigger frames */
  chunkBytes: number;
  now: () => number;
  /** says whether a passive that asks resumes or gets a snapshot */
  log?: Logger;
}

export class ReplicationSource {
  private running = false;
  private batch: Entry[] = [];
  private flushScheduled = false;
  private waiters: Waiter[] = [];
  private ackedSequence = 0;
  private attachedNow = false;
  private streamId: number | undefined;
  private forgivenAt = 0;
  private degradedUpTo = 0;
  private relays: RelayedAck[] = [];
  /** the passive sends the TACKs relayed to it (its heartbeat says so) */
  peerRelays = false;

  constructor(private readonly options: SourceOptions) {}

  start(): void {
    this.running = true;
    this.ackedSequence = 0;
  }

  /** This node stopped being active: nothing more is acknowledged from here. */
  stop(state: string): void {
    this.running = false;
    this.attachedNow = false;
    this.batch = [];
    this.relays = [];
    this.streamId = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(new NotActiveError(state));
  }

  get attached(): boolean {
    return this.attachedNow;
  }

  get acked(): number {
    return this.ackedSequence;
  }

  /** Sequences the passive has not yet confirmed (0 when no passive is attached). */
  get lag(): number {
    return this.attachedNow ? Math.max(0, this.options.store.sequence - this.ackedSequence) : 0;
  }

  /** Age of the oldest write still waiting for the passive, in ms (0 if none). */
  oldestWaitMs(now: number): number {
    const first = this.waiters[0];
    return first === undefined ? 0 : now - Math.max(first.since, this.forgivenAt);
  }

  /** This node was frozen: waits count from now, not from before the time it did not observe. */
  forgiveWaits(now: number): void {
    this.forgivenAt = now;
  }

  /**
   * The node decides whether the passive counts. Detaching releases every waiting write as
   * degraded: the active alone now vouches for them.
   */
  setAttached(attached: boolean): void {
    if (attached === this.attachedNow) return;
    this.attachedNow = attached;
    if (!attached) this.release(Infinity, 'degraded');
    // Everything committed up to now may have been acknowledged or published while no passive
    // counted: the pair stays degraded until the passive confirms it holds all of it.
    else this.degradedUpTo = this.options.store.sequence;
  }

  /**
   * The passive holds every change that was acknowledged or published while it did not count.
   * Until then the pair is still degraded, although new writes already wait for the passive.
   */
  get caughtUp(): boolean {
    return this.attachedNow && this.ackedSequence >= this.degradedUpTo;
  }

  onChange(entry: Entry): void {
    if (!this.running) return;
    this.batch.push(entry);
    this.scheduleFlush();
  }

  /**
   * Hands a write's TACK to the passive, to send once it holds the write: three one-way hops
   * instead of four (issue 18). It goes with the changes when they have not left yet (in memory),
   * else right after them, on the same ordered link. This node still answers when the passive
   * acknowledges, so a TACK the passive cannot deliver (the client has no connection to it) costs
   * the client nothing but that hop. False when not handed over.
   */
  relay(ack: RelayedAck): boolean {
    if (!this.running || !this.attachedNow || !this.peerRelays) return false;
    this.relays.push(ack);
    this.scheduleFlush();
    return true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  durable(sequence: number): Promise<Durability> {
    if (!this.running) return Promise.reject(new NotActiveError('not active'));
    if (!this.attachedNow) return Promise.resolve('degraded');
    if (sequence <= this.ackedSequence) return Promise.resolve('replicated');
    return new Promise((resolve, reject) => {
      this.waiters.push({ sequence, since: this.options.now(), resolve, reject });
    });
  }

  onAck(sequence: number, term: string): void {
    if (!this.running || term !== this.options.timeline.term) return; // an ack from another era
    if (sequence <= this.ackedSequence) return;
    this.ackedSequence = sequence;
    if (this.attachedNow) this.release(sequence, 'replicated');
  }

  onRequest(streamId: number, fromSequence: number, term: string): void {
    if (!this.running) return;
    this.flush(); // everything already committed goes first, in order
    const { store, timeline, channel, snapshotChunk, chunkBytes } = this.options;
    const changes = timeline.includes(fromSequence, term) ? store.changesSince(fromSequence) : undefined;
    const asked = { fromSequence, sequence: store.sequence };
    if (changes === undefined) {
      this.options.log?.info(
        asked,
        'the passive gets a snapshot: its history is not ours up to there, or the replay log does not reach back',
      );
      void this.streamSnapshot(streamId);
      return;
    }
    this.options.log?.info({ ...asked, changes: changes.length }, 'the passive resumes from its sequence');
    this.streamId = streamId;
    for (const slice of chunked(changes, snapshotChunk, chunkBytes))
      channel.send({ type: 'data', term: timeline.term, batch: packEntries(slice) });
    channel.send({ type: 'resume-end', streamId, sequence: store.sequence, timeline: timeline.list() });
  }

  private async streamSnapshot(streamId: number): Promise<void> {
    this.streamId = streamId;
    const { store, timeline, channel, snapshotChunk, chunkBytes } = this.options;
    // The view and its sequence are fixed at this call; it is read a run at a time (from a durable
    // map, a million entries never sit in the heap at once).
    const { view, sequence } = store.view('');
    const current = () => this.streamId === streamId && this.running; // not superseded or demoted
    await eachRun(view, snapshotChunk, (run) => {
      for (const slice of chunked(run, snapshotChunk, chunkBytes)) {
        if (!current()) return false;
        channel.send({ type: 'snapshot-chunk', streamId, batch: packEntries(slice) });
      }
    });
    if (!current()) return;
    // Changes committed while we streamed were batched to the passive as usual; it holds them
    // and applies those above `sequence` once this end marker arrives.
    channel.send({ type: 'snapshot-end', streamId, sequence, timeline: timeline.list() });
  }

  private flush(): void {
    this.flushScheduled = false;
    const entries = this.batch;
    const acks = this.relays;
    this.batch = [];
    this.relays = [];
    if (!this.running) return;
    const { channel, timeline, chunkBytes, store } = this.options;
    const slices = Array.from(chunked(entries, Infinity, chunkBytes));
    // The acknowledgements ride with the last slice of changes: the passive applies them and
    // takes the TACKs in one go, before it acknowledges (a message of their own could come a turn
    // after its acknowledgement, and the TACKs a turn later than they could).
    slices.forEach((slice, i) => {
      const last = i === slices.length - 1 && acks.length > 0;
      channel.send({
        type: 'data',
        term: timeline.term,
        batch: packedChanges(store, slice),
        ...(last ? { acks } : {}),
      });
    });
    if (slices.length === 0 && acks.length > 0) channel.send({ type: 'relay', term: timeline.term, acks });
  }

  private release(upTo: number, durability: Durability): void {
    let i = 0;
    while (i < this.waiters.length && this.waiters[i]!.sequence <= upTo)
      this.waiters[i++]!.resolve(durability);
    if (i > 0) this.waiters = this.waiters.slice(i);
  }
}

/**
 * A slice of the changes just committed, in the packed form: the replay log's bytes when it holds
 * them, one after another (it packed each as it was appended), else packed again.
 */
function packedChanges(store: Store, slice: readonly Entry[]): Buffer {
  const first = slice[0]!.sequence;
  const last = slice[slice.length - 1]!.sequence;
  const held = last - first + 1 === slice.length ? store.replayLog.packed(first, last) : undefined;
  return held ?? packEntries(slice);
}
