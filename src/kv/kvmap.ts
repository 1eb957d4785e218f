/**
 * The sequenced key-value map: the state a clone server holds and a client mirrors.
 *
 * Entries are immutable; a change replaces the entry object. That makes a snapshot a plain array
 * of references taken in one step, a consistent point-in-time view that can then be streamed in
 * chunks while the map keeps changing. An entry's TTL is an absolute deadline (`expiresAt`, ms since
 * the Unix epoch) that this map only stores: the sequencer's key-value machine
 * (src/core/kv-machine.ts) schedules it and turns it into a sequenced delete on the active.
 */
import type { PackedEntry } from '../wire/index.js';
import { ArrayView } from './view.js';

export type Entry = PackedEntry;

export class KvMap {
  private readonly entries = new Map<string, Entry>();

  get size(): number {
    return this.entries.size;
  }

  get(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  /** Stores the entry, or removes the key when the body is empty (CHP's delete). */
  put(entry: Entry): void {
    if (entry.body.length === 0) {
      this.entries.delete(entry.key);
      return;
    }
    this.entries.set(entry.key, entry);
  }

  clear(): void {
    this.entries.clear();
  }

  /** Live iteration over a subtree (key prefix); '' is everything. */
  *subtree(prefix: string): IterableIterator<Entry> {
    for (const entry of this.entries.values()) {
      if (entry.key.startsWith(prefix)) yield entry;
    }
  }

  /** The point-in-time copy of `snapshot`, as a view (`KeyValueState.view`). */
  view(prefix: string): ArrayView {
    return new ArrayView(this.snapshot(prefix));
  }

  empty(): KvMap {
    return new KvMap();
  }

  /** A point-in-time copy of the entries under a prefix, safe to stream while the map changes. */
  snapshot(prefix: string): Entry[] {
    if (prefix === '') return Array.from(this.entries.values());
    const out: Entry[] = [];
    for (const entry of this.entries.values()) if (entry.key.startsWith(prefix)) out.push(entry);
    return out;
  }
}
