/**
 * The key-value map of a durable node, kept in lmdb instead of the JS heap (issue 15: RSS per 1M
 * keys). The `entries` database LmdbStorage writes with every change is the map; this class only
 * reads it, through an overlay of the changes whose commit has not resolved yet (lmdb-js commits
 * a turn's writes later, on its writer thread, and a read sees only what is committed).
 *
 * - `get` looks in the overlay, then in lmdb (decoding the record: a copy per read);
 * - `read(prefix)` fixes its view at the call: a fresh lmdb read transaction plus a copy of the
 *   overlay under the prefix, then reads the range in chunks across event-loop turns. Every change
 *   is either committed before that transaction began, or still in the overlay (an entry leaves
 *   the overlay only once its commit resolved, and lmdb renews its read transaction before that),
 *   so the view is exactly the map at the call;
 * - while a snapshot streams in (resync), an `empty()` map collects the staged entries in its
 *   overlay; from the install until its commit resolves, lmdb still holds the old state, so the
 *   new map reads the overlay alone.
 *
 * Memory: a key costs nothing in the heap once its change is committed; the overlay holds the
 * last turn or two of changes (and a whole staged snapshot during a resync).
 */
import type { Database } from 'lmdb';
import type { KeyValueState } from '../core/index.js';
import type { Entry } from '../kv/index.js';
import { decodeEntry } from './records.js';

/** Entries decoded per event-loop turn by `read`. */
const READ_CHUNK = 10_000;

export interface StoredKvHost {
  readonly entries: Database<Buffer, string>;
  /** Resolves once every change appended so far is committed (rejects if the storage failed). */
  committed(): Promise<void>;
  /** A map made by `empty()`: the storage installs it with the next staged snapshot. */
  staged(kv: StoredKv): void;
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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
    this.count = this.staging ? 0 : host.entries.getCount();
  }

  get size(): number {
    return this.count;
  }

  /** Overlay entries not yet committed (memory bound checks, tests). */
  get pending(): number {
    return this.overlay.size;
  }

  get(key: string): Entry | undefined {
    const pending = this.overlay.get(key);
    if (pending !== undefined) return pending.body.length === 0 ? undefined : pending;
    if (this.staging || this.baseStale) return undefined;
    const raw = this.host.entries.get(key);
    return raw === undefined ? undefined : decodeEntry(key, raw);
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

  async read(prefix: string): Promise<Entry[]> {
    const { entries } = this.host;
    const pending = new Map<string, Entry>();
    for (const [key, entry] of this.overlay) if (key.startsWith(prefix)) pending.set(key, entry);
    const out: Entry[] = [];
    if (!this.staging && !this.baseStale) {
      entries.resetReadTxn(); // a transaction that sees every commit resolved so far
      const transaction = entries.useReadTransaction();
      try {
        let start = prefix;
        let skipFirst = false;
        for (;;) {
          let n = 0;
          let last: string | undefined;
          for (const { key, value } of entries.getRange({ start, transaction, limit: READ_CHUNK + 1 })) {
            if (skipFirst && n === 0 && key === start) {
              n++;
              continue;
            }
            if (!key.startsWith(prefix)) return this.withPending(out, pending);
            if (!pending.has(key)) out.push(decodeEntry(key, value));
            last = key;
            n++;
          }
          if (last === undefined || n <= READ_CHUNK) break;
          start = last;
          skipFirst = true;
          await yieldToLoop();
        }
      } finally {
        transaction.done();
      }
    }
    return this.withPending(out, pending);
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

  private withPending(out: Entry[], pending: Map<string, Entry>): Entry[] {
    for (const entry of pending.values()) if (entry.body.length > 0) out.push(entry);
    return out;
  }
}
