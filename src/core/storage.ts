/**
 * Where the sequenced log lives: the sequence number, the replay window, the de-duplication
 * window of write uuids and the pair's history (terms and their epochs). The sequencer writes
 * every change here, so a durable engine (lmdb next, REVIEW.md §3.1) implements this interface and
 * nothing above it changes: it appends each change in the same transaction as the sequence, the
 * uuid and the history, makes a batch durable at `flush()`, and hands back at `load()` what it
 * holds after a restart.
 *
 * `MemoryStorage` is today's behaviour: nothing survives the process, every change is durable as
 * soon as it is appended.
 */
import type { Entry } from '../kv/index.js';
import type { KeyValueState } from './kv-machine.js';
import { ReplayLog } from './replay-log.js';
import { Timeline, type StoredHistory } from './timeline.js';
import { UuidWindow, isDedupeUuid, type UuidWindowOptions } from './uuid-window.js';

/** What a storage holds at start. */
export interface StoredState {
  /** the last sequence number stored (0: nothing) */
  readonly sequence: number;
  /** the machines' state at `sequence`, as entries to restore */
  readonly entries: readonly Entry[];
}

/** The replay window's size, for metrics. */
export interface ReplayLogStats {
  /** the first change the window holds (undefined: none) */
  readonly firstSequence: number | undefined;
  readonly size: number;
  readonly bytes: number;
  readonly evictedForBytes: number;
  /** changes `first` to `last` packed (replay-log.ts), or undefined unless all are held */
  packed(first: number, last: number): Buffer | undefined;
}

/**
 * A replacement filled while a snapshot streams in (resync), installed at once by
 * `Storage.install`: what is stored stays whole until the new state is complete.
 */
export interface StorageStage {
  /**
   * A snapshot entry that arrived at `now`: unless `remember` is false (the map keeps the entry,
   * and with it the uuid), its uuid counts for de-duplication from then.
   */
  add(entry: Entry, now: number, remember?: boolean): void;
}

export interface Storage {
  /** The last sequence number appended or installed. */
  readonly sequence: number;
  /**
   * The pair's terms and epoch, stored with the log: a restarted node must know which history it
   * holds and which epoch it may not reuse.
   */
  readonly timeline: Timeline;
  readonly replayLog: ReplayLogStats;
  /** What survived the last run (called once, before anything is appended). */
  load(): StoredState;
  /**
   * One sequenced change, exactly the next sequence, applied at `now`: appended atomically with
   * the new sequence number and, if it carries a write uuid and `remember` is not false, that
   * uuid. The sequencer passes false for a change the map keeps as its key's current entry: the
   * entry holds the uuid, and `remember` takes it over once the entry is replaced.
   */
  append(entry: Entry, now: number, remember?: boolean): void;
  /**
   * A write uuid the de-duplication window takes over at `now`: the entry it made, at `sequence`,
   * is replaced or deleted by the change appended next in this turn (in the same transaction).
   */
  remember(uuid: string, sequence: number, now: number): void;
  /** The sequence of an earlier write with this uuid, while the window remembers it. */
  appliedSequence(uuid: string): number | undefined;
  /** Changes after `sequence` under a prefix, or undefined if the log no longer reaches back. */
  since(sequence: number, prefix: string): Entry[] | undefined;
  /** An empty replacement for `install`. */
  stage(): StorageStage;
  /** Replace everything with a staged snapshot taken at `sequence`; the replay window starts over. */
  install(stage: StorageStage, sequence: number): void;
  /** Resolves once every change appended so far is durable. */
  flush(): Promise<void>;
  /**
   * True when every append is durable as soon as it returns (memory: nothing more to wait for),
   * so callers on the hot path can skip awaiting `flush()`.
   */
  readonly durableOnAppend?: boolean;
  /** Forgets the write uuids past the de-duplication horizon at `now` (called by a timer). */
  prune?(now: number): void;
  /**
   * A storage that keeps the values itself gives the key-value machine its map (values stay out
   * of the JS heap); without it the map lives in memory. Called once, before `load()`.
   */
  keyValues?(): KeyValueState;
}

export interface MemoryStorageOptions {
  replayLogSize: number;
  /** bytes the replay log may hold (default: no byte bound, only the count) */
  replayLogBytes?: number;
  /** the most write uuids remembered for de-duplication of retried writes (a memory bound) */
  dedupeSize: number;
  /** a uuid the window takes is remembered at least this long (ms) unless `dedupeSize` forces it out */
  dedupeMs: number;
  /** `dedupeSize` forced out a uuid only `ageMs` old, younger than `dedupeMs` */
  onEvictedEarly?: (ageMs: number) => void;
}

class MemoryStage implements StorageStage {
  constructor(readonly applied: UuidWindow) {}

  add(entry: Entry, now: number, remember = true): void {
    if (remember && isDedupeUuid(entry.uuid)) this.applied.set(entry.uuid, entry.sequence, now);
  }
}

export class MemoryStorage implements Storage {
  readonly timeline: Timeline;
  private seq = 0;
  private readonly log: ReplayLog;
  private applied: UuidWindow;

  constructor(
    private readonly options: MemoryStorageOptions,
    history: StoredHistory = {},
  ) {
    this.log = new ReplayLog(options.replayLogSize, options.replayLogBytes);
    this.applied = new UuidWindow(this.windowOptions());
    this.timeline = new Timeline(history);
  }

  get sequence(): number {
    return this.seq;
  }

  get replayLog(): ReplayLogStats {
    return this.log;
  }

  load(): StoredState {
    return { sequence: this.seq, entries: [] };
  }

  append(entry: Entry, now: number, remember = true): void {
    this.seq = entry.sequence;
    this.log.append(entry);
    if (remember && isDedupeUuid(entry.uuid)) this.applied.set(entry.uuid, entry.sequence, now);
  }

  remember(uuid: string, sequence: number, now: number): void {
    this.applied.set(uuid, sequence, now, true);
  }

  appliedSequence(uuid: string): number | undefined {
    return this.applied.get(uuid);
  }

  since(sequence: number, prefix: string): Entry[] | undefined {
    if (sequence === this.seq) return [];
    return this.log.since(sequence, prefix);
  }

  stage(): MemoryStage {
    return new MemoryStage(new UuidWindow(this.windowOptions()));
  }

  install(stage: StorageStage, sequence: number): void {
    if (!(stage instanceof MemoryStage)) throw new TypeError('a stage of another storage');
    this.applied = stage.applied;
    this.log.clear();
    this.seq = sequence;
  }

  prune(now: number): void {
    this.applied.prune(now);
  }

  /** Nothing survives the process, so an append is as durable as it will ever be at once. */
  readonly durableOnAppend: boolean = true;

  flush(): Promise<void> {
    return Promise.resolve();
  }

  private windowOptions(): UuidWindowOptions {
    const { dedupeSize, dedupeMs, onEvictedEarly } = this.options;
    return { maxSize: dedupeSize, horizonMs: dedupeMs, onEvictedEarly };
  }
}
