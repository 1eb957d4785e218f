/**
 * LmdbStorage: the `Storage` of src/core/storage.ts kept in an LMDB environment (lmdb-js 3.x),
 * so that a restart loses nothing that was acknowledged (issue 15). One file, `DIR/data.mdb`,
 * holds the databases src/storage/environment.ts lists: the map (`entries`), the last sequence,
 * the timeline, the de-duplication window, the replay window and an index of the keys with a TTL.
 * With `keyValues()` the key-value machine reads its map from here (src/storage/stored-kv.ts):
 * values stay out of the JS heap, and a start loads no entry into memory.
 *
 * Every change is written with the sequence and its uuid through lmdb's asynchronous writes:
 * lmdb-js puts every write issued in one event-loop turn into one transaction (`eventTurnBatching`,
 * its default), so a turn's appends, the timeline change they come with, or a whole `install`, are
 * committed together or not at all (group commit). The replay window is also held in memory (it
 * is read on every resume) and loaded back at start.
 *
 * Durability (`fsync`), see docs/decisions.md:
 * - `always`: `flush()` resolves once the commits are fsynced (lmdb's `overlappingSync`: the
 *   writer thread syncs right after each commit, and an OS crash rolls back to the last synced one);
 * - `batch`: `flush()` resolves at commit (in the OS page cache: a killed process loses nothing),
 *   and the file is fsynced every `syncIntervalMs` (lmdb `noSync` + `sync()`): a crash of the OS or
 *   a power cut loses at most the commits of that interval and of the fsync then running;
 * - `off`: `noSync`, never fsynced by us; the OS writes back when it likes.
 *
 * A write that fails (disk full, I/O error) makes the storage failed for good: nothing more is
 * written (a hole in the log must never be followed by later changes), every `flush()` rejects
 * with the StorageError, and what was committed before stays as it was for the next start.
 */
import type { Database, RootDatabase } from 'lmdb';
import {
  ReplayLog,
  Timeline,
  UuidWindow,
  isDedupeUuid,
  type KeyValueState,
  type ReplayLogStats,
  type Storage,
  type StorageStage,
  type StoredState,
  type TimelineEntry,
} from '../core/index.js';
import { isDeletePrefix, type Entry } from '../kv/index.js';
import { StorageError } from '../errors.js';
import { DedupeRecords, type DedupeRecord } from './dedupe-records.js';
import {
  FORMAT_VERSION,
  MAX_KEY_BYTES,
  asStorageError,
  checkKey,
  openDatabases,
  type Databases,
  type FsyncMode,
  type LmdbStorageOptions,
} from './environment.js';
import { LmdbStage } from './stage.js';
import { StoredKv, keysUnder } from './stored-kv.js';
import {
  checkEntry,
  decodeEntry,
  decodeJson,
  decodeLogRecord,
  decodeTtl,
  encodeEntry,
  encodeJson,
  encodeLogRecord,
  encodeTtl,
} from './records.js';

export { FORMAT_VERSION, MAX_KEY_BYTES, type FsyncMode, type LmdbStorageOptions };

/** A history as Timeline takes it from storage. */
type StoredHistory = NonNullable<ConstructorParameters<typeof Timeline>[0]>;

const ignore = (): void => undefined;

export class LmdbStorage implements Storage {
  readonly timeline: Timeline;
  /** the pair this directory belongs to (written at first open) */
  readonly pairId: string;
  readonly fsync: FsyncMode;
  /** fsyncs the `batch` timer made (metrics, tests) */
  syncs = 0;
  private seq: number;
  private readonly log: ReplayLog;
  private applied: UuidWindow;
  private dedupe: DedupeRecords;
  private loaded = false;
  /** the map, when the key-value machine keeps it here (`keyValues`) instead of in memory */
  private kv: StoredKv | undefined;
  private stagedKv: StoredKv | undefined;
  /** keys with a TTL record (only those: a write of any other key has no record to remove) */
  private ttlKeys = new Set<string>();
  private readonly file: string;
  private readonly env: RootDatabase;
  private readonly entries: Database<Buffer, string>;
  private readonly meta: Database<Buffer, string>;
  private readonly dedupeDb: Database<Buffer, [number, number]>;
  private readonly logDb: Database<Buffer, number>;
  private readonly ttlDb: Database<Buffer, string>;
  /** the commit promise of the newest write: lmdb gives every write of a transaction the same one */
  private lastWrite: Promise<boolean> | undefined;
  private failure: StorageError | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly options: LmdbStorageOptions,
    dbs: Databases,
  ) {
    ({ file: this.file, env: this.env, entries: this.entries, meta: this.meta } = dbs);
    ({ dedupe: this.dedupeDb, log: this.logDb, ttl: this.ttlDb } = dbs);
    this.fsync = options.fsync ?? 'batch';
    this.log = new ReplayLog(options.replayLogSize, options.replayLogBytes);
    this.applied = this.newWindow();
    this.dedupe = new DedupeRecords(options.dedupeSize, options.dedupeMs);
    this.pairId = this.readMeta('pair') as string;
    this.seq = this.readMeta('sequence') as number;
    const history = (this.readMeta('timeline') ?? {}) as StoredHistory;
    this.timeline = new Timeline(history, () => this.writeTimeline());
    for (const key of this.ttlDb.getKeys()) this.ttlKeys.add(key);
    for (const { key, value } of this.dedupeDb.getRange()) {
      const record = DedupeRecords.decode(key, value);
      this.applied.set(record.uuid, record.sequence, record.time);
      this.dedupe.restore(record);
    }
    this.loadReplayWindow();
    if (this.fsync === 'batch') {
      this.timer = setInterval(() => this.syncNow(), options.syncIntervalMs ?? 200);
      this.timer.unref();
    }
  }

  /**
   * Opens (or creates) the data directory. Throws a StorageError whose message is one line naming
   * the file and the problem: a damaged or truncated file, another format version, or a directory
   * of another pair.
   */
  static open(options: LmdbStorageOptions): LmdbStorage {
    const dbs = openDatabases(options);
    try {
      return new LmdbStorage(options, dbs);
    } catch (err) {
      void dbs.env.close().catch(ignore);
      throw asStorageError(err, dbs.file);
    }
  }

  get sequence(): number {
    return this.seq;
  }

  get replayLog(): ReplayLogStats {
    return this.log;
  }

  /** The first write error, after which nothing more is written. */
  get failed(): StorageError | undefined {
    return this.failure;
  }

  /**
   * The map, kept in this storage (values out of the JS heap). Called before `load`, it makes
   * `load` hand back only the entries with a TTL (to schedule), not the whole map.
   */
  keyValues(): KeyValueState {
    this.kv ??= new StoredKv({
      entries: this.entries,
      committed: () => this.flush(),
      staged: (kv) => (this.stagedKv = kv),
    });
    return this.kv;
  }

  /**
   * What was stored. Every entry record is checked (a damaged one stops start-up, naming the file
   * and the key); with the map kept here, none is decoded into memory, and only the keys with a
   * TTL come back, to be scheduled.
   */
  load(): StoredState {
    if (this.loaded) return { sequence: this.seq, entries: [] };
    this.loaded = true;
    const entries: Entry[] = [];
    try {
      for (const { key, value } of this.entries.getRange()) {
        if (this.kv === undefined) entries.push(decodeEntry(key, value));
        else checkEntry(key, value);
      }
      for (const { key, value } of this.kv ? this.ttlDb.getRange() : []) {
        const entry = this.kv!.get(key);
        if (entry?.sequence === decodeTtl(key, value).sequence) entries.push(entry);
      }
    } catch (err) {
      throw asStorageError(err, this.file);
    }
    return { sequence: this.seq, entries };
  }

  append(entry: Entry, now: number, remember = true): void {
    this.seq = entry.sequence;
    const firstBefore = this.log.firstSequence ?? entry.sequence;
    this.log.append(entry);
    const firstAfter = this.log.firstSequence ?? entry.sequence; // changes before it left the window
    const uuid = remember && isDedupeUuid(entry.uuid);
    if (uuid) this.applied.set(entry.uuid, entry.sequence, now);
    this.write(() => {
      // Everything is encoded and checked before the first write is queued: a throw half-way
      // would leave part of the change in the turn's transaction.
      const entryRecord = encodeEntry(checkKey(entry));
      const logRecord = encodeLogRecord(entry.key, entryRecord);
      const sequenceRecord = encodeJson('sequence', entry.sequence);
      const seen = uuid ? { time: now, sequence: entry.sequence, uuid: entry.uuid } : undefined;
      const seenRecord = seen && DedupeRecords.encode(seen);
      if (entry.body.length === 0) this.track(this.entries.remove(entry.key));
      else this.track(this.entries.put(entry.key, entryRecord));
      for (const key of isDeletePrefix(entry) ? keysUnder(this.entries, this.kv, entry.key) : []) {
        this.track(this.entries.remove(key));
        if (this.ttlKeys.delete(key)) this.track(this.ttlDb.remove(key));
      }
      this.track(this.meta.put('sequence', sequenceRecord));
      this.track(this.logDb.put(entry.sequence, logRecord));
      this.indexTtl(entry);
      for (let s = firstBefore; s < firstAfter; s++) this.track(this.logDb.remove(s));
      if (seen && seenRecord) this.storeSeen(seen, seenRecord);
    });
  }

  /** In the turn's transaction, so with the change that replaces the uuid's entry. */
  remember(uuid: string, sequence: number, now: number): void {
    this.applied.set(uuid, sequence, now, true);
    const seen = { time: now, sequence, uuid };
    this.write(() => this.storeSeen(seen, DedupeRecords.encode(seen)));
  }

  private storeSeen(seen: DedupeRecord, record: Buffer): void {
    for (const key of this.dedupe.add(seen)) this.track(this.dedupeDb.remove(key));
    this.track(this.dedupeDb.put(DedupeRecords.key(seen), record));
  }

  prune(now: number): void {
    this.applied.prune(now);
    const expired = this.dedupe.expire(now);
    if (expired.length > 0) this.write(() => expired.forEach((key) => this.track(this.dedupeDb.remove(key))));
  }

  appliedSequence(uuid: string): number | undefined {
    return this.applied.get(uuid);
  }

  since(sequence: number, prefix: string): Entry[] | undefined {
    if (sequence === this.seq) return [];
    return this.log.since(sequence, prefix);
  }

  stage(): LmdbStage {
    const kv = this.stagedKv; // made by the staged key-value machine just before (Sequencer.stage)
    this.stagedKv = undefined;
    return new LmdbStage(this.newWindow(), kv);
  }

  /** Replaces everything with the stage in one transaction: the old state or the new, never a mix. */
  install(stage: StorageStage, sequence: number): void {
    if (!(stage instanceof LmdbStage)) throw new TypeError('a stage of another storage');
    this.applied = stage.uuids;
    this.log.clear();
    this.seq = sequence;
    this.dedupe = new DedupeRecords(this.options.dedupeSize, this.options.dedupeMs);
    this.write(() => {
      const records = stage.entries.map((entry) => encodeEntry(checkKey(entry))); // before any write
      const seen = stage.records.map((r) => DedupeRecords.encode(r));
      this.track(this.entries.clearAsync() as Promise<unknown> as Promise<boolean>);
      this.track(this.dedupeDb.clearAsync() as Promise<unknown> as Promise<boolean>);
      this.track(this.logDb.clearAsync() as Promise<unknown> as Promise<boolean>);
      this.track(this.ttlDb.clearAsync() as Promise<unknown> as Promise<boolean>);
      this.ttlKeys = new Set();
      for (const entry of stage.entries) this.indexTtl(entry);
      stage.entries.forEach((entry, i) => this.track(this.entries.put(entry.key, records[i]!)));
      stage.records.forEach((r, i) => this.storeSeen(r, seen[i]!));
      this.track(this.meta.put('sequence', encodeJson('sequence', sequence)));
    });
    if (stage.kv) {
      this.kv = stage.kv;
      stage.kv.installed(this.flush());
    }
  }

  /**
   * Resolves once every change appended so far is committed, and under `always` fsynced too.
   * Rejects with the StorageError once a write has failed.
   */
  async flush(): Promise<void> {
    const pending = this.lastWrite;
    if (pending !== undefined) await pending.catch(() => undefined);
    if (this.failure) throw this.failure;
    if (this.fsync === 'always' && pending !== undefined) {
      await this.env.flushed;
      if (this.failure) throw this.failure;
    }
  }

  /** Flushes (and under `batch` fsyncs) what was appended, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch(() => undefined);
    if (this.fsync === 'batch' && !this.failure) await this.syncNow();
    // After a failed commit lmdb's close() waits for a flush that never comes: a failed file is
    // left to the process's exit (the node keeps serving reads until then).
    if (!this.failure) await this.env.close();
  }

  private write(action: () => void): void {
    if (this.failure || this.closed) return;
    try {
      action();
      this.dirty = true;
    } catch (err) {
      this.fail(err);
    }
  }

  private track(promise: Promise<boolean>): void {
    if (promise === this.lastWrite) return;
    this.lastWrite = promise;
    promise.catch((err: unknown) => this.fail(err));
    // lmdb-js 3.5 also makes a promise of its own for the turn's batch (in a setImmediate it
    // scheduled at the turn's first write, so before this one) and leaves it unhandled: a failed
    // commit would reject it and take the process down. Its `committed` is that promise.
    setImmediate(() => void this.env.committed.then(ignore, ignore));
  }

  private fail(err: unknown): void {
    // lmdb rejects a failed commit with a generic error whose `commitError` promise rejects with
    // the cause (EIO, ENOSPC...): handled here, so nothing escapes as an unhandled rejection.
    const detail = (err as { commitError?: Promise<unknown> } | undefined)?.commitError;
    if (detail && typeof detail.then === 'function') detail.then(undefined, () => undefined);
    if (this.failure) return;
    const problem = `write failed, nothing more is written: ${(err as Error).message ?? String(err)}`;
    this.failure = new StorageError('write', this.file, problem, { cause: err });
  }

  private writeTimeline(): void {
    const history: StoredHistory & { entries: TimelineEntry[] } = {
      entries: this.timeline.list(),
      epoch: this.timeline.epoch,
      history: this.timeline.history,
    };
    this.write(() => this.track(this.meta.put('timeline', encodeJson('timeline', history))));
  }

  /** `batch`: fsyncs what was committed since the last sync. */
  private async syncNow(): Promise<void> {
    if (!this.dirty || this.failure) return;
    this.dirty = false;
    const pending = this.lastWrite;
    if (pending !== undefined) await pending.catch(() => undefined);
    if (this.failure) return;
    const env = this.env as unknown as { sync(done: (err?: unknown) => void): void };
    await new Promise<void>((resolve) => {
      env.sync((err?: unknown) => {
        if (err) this.fail(err);
        else this.syncs++;
        resolve();
      });
    });
  }

  /** Keeps the TTL index in step with a change (inside the caller's write). */
  private indexTtl(entry: Entry): void {
    const { key } = entry;
    if (entry.expiresAt > 0 && entry.body.length > 0) {
      this.ttlKeys.add(key);
      this.track(this.ttlDb.put(key, encodeTtl(key, entry.expiresAt, entry.sequence)));
    } else if (this.ttlKeys.delete(key)) {
      this.track(this.ttlDb.remove(key));
    }
  }

  /**
   * The replay window as stored, back in memory. It must end at the stored sequence; what the
   * window's bounds (perhaps smaller since a configuration change) leave out is removed.
   */
  private loadReplayWindow(): void {
    for (const { key, value } of this.logDb.getRange()) this.log.append(decodeLogRecord(key, value));
    if (this.log.lastSequence !== this.seq) this.log.clear();
    const first = this.log.firstSequence ?? Infinity;
    const stale = [...this.logDb.getKeys({ end: first })];
    if (stale.length > 0) this.write(() => stale.forEach((s) => this.track(this.logDb.remove(s))));
  }

  private readMeta(key: string): unknown {
    const raw = this.meta.get(key);
    return raw === undefined ? undefined : decodeJson(key, raw);
  }

  private newWindow(): UuidWindow {
    const { dedupeSize, dedupeMs, onEvictedEarly } = this.options;
    return new UuidWindow({ maxSize: dedupeSize, horizonMs: dedupeMs, onEvictedEarly });
  }
}
