/**
 * LmdbStorage: the `Storage` of src/core/storage.ts kept in an LMDB environment (lmdb-js 3.x),
 * so that a restart loses nothing that was acknowledged (issue 15). It holds, in one file
 * (`DIR/data.mdb`):
 *
 * - `entries`: the map, key -> entry record (sequence, uuid, properties, body, absolute TTL
 *   deadline); a delete (empty body) removes the key;
 * - `meta`: format version, pair id, the last sequence, the term timeline and epoch;
 * - `dedupe`: the de-duplication window, (time, sequence) -> write uuid, oldest first;
 * - `log`: the replay window, sequence -> change, so that after a restart of both nodes a passive
 *   (or a client) resumes from its sequence instead of taking a snapshot.
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
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import {
  ReplayLog,
  Timeline,
  UuidWindow,
  isDedupeUuid,
  type MemoryStorageOptions,
  type ReplayLogStats,
  type Storage,
  type StorageStage,
  type StoredState,
  type TimelineEntry,
} from '../core/index.js';
import type { Entry } from '../kv/index.js';
import { StorageError, type StorageErrorReason } from '../errors.js';
import { DedupeRecords } from './dedupe-records.js';
import { LmdbStage } from './stage.js';
import {
  RecordError,
  checkHeader,
  decodeEntry,
  decodeJson,
  decodeLogRecord,
  encodeEntry,
  encodeJson,
  encodeLogRecord,
} from './records.js';

/** A history as Timeline takes it from storage. */
type StoredHistory = NonNullable<ConstructorParameters<typeof Timeline>[0]>;

/** Bumped whenever the record layout changes; a file of another version is refused. */
export const FORMAT_VERSION = 1;

/** The longest key (UTF-8 bytes) LMDB takes with lmdb-js's default 4 KiB pages (1978, less a margin). */
export const MAX_KEY_BYTES = 1976;

export type FsyncMode = 'always' | 'batch' | 'off';

export interface LmdbStorageOptions extends MemoryStorageOptions {
  /** the data directory (created if missing); the file is `data.mdb` inside it */
  dir: string;
  /** default 'batch' (docs/decisions.md) */
  fsync?: FsyncMode;
  /** `batch`: the longest time a commit waits for its fsync (ms, default 200) */
  syncIntervalMs?: number;
  /** the pair this directory must belong to; at first open it is written (generated if absent) */
  pairId?: string;
}

const ignore = (): void => undefined;

function checkKey(entry: Entry): Entry {
  const bytes = Buffer.byteLength(entry.key);
  if (bytes > MAX_KEY_BYTES) throw new Error(`a key of ${bytes} bytes (the most is ${MAX_KEY_BYTES})`);
  return entry;
}

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
  private loaded: Entry[] | undefined;
  /** the commit promise of the newest write: lmdb gives every write of a transaction the same one */
  private lastWrite: Promise<boolean> | undefined;
  private failure: StorageError | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly options: LmdbStorageOptions,
    private readonly file: string,
    private readonly env: RootDatabase,
    private readonly entries: Database<Buffer, string>,
    private readonly meta: Database<Buffer, string>,
    private readonly dedupeDb: Database<Buffer, [number, number]>,
    private readonly logDb: Database<Buffer, number>,
  ) {
    this.fsync = options.fsync ?? 'batch';
    this.log = new ReplayLog(options.replayLogSize, options.replayLogBytes);
    this.applied = this.newWindow();
    this.dedupe = new DedupeRecords(options.dedupeSize, options.dedupeMs);
    this.pairId = this.readMeta('pair') as string;
    this.seq = this.readMeta('sequence') as number;
    const history = (this.readMeta('timeline') ?? {}) as StoredHistory;
    this.timeline = new Timeline(history, () => this.writeTimeline());
    this.loaded = [];
    for (const { key, value } of entries.getRange()) this.loaded.push(decodeEntry(key, value));
    for (const { key, value } of dedupeDb.getRange()) {
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
    const file = join(options.dir, 'data.mdb');
    const fail = (reason: StorageErrorReason, problem: string, cause?: unknown): never => {
      throw new StorageError(reason, file, problem, { cause });
    };
    const existed = existsSync(file);
    try {
      if (existed) checkHeader(file, statSync(file).size);
    } catch (err) {
      if (err instanceof RecordError) fail(err.reason, err.message);
      fail('open', `cannot read: ${(err as Error).message}`, err);
    }
    let env: RootDatabase | undefined;
    try {
      const noSync = options.fsync === 'batch' || options.fsync === 'off';
      env = open({ path: options.dir, maxDbs: 5, noSync, overlappingSync: !noSync });
      const entries = env.openDB<Buffer, string>({ name: 'entries', encoding: 'binary' });
      const meta = env.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
      const dedupe = env.openDB<Buffer, [number, number]>({ name: 'dedupe', encoding: 'binary' });
      const log = env.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
      const format = meta.get('format');
      if (format === undefined) {
        if (existed && entries.getKeysCount() + meta.getKeysCount() > 0) {
          fail('corrupt', 'no format version recorded: not a twinstar data file');
        }
        const pairId = options.pairId ?? randomUUID();
        env.transactionSync(() => {
          meta.putSync('format', encodeJson('format', FORMAT_VERSION));
          meta.putSync('pair', encodeJson('pair', pairId));
          meta.putSync('sequence', encodeJson('sequence', 0));
        });
      } else {
        const version = decodeJson('format', format);
        if (version !== FORMAT_VERSION) {
          fail('version', `format version ${String(version)}, this build reads version ${FORMAT_VERSION}`);
        }
        const pair = decodeJson('pair', meta.get('pair'));
        if (options.pairId !== undefined && pair !== options.pairId) {
          fail('foreign-pair', `belongs to pair ${String(pair)}, not to this pair ${options.pairId}`);
        }
      }
      return new LmdbStorage(options, file, env, entries, meta, dedupe, log);
    } catch (err) {
      void env?.close().catch(() => undefined);
      if (err instanceof StorageError) throw err;
      if (err instanceof RecordError) fail(err.reason, err.message);
      // LMDB's own findings (MDB_CORRUPTED, MDB_INVALID, MDB_PAGE_NOTFOUND...) are damage; anything
      // else (permissions, a missing mount) is a directory that cannot be opened.
      const message = (err as Error).message ?? String(err);
      const reason = /MDB_|corrupt|invalid/i.test(message) ? 'corrupt' : 'open';
      return fail(reason, `lmdb cannot open it: ${message}`, err);
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

  load(): StoredState {
    const entries = this.loaded ?? [];
    this.loaded = undefined; // the machines hold them from now on
    return { sequence: this.seq, entries };
  }

  append(entry: Entry, now: number): void {
    this.seq = entry.sequence;
    const firstBefore = this.log.firstSequence ?? entry.sequence;
    this.log.append(entry);
    const firstAfter = this.log.firstSequence ?? entry.sequence; // changes before it left the window
    const uuid = isDedupeUuid(entry.uuid);
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
      this.track(this.meta.put('sequence', sequenceRecord));
      this.track(this.logDb.put(entry.sequence, logRecord));
      for (let s = firstBefore; s < firstAfter; s++) this.track(this.logDb.remove(s));
      if (seen && seenRecord) {
        for (const key of this.dedupe.add(seen)) this.track(this.dedupeDb.remove(key));
        this.track(this.dedupeDb.put(DedupeRecords.key(seen), seenRecord));
      }
    });
  }

  appliedSequence(uuid: string): number | undefined {
    return this.applied.get(uuid);
  }

  since(sequence: number, prefix: string): Entry[] | undefined {
    if (sequence === this.seq) return [];
    return this.log.since(sequence, prefix);
  }

  stage(): LmdbStage {
    return new LmdbStage(this.newWindow());
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
      stage.entries.forEach((entry, i) => this.track(this.entries.put(entry.key, records[i]!)));
      stage.records.forEach((r, i) => {
        for (const key of this.dedupe.add(r)) this.track(this.dedupeDb.remove(key));
        this.track(this.dedupeDb.put(DedupeRecords.key(r), seen[i]!));
      });
      this.track(this.meta.put('sequence', encodeJson('sequence', sequence)));
    });
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
