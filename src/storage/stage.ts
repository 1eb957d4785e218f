/** What LmdbStorage keeps of a snapshot while it streams in, until `install` writes it at once. */
import { isDedupeUuid, type StorageStage, type UuidWindow } from '../core/index.js';
import type { Entry } from '../kv/index.js';
import type { DedupeRecord } from './dedupe-records.js';
import type { StoredKv } from './stored-kv.js';

/** Entries of a snapshot, kept until `install` writes them in one transaction. */
export class LmdbStage implements StorageStage {
  readonly entries: Entry[] = [];
  readonly uuids: UuidWindow;
  readonly records: DedupeRecord[] = [];

  constructor(
    window: UuidWindow,
    /** the staged key-value map, when the storage keeps the map (it becomes the live one) */
    readonly kv?: StoredKv,
  ) {
    this.uuids = window;
  }

  add(entry: Entry, now: number, remember = true): void {
    if (entry.body.length > 0) this.entries.push(entry);
    if (remember && isDedupeUuid(entry.uuid)) {
      this.uuids.set(entry.uuid, entry.sequence, now);
      this.records.push({ time: now, sequence: entry.sequence, uuid: entry.uuid });
    }
  }
}
