/**
 * Where a client's replica keeps its keys: what the first load brought stays packed, what changes
 * after it is kept as objects. Pure: no I/O.
 *
 *  - `loaded`, a `PackedKvMap`: a first load from native batches adopts them as its pages
 *    (snapshot-load.ts), so a late joiner of a million keys holds them in ~200 bytes each instead
 *    of an object, two strings and a Buffer (~600), and decodes none of them to join;
 *  - `live`, a `Map` of entry objects: every key put after that. A watcher applies each update
 *    with a `Map.set` and reads it back as it is, as before the packed load: writing a record per
 *    update into pages cost a watcher ~1.5 µs more per delivery (pages filled, compacted and
 *    collected), a fifth of what 100 watchers spend at 1,000 updates/s.
 *
 * A key is in one of the two at most: a put takes it out of `loaded` first (a lookup, until
 * nothing is left there). Nothing is ever written into `loaded` after the load, so nothing in it is
 * compacted: a record taken out stays in its page until the page holds nothing live and is
 * dropped, and `loaded` never holds more than the first load did.
 */
import type { Entry } from './kvmap.js';
import { PackedKvMap } from './packed-map.js';

export class ReplicaMap {
  /** the first load's keys, packed; read it, or load into it while the replica is empty */
  readonly loaded = new PackedKvMap();
  private readonly live = new Map<string, Entry>();

  get size(): number {
    return this.loaded.size + this.live.size;
  }

  get(key: string): Entry | undefined {
    return this.live.get(key) ?? (this.loaded.size === 0 ? undefined : this.loaded.get(key));
  }

  /** The sequence and deadline of the key's entry, without decoding a packed one. */
  stamp(key: string): { sequence: number; expiresAt: number } | undefined {
    const entry = this.live.get(key);
    if (entry !== undefined) return entry;
    return this.loaded.size === 0 ? undefined : this.loaded.stamp(key);
  }

  /** Stores the entry, or removes the key when the body is empty; whether the key was held. */
  put(entry: Entry): boolean {
    const { key } = entry;
    const wasLoaded = this.loaded.size > 0 && this.loaded.remove(key);
    if (entry.body.length === 0) return this.live.delete(key) || wasLoaded;
    const size = this.live.size;
    this.live.set(key, entry);
    return wasLoaded || this.live.size === size;
  }

  /** The entries under `prefix` now: the loaded ones in about the order they were written, then the rest. */
  values(prefix = ''): Entry[] {
    const out = this.loaded.size === 0 ? [] : this.loaded.view(prefix).next(this.loaded.size);
    for (const entry of this.live.values()) if (entry.key.startsWith(prefix)) out.push(entry);
    return out;
  }
}
