/**
 * The passive's side of replication. On becoming passive it asks the active for everything after
 * its own sequence; the answer is either the missing changes (a resume) or a whole snapshot, which
 * is built up chunk by chunk in a fresh state and swapped in only when complete. Then it follows the
 * active's change batches in strict sequence order. A gap (a batch that does not start right after
 * our sequence) triggers a new request; nothing ever waits without a timeout, and a stream that
 * stops making progress is asked for again (promise 7).
 */
import { highestOf, KvMsgError, type Limits, type RelayedAck } from '../wire/index.js';
import { type CloneServer } from '../server/index.js';
import { HeldUpdates, type Entry } from '../kv/index.js';
import { type StoreBuilder } from '../core/index.js';
import { unpackEntries } from '../wire/index.js';
import type { PeerChannel } from './peer-link.js';
import type { Timeline, TimelineEntry } from '../core/index.js';

type Phase = 'idle' | 'requesting' | 'snapshot' | 'following';

export interface SinkOptions {
  channel: PeerChannel;
  server: CloneServer;
  timeline: Timeline;
  /** how long a request or a stream may go without progress before it is asked for again */
  retryMs: number;
  now: () => number;
  /** called for every change applied, with its uuid (the pending list matches on it) */
  onApplied: (entry: Entry) => void;
  /** a batch from the active could not be unpacked */
  onMalformed: (error: KvMsgError) => void;
  limits: Limits;
  /** sends a TACK the active relayed, once this node holds (and has flushed) the write */
  answer?: (ack: RelayedAck) => void;
}

/** deeper than a client's: the peer link's queues hold a million messages (src/pair/peer-link.ts) */
const HOLD_LIMIT = 1_000_000;

export class ReplicationSink {
  private phase: Phase = 'idle';
  private streamId = 0;
  private builder: StoreBuilder | undefined;
  private readonly held = new HeldUpdates(HOLD_LIMIT);
  private lastProgress = 0;
  private resumeAskedAt: number | undefined;
  private ackScheduled = false;
  /** relayed TACKs for writes applied here, sent with the next acknowledgement */
  private relayed: RelayedAck[] = [];

  constructor(private readonly options: SinkOptions) {}

  /** Our replica is complete and following the active in order. */
  get synced(): boolean {
    return this.phase === 'following' && this.resumeAskedAt === undefined;
  }

  start(): void {
    this.request();
  }

  stop(): void {
    this.phase = 'idle';
    this.builder = undefined;
    this.held.clear();
    this.relayed = [];
    this.resumeAskedAt = undefined;
  }

  /** Called every heartbeat: re-ask if a request or stream has stalled. */
  tick(now: number): void {
    if (this.phase === 'idle') return;
    const stalled = now - this.lastProgress > this.options.retryMs;
    if ((this.phase === 'requesting' || this.phase === 'snapshot') && stalled) this.request();
    else if (this.resumeAskedAt !== undefined && now - this.resumeAskedAt > this.options.retryMs)
      this.request();
  }

  onData(batch: Buffer, term: string, acks?: readonly RelayedAck[]): void {
    if (this.phase === 'idle') return;
    const entries = this.unpack(batch);
    if (entries === undefined) return;
    if (this.phase !== 'following') {
      // Live changes say nothing about our request: it may have been lost (the active's SUB had
      // not reconnected yet). Only an answer to it counts as progress, or we would never re-ask.
      for (const entry of entries) this.held.hold(entry);
      return;
    }
    this.lastProgress = this.options.now();
    this.apply(entries);
    if (acks !== undefined) this.onRelay(term, acks);
  }

  /**
   * TACKs the active relays for writes it sent us: each goes to its client once we hold the write,
   * after our own flush, exactly when our acknowledgement to the active goes. One for a write we
   * have not applied (held while we resync, or past a gap) is dropped: the active answers it.
   */
  onRelay(term: string, acks: readonly RelayedAck[]): void {
    if (!this.synced || term !== this.options.timeline.term || !this.options.answer) return;
    const applied = this.options.server.store.sequence;
    for (const ack of acks) if (highestOf(ack.sequences) <= applied) this.relayed.push(ack);
    if (this.relayed.length > 0) this.scheduleAck();
  }

  onSnapshotChunk(streamId: number, batch: Buffer): void {
    if (streamId !== this.streamId || this.phase === 'idle') return;
    const entries = this.unpack(batch);
    if (entries === undefined) return;
    if (this.phase !== 'snapshot') {
      this.phase = 'snapshot';
      this.builder = this.options.server.store.builder();
      this.resumeAskedAt = undefined;
    }
    this.lastProgress = this.options.now();
    this.builder!.add(entries, this.lastProgress); // a snapshot's uuids count from when they arrive
  }

  onSnapshotEnd(streamId: number, sequence: number, timeline: readonly TimelineEntry[]): void {
    if (streamId !== this.streamId || this.phase === 'idle') return;
    const builder = this.builder ?? this.options.server.store.builder(); // an empty map sends no chunk
    this.builder = undefined;
    this.options.server.store.replaceWith(builder, sequence);
    this.options.timeline.adopt(timeline);
    this.follow();
  }

  onResumeEnd(streamId: number, timeline: readonly TimelineEntry[]): void {
    if (streamId !== this.streamId || this.phase === 'idle') return;
    this.options.timeline.adopt(timeline);
    this.follow();
  }

  /** A batch that cannot be unpacked is dropped and counted; we ask again for what follows. */
  private unpack(batch: Buffer): Entry[] | undefined {
    try {
      return unpackEntries(batch, this.options.limits);
    } catch (error) {
      if (!(error instanceof KvMsgError)) throw error;
      this.options.onMalformed(error);
      this.request();
      return undefined;
    }
  }

  private follow(): void {
    this.phase = 'following';
    this.resumeAskedAt = undefined;
    this.lastProgress = this.options.now();
    const { store } = this.options.server;
    this.apply(this.held.release(() => store.sequence));
    // what could not be held comes after what was: ask for it now
    if (this.held.consumeOverflow() && this.resumeAskedAt === undefined) this.request();
    this.scheduleAck();
  }

  private apply(entries: Iterable<Entry>): void {
    const { server, onApplied } = this.options;
    const now = this.options.now();
    let applied = false;
    for (const entry of entries) {
      const result = server.applyReplicated(entry, now);
      if (result === 'applied') {
        applied = true;
        onApplied(entry);
      } else if (result === 'gap') {
        if (this.resumeAskedAt === undefined) this.request();
        break;
      }
    }
    if (applied) this.scheduleAck();
  }

  private request(): void {
    const { channel, server, timeline, now } = this.options;
    this.streamId = (this.streamId + 1) >>> 0;
    this.lastProgress = now();
    if (this.phase === 'following') this.resumeAskedAt = this.lastProgress;
    else {
      this.phase = 'requesting';
      this.builder = undefined;
    }
    channel.send({
      type: 'request',
      streamId: this.streamId,
      fromSequence: server.store.sequence,
      term: timeline.term,
    });
  }

  private scheduleAck(): void {
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => {
      this.ackScheduled = false;
      const { channel, server, timeline, answer } = this.options;
      const sequence = server.store.sequence;
      const term = timeline.term;
      const relayed = this.relayed;
      this.relayed = [];
      // Only what is durable in this node's own storage is acknowledged (under fsync always: on
      // disk). A storage that failed never acknowledges again: the active stops counting on us.
      server.store.flush().then(
        () => {
          if (this.phase !== 'following' || timeline.term !== term) return;
          for (const ack of relayed) answer?.(ack); // the clients first: they wait on it
          channel.send({ type: 'ack', sequence, term });
        },
        () => undefined,
      );
    });
  }
}
