/**
 * The sequenced key-value store of one server: a `Sequencer` driving the key-value machine over
 * a `Storage` (`MemoryStorage` unless the node opened a durable one). This is the face the server and the pair use; the sequencing itself is in
 * sequencer.ts, the map and its TTLs in kv-machine.ts, the log and dedupe window in storage.ts.
 */
import { ArrayView, FilteredView, isDeletePrefix, readAll, type Entry, type KvView } from '../kv/index.js';
import { isReserved, RESERVED_PREFIX, type RetentionRule } from '../events/index.js';
import { BusMachine } from './bus-machine.js';
import { KvMachine, type KeyValueState } from './kv-machine.js';
import { LeaseMachine } from './lease-machine.js';
import { Sequencer, SequencerStage, type CommitResult, type ReplicateResult } from './sequencer.js';
import type { Change } from './state-machine.js';
import { MemoryStorage, type MemoryStorageOptions, type ReplayLogStats, type Storage } from './storage.js';
import type { Timeline } from './timeline.js';

export { isDedupeUuid, ZERO_UUID } from './uuid-window.js';
export type { Change, CommitResult, ReplicateResult };
export type StoreOptions = MemoryStorageOptions & {
  /** the event stream's retention rules (docs/events.md); none: events are kept without limit */
  readonly retention?: readonly RetentionRule[];
};
type Machines = readonly [KvMachine, BusMachine, LeaseMachine];
export type StoreBuilder = SequencerStage<Machines>;

export class Store {
  private readonly sequencer: Sequencer<Machines>;
  private failure: Error | undefined;
  /** the sequence the store was loaded or last replaced at: key changes up to it are unknown */
  private baseSequence: number;

  /**
   * `storage` defaults to a `MemoryStorage` with these options (today's behaviour). What the
   * storage holds is loaded at once; `now` is the time its TTL deadlines are measured from.
   */
  constructor(
    options: StoreOptions,
    private readonly storage: Storage = new MemoryStorage(options),
    now = 0,
  ) {
    // A storage that keeps the values itself (lmdb) holds the map; otherwise it lives in memory.
    const kv = new KvMachine(storage.keyValues?.());
    const bus = new BusMachine(options.retention ?? []);
    const leases = new LeaseMachine();
    this.sequencer = new Sequencer([kv, bus, leases] as const, storage, now);
    this.baseSequence = this.sequencer.sequence;
    // The bus's entries live in the map (a durable one holds them from the last run): index them.
    const reserved = kv.map.view(RESERVED_PREFIX);
    try {
      for (let run = reserved.next(10_000); run.length > 0; run = reserved.next(10_000)) {
        bus.restore(run);
        leases.restore(run);
      }
    } finally {
      reserved.close();
    }
    // With leases held, which keys go with them: read from the keys' `lease=` properties.
    if (leases.size > 0) {
      const all = kv.map.view('');
      try {
        for (let run = all.next(10_000); run.length > 0; run = all.next(10_000))
          leases.restore(run.filter((e) => e.properties.includes('lease=')));
      } finally {
        all.close();
      }
    }
  }

  /** Leases and the keys that go with them (issue 17). */
  get leases(): LeaseMachine {
    return this.sequencer.machines[2];
  }

  /**
   * The sequence of the last key change (not an event of the bus), as far as this process knows:
   * for what it loaded or installed, that whole sequence counts (the safe side: a client compares
   * it with its own and resumes if it is behind).
   */
  get lastKeySequence(): number {
    return Math.max(this.baseSequence, this.bus.lastKeySequence);
  }

  /** The event bus: the stream's index and the consumer groups (issue 16). */
  get bus(): BusMachine {
    return this.sequencer.machines[1];
  }

  /**
   * Resolves once every change sequenced or replicated so far is durable (the acknowledgement
   * point); rejects with the storage's error once a write has failed, and from then on.
   */
  flush(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return this.storage.flush().catch((error: unknown) => {
      this.failure ??= error as Error;
      throw error;
    });
  }

  /** Whether waiting for `flush()` can be skipped: the storage is durable at append (memory). */
  get durableOnAppend(): boolean {
    return this.storage.durableOnAppend === true;
  }

  /** The storage's write error, once a flush has reported one: writes must be refused. */
  get failed(): Error | undefined {
    return this.failure;
  }

  get sequence(): number {
    return this.sequencer.sequence;
  }

  get map(): KeyValueState {
    return this.sequencer.machines[0].map;
  }

  /** The pair's terms, kept (and later persisted) with the log. */
  get timeline(): Timeline {
    return this.sequencer.timeline;
  }

  /** The replay log's entries, bytes and evictions to stay within its byte budget (metrics). */
  get replayLog(): ReplayLogStats {
    return this.sequencer.replayLog;
  }

  /** The oldest sequence a watch or resume may start after: the replay window reaches back to it. */
  get oldestReplayable(): number {
    const first = this.replayLog.firstSequence;
    return first === undefined ? this.sequence : first - 1;
  }

  /** Forgets the write uuids past the de-duplication horizon at `now` (the node's timer). */
  prune(now: number): void {
    this.storage.prune?.(now);
  }

  /** The sequence of an earlier write of `key` with this uuid, if it is still remembered. */
  appliedSequence(uuid: string, key: string): number | undefined {
    return this.sequencer.appliedSequence(uuid, key);
  }

  /** Active side: see `Sequencer.commit`. */
  commit(change: Change, now: number): CommitResult {
    return this.sequencer.commit(change, now);
  }

  /** Passive side: see `Sequencer.replicate`. */
  replicate(entry: Entry, now: number): ReplicateResult {
    return this.sequencer.replicate(entry, now);
  }

  /** Replace everything with a snapshot taken at `sequence` (resync), learnt at `now`. */
  reset(entries: Iterable<Entry>, sequence: number, now: number): void {
    const builder = this.builder();
    builder.add(entries, now);
    this.replaceWith(builder, sequence);
  }

  /**
   * A fresh state filled chunk by chunk while a snapshot streams in, then swapped in at once by
   * `replaceWith`: the current state stays whole until the new one is complete.
   */
  builder(): StoreBuilder {
    return this.sequencer.stage();
  }

  replaceWith(builder: StoreBuilder, sequence: number): void {
    this.sequencer.replaceWith(builder, sequence);
    this.baseSequence = sequence;
  }

  /**
   * Every machine's state at this point, for a resync or a client's snapshot: the view and its
   * sequence are fixed when this is called; the entries may be read across event-loop turns.
   */
  snapshot(): Promise<{ sequence: number; entries: Entry[] }> {
    return this.sequencer.snapshot();
  }

  /**
   * A view of the map under a prefix at this point and its sequence, to read a run at a time (a
   * snapshot stream). The caller closes the view.
   */
  view(prefix: string): { sequence: number; view: KvView } {
    return { sequence: this.sequence, view: this.map.view(prefix) };
  }

  /**
   * `view`, as a client may see it: without the event bus's reserved keys (a client's subtree in
   * that namespace sees nothing).
   */
  keysView(prefix: string): { sequence: number; view: KvView } {
    if (isReserved(prefix)) return { sequence: this.sequence, view: new ArrayView([]) };
    const { sequence, view } = this.view(prefix);
    return { sequence, view: prefix === '' ? new FilteredView(view, isReserved) : view };
  }

  /** `changesSince`, as a client may see them: without the event bus's reserved keys. */
  keyChangesSince(sequence: number, prefix = ''): Entry[] | undefined {
    if (isReserved(prefix)) return [];
    // From the whole window: a delete of a shorter prefix (issue 17) reaches this subtree too.
    const changes = this.changesSince(sequence, '');
    return changes?.filter(
      (e) =>
        (e.key.startsWith(prefix) || (isDeletePrefix(e) && prefix.startsWith(e.key))) && !isReserved(e.key),
    );
  }

  /** Keys in the map that clients see (the event bus's are not keys). */
  get keyCount(): number {
    return this.map.size - this.bus.reservedKeys - this.leases.size;
  }

  /** The map's entries under a prefix at this point (fixed now, read across turns). */
  read(prefix: string): Promise<{ sequence: number; entries: Entry[] }> {
    const { sequence, view } = this.view(prefix);
    return readAll(view).then((entries) => ({ sequence, entries }));
  }

  /** Changes after `sequence` under a prefix, or undefined if the replay log no longer reaches back. */
  changesSince(sequence: number, prefix = ''): Entry[] | undefined {
    return this.sequencer.changesSince(sequence, prefix);
  }

  /** The earliest TTL deadline of a live key, if any. */
  nextDeadline(): number | undefined {
    return this.sequencer.machines[0].nextDeadline();
  }

  /** Sequenced deletes for every key whose TTL has run out (active only, promise 5). */
  expire(now: number, newUuid: () => string, max = 10_000): Entry[] {
    return this.sequencer.expire(now, newUuid, max);
  }
}
