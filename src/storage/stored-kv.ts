/**
 * The key-value map of a durable node, kept in lmdb instead of the JS heap (issue 15: RSS per 1M
 * keys). The `entries` database LmdbStorage writes with every change is the map; this class only
 * reads it, through an overlay of the changes whose commit has not resolved yet (lmdb-js commits
 * a turn's writes later, on its writer thread, and a read sees only what is committed).
 *
 * - `get` looks in the overlay, then in lmdb (decoding the record: a copy per read);
 * - `view(prefix)` fixes its view at the call: a fresh lmdb read transaction plus a copy of the
 *   overlay under the prefix; it is read a run at a time, across event-loop turns, and holds the
 *   transaction until closed. Every change is either committed before that transaction began, or
 *   still in the overlay (an entry leaves the overlay only once its commit resolved, and lmdb
 *   renews its read transaction before that), so the view is exactly the map at the call;
 * - while a snapshot streams in (resync), an `empty()` map collects the staged entries in its
 *   overlay; from the install until its commit resolves, lmdb still holds the old state, so the
 *   new map reads the overlay alone.
 *
 * Memory: a key costs nothing in the heap once its change is committed; the overlay holds the
 * last turn or two of changes (and a whole staged snapshot during a resync).
 */
import type { Database, Transaction } from 'lmdb';
import type { KeyValueState } from '../core/index.js';
import { isReserved } from '../events/index.js';
import {
  ArrayView,
  packRecords,
  type Entry,
  type KvView,
  type PackedRecord,
  type SizedKey,
  type Written,
} from '../kv/index.js';
import { FIXED_BYTES as PACKED_FIXED_BYTES, packedSize } from '../wire/index.js';
import { decodeEntry, decodeWrite } from './records.js';

export interface StoredKvHost {
  readonly entries: Database<Buffer, string>;
  /** Resolves once every change appended so far is committed (rejects if the storage failed). */
  committed(): Promise<void>;
  /** A map made by `empty()`: the storage installs it with the next staged snapshot. */
  staged(kv: StoredKv): void;
}

export class StoredKv implements KeyValueState {
  /** changes not known to be committed, by key; a delete is an entry with an empty body */
  private readonly overlay = new Map<string, Entry>();
  private unsettled: Entry[] = [];
  private settling = false;
  private count: number;
  /** staging: filled by a snapshot, not yet installed (nothing of it is in lmdb) */
  private staging: boolean;
  /** installed, but lmdb still holds the state from before the install: read the overlay alone */
  private baseStale = false;

  constructor(
    private readonly host: StoredKvHost,
    options: { staging?: boolean } = {},
  ) {
    this.staging = options.staging === true;
    // lmdb's own count (mdb_stat), not getCount(), which walks every entry at start-up
    this.count = this.staging ? 0 : (host.entries.getStats() as { entryCount: number }).entryCount;
  }

  get size(): number {
    return this.count;
  }

  /** Overlay entries not yet committed (memory bound checks, tests). */
  get pending(): number {
    return this.overlay.size;
  }

  get(key: string): Entry | undefined {
    return this.read(key, decodeEntry);
  }

  /** `get`'s uuid and sequence, read without copying the body (de-duplication asks for each write). */
  currentWrite(key: string): Written | undefined {
    return this.read(key, decodeWrite);
  }

  /** The key's uncommitted change, else its stored record through `decode`; a delete reads as none. */
  private read<T>(key: string, decode: (key: string, raw: Buffer) => T): T | Entry | undefined {
    const pending = this.overlay.get(key);
    if (pending !== undefined) return pending.body.length === 0 ? undefined : pending;
    if (this.staging || this.baseStale) return undefined;
    const raw = this.host.entries.get(key);
    return raw === undefined ? undefined : decode(key, raw);
  }

  /** Keys under `prefix` with a change not yet committed (a delete by prefix removes them too). */
  overlayKeys(prefix: string): string[] {
    const keys: string[] = [];
    for (const key of this.overlay.keys()) if (key.startsWith(prefix)) keys.push(key);
    return keys;
  }

  put(entry: Entry): void {
    const existed = this.has(entry.key);
    const deletes = entry.body.length === 0;
    if (existed && deletes) this.count--;
    else if (!existed && !deletes) this.count++;
    this.overlay.set(entry.key, entry);
    if (this.staging) return; // kept until the install that writes it is committed
    this.unsettled.push(entry);
    if (this.settling) return;
    this.settling = true;
    // After this turn's appends (the microtask runs once the synchronous work is done): once they
    // are committed, lmdb answers for them and the overlay lets them go.
    queueMicrotask(() => {
      this.settling = false;
      const batch = this.unsettled;
      this.unsettled = [];
      this.host.committed().then(
        () => this.forget(batch),
        () => undefined, // a failed storage keeps its overlay: the node refuses writes from now on
      );
    });
  }

  view(prefix: string): KvView {
    const pending: Entry[] = [];
    const shadowed = new Set<string>();
    for (const [key, entry] of this.overlay) {
      if (!key.startsWith(prefix)) continue;
      shadowed.add(key);
      if (entry.body.length > 0) pending.push(entry);
    }
    if (this.staging || this.baseStale) return new ArrayView(pending);
    const { entries } = this.host;
    entries.resetReadTxn(); // a transaction that sees every commit resolved so far
    const held = { transaction: entries.useReadTransaction(), done: false };
    return new LmdbView(entries, held, prefix, shadowed, pending);
  }

  empty(): StoredKv {
    const kv = new StoredKv(this.host, { staging: true });
    this.host.staged(kv);
    return kv;
  }

  /**
   * The storage wrote this staged map as the new state (`commit` resolves when lmdb holds it): it
   * is the live map from now on, read from its overlay until then.
   */
  installed(commit: Promise<void>): void {
    this.staging = false;
    this.baseStale = true;
    const staged = [...this.overlay.values()];
    commit.then(
      () => {
        this.baseStale = false;
        this.forget(staged);
      },
      () => undefined,
    );
  }

  private has(key: string): boolean {
    const pending = this.overlay.get(key);
    if (pending !== undefined) return pending.body.length > 0;
    if (this.staging || this.baseStale) return false;
    return this.host.entries.doesExist(key);
  }

  /** Committed: lmdb answers for these now, unless a newer change of the key is still pending. */
  private forget(batch: readonly Entry[]): void {
    for (const entry of batch) if (this.overlay.get(entry.key) === entry) this.overlay.delete(entry.key);
  }
}

/** A read transaction shared by the cursors of one view, released when any of them is closed. */
interface Held {
  readonly transaction: Transaction;
  done: boolean;
}

/**
 * A cursor over the committed entries under a prefix in a held read transaction (in key order,
 * each run read with one range call), the overlay's copy taking the place of the keys it shadows,
 * then the overlay's live entries.
 */
class LmdbView implements KvView {
  private start: string;
  private skip: string | undefined;
  private baseDone = false;
  private pendingAt = 0;

  constructor(
    private readonly entries: Database<Buffer, string>,
    private readonly held: Held,
    private readonly prefix: string,
    private readonly shadowed: ReadonlySet<string>,
    private readonly pending: readonly Entry[],
  ) {
    this.start = prefix;
  }

  next(max: number): Entry[] {
    return this.read(max, decodeEntry, (entry) => entry);
  }

  nextPacked(max: number): PackedRecord[] {
    return packRecords(this.next(max));
  }

  nextSizes(max: number): SizedKey[] {
    // a record is 23 bytes of CRC and header, then uuid, properties and body: the packed size
    // follows from its length, with no decoding
    return this.read(
      max,
      (key, value) => ({ key, bytes: PACKED_FIXED_BYTES + Buffer.byteLength(key) + value.length - 23 }),
      (entry) => ({ key: entry.key, bytes: packedSize(entry) }),
    );
  }

  private read<T>(
    max: number,
    fromRecord: (key: string, value: Buffer) => T,
    fromPending: (entry: Entry) => T,
  ): T[] {
    const out: T[] = [];
    if (this.held.done) return out;
    while (!this.baseDone && out.length < max) {
      const { transaction } = this.held;
      let read = 0;
      for (const { key, value } of this.entries.getRange({
        start: this.start,
        transaction,
        limit: max + 1,
      })) {
        read++;
        if (key === this.skip) continue; // the last key of the previous run
        if (!key.startsWith(this.prefix)) {
          this.baseDone = true;
          break;
        }
        this.start = key;
        this.skip = key;
        if (!this.shadowed.has(key)) out.push(fromRecord(key, value));
        if (out.length === max) break;
      }
      if (read <= 1 && out.length < max) this.baseDone = true; // nothing beyond the last key read
    }
    while (out.length < max && this.pendingAt < this.pending.length)
      out.push(fromPending(this.pending[this.pendingAt++]!));
    return out;
  }

  again(): LmdbView {
    return new LmdbView(this.entries, this.held, this.prefix, this.shadowed, this.pending);
  }

  close(): void {
    if (this.held.done) return;
    this.held.done = true;
    this.held.transaction.done();
  }
}

/** Keys under a prefix, committed or not, but none of the event bus's: what a delete by prefix removes. */
export function keysUnder(
  entries: Database<Buffer, string>,
  kv: StoredKv | undefined,
  prefix: string,
): Set<string> {
  const keys = new Set(kv?.overlayKeys(prefix) ?? []);
  for (const key of entries.getKeys({ start: prefix })) {
    if (!key.startsWith(prefix)) break;
    keys.add(key);
  }
  for (const key of keys) if (isReserved(key)) keys.delete(key);
  return keys;
}
