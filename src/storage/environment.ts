/**
 * Opening a data directory: the header checked with plain reads before lmdb maps the file, the
 * databases opened, the format version and the pair id checked (or written at first open), and a
 * file of the previous format upgraded in place. Every failure is a StorageError whose message is
 * one line naming the file and the problem.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { MemoryStorageOptions } from '../core/index.js';
import type { Entry } from '../kv/index.js';
import { StorageError, type StorageErrorReason } from '../errors.js';
import { RecordError, checkHeader, decodeEntry, decodeJson, encodeJson, encodeTtl } from './records.js';

/** Bumped whenever the record layout changes; a file of another version is refused. */
export const FORMAT_VERSION = 2;

export interface Databases {
  /** DIR/data.mdb */
  readonly file: string;
  readonly env: RootDatabase;
  /** the map: key -> entry record */
  readonly entries: Database<Buffer, string>;
  /** format version, pair id, the last sequence, the timeline */
  readonly meta: Database<Buffer, string>;
  /** the de-duplication window: (time, sequence) -> uuid */
  readonly dedupe: Database<Buffer, [number, number]>;
  /** the replay window: sequence -> log record */
  readonly log: Database<Buffer, number>;
  /** the keys with a TTL: key -> (deadline, sequence), so a start schedules them without a scan */
  readonly ttl: Database<Buffer, string>;
}

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

/** The entry, or an error if its key is too long for lmdb (checked before anything is written). */
export function checkKey(entry: Entry): Entry {
  const bytes = Buffer.byteLength(entry.key);
  if (bytes > MAX_KEY_BYTES) throw new Error(`a key of ${bytes} bytes (the most is ${MAX_KEY_BYTES})`);
  return entry;
}

/** Any failure to read the data directory, as one line naming the file. */
export function asStorageError(err: unknown, file: string): StorageError {
  if (err instanceof StorageError) return err;
  if (err instanceof RecordError) return new StorageError(err.reason, file, err.message);
  const message = (err as Error).message ?? String(err);
  return new StorageError('corrupt', file, `lmdb cannot read it: ${message}`, { cause: err });
}

export function openDatabases(options: LmdbStorageOptions): Databases {
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
    env = open({ path: options.dir, maxDbs: 6, noSync, overlappingSync: !noSync });
    const binary = { encoding: 'binary' } as const;
    const dbs: Databases = {
      file,
      env,
      entries: env.openDB<Buffer, string>({ name: 'entries', ...binary }),
      meta: env.openDB<Buffer, string>({ name: 'meta', ...binary }),
      dedupe: env.openDB<Buffer, [number, number]>({ name: 'dedupe', ...binary }),
      log: env.openDB<Buffer, number>({ name: 'log', ...binary }),
      ttl: env.openDB<Buffer, string>({ name: 'ttl', ...binary }),
    };
    const { meta, entries } = dbs;
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
      if (version === 1) upgradeFromVersion1(dbs);
      else if (version !== FORMAT_VERSION) {
        fail('version', `format version ${String(version)}, this build reads version ${FORMAT_VERSION}`);
      }
      const pair = decodeJson('pair', meta.get('pair'));
      if (options.pairId !== undefined && pair !== options.pairId) {
        fail('foreign-pair', `belongs to pair ${String(pair)}, not to this pair ${options.pairId}`);
      }
    }
    return dbs;
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

/** Version 1 had no TTL index (and no stored replay window, which simply starts empty). */
function upgradeFromVersion1(dbs: Databases): void {
  dbs.env.transactionSync(() => {
    for (const { key, value } of dbs.entries.getRange()) {
      const entry = decodeEntry(key, value);
      if (entry.expiresAt > 0) dbs.ttl.putSync(key, encodeTtl(key, entry.expiresAt, entry.sequence));
    }
    dbs.meta.putSync('format', encodeJson('format', FORMAT_VERSION));
  });
}
