/**
 * Loading a full snapshot into a replica's map (`Replica.loadSnapshot`), pure: the entries of a
 * snapshot as of some sequence replace what the map held, and the changes the application sees are
 * worked out on the way. Two ways, one result:
 *
 *  - `loadOver`, the general one: a map that already holds keys (a resync) is compared key by key;
 *    a key whose value or properties differ is one change, a key the snapshot no longer has is one
 *    deletion (carrying the snapshot's sequence), all in sequence order;
 *  - `loadIntoEmpty`, the first load (a late joiner's million keys): nothing to compare and
 *    nothing to delete, so no lookup and no set of seen keys; and since a server streams its keys
 *    mostly in the order they were written, they are sorted only when they are not already in
 *    order (the sort is stable, so skipping it on sorted input changes nothing). Each of its
 *    changes is its entry as set, so it keeps the entries and makes a change only when one is read
 *    (`FirstLoad`): a joiner that nobody listens to yet makes none of a million objects.
 *
 * Both keep only the keys under the subtree with a body (an empty body is a delete, which a
 * snapshot never holds). For an empty map they give the same map and the same changes, in the same
 * order (test/unit/kv/snapshot-load.test.ts checks that on random snapshots).
 */
import type { Entry } from './kvmap.js';
import type { Change } from './replica.js';

const bySequence = (a: { sequence: number }, b: { sequence: number }) => a.sequence - b.sequence;

/** Changes read by position: an array of them, or a first load's (`FirstLoad`). */
export interface ChangeList {
  readonly length: number;
  at(index: number): Change | undefined;
}

/** Every change of a list, as an array. */
export function listChanges(list: ChangeList): Change[] {
  return Array.from({ length: list.length }, (_, i) => list.at(i)!);
}

/**
 * A first load's changes: one per entry kept, in sequence order, each made when it is read; then
 * the changes pushed after them (the held updates the replica applies after the snapshot).
 */
export class FirstLoad implements ChangeList {
  private readonly after: Change[] = [];

  constructor(private readonly entries: readonly Entry[]) {}

  get length(): number {
    return this.entries.length + this.after.length;
  }

  at(index: number): Change | undefined {
    const entry = this.entries[index];
    return entry === undefined ? this.after[index - this.entries.length] : changeOf(entry);
  }

  push(change: Change): void {
    this.after.push(change);
  }
}

/** The change a live entry makes: its key set to its value (also the live path's, replica.ts). */
export function changeOf(entry: Entry): Change {
  return {
    key: entry.key,
    value: entry.body,
    sequence: entry.sequence,
    deleted: false,
    properties: entry.properties,
  };
}

/**
 * The first load: `map` is empty. One change per key kept, in sequence order. A key that comes
 * twice (no server sends that, but a snapshot is input) is what the general path is for: the map
 * is cleared and the snapshot loaded by `loadOver`, so the result is the same either way.
 */
export function loadIntoEmpty(
  entries: Iterable<Entry>,
  subtree: string,
  map: Map<string, Entry>,
): FirstLoad | Change[] {
  const list = Array.isArray(entries) ? (entries as readonly Entry[]) : Array.from(entries);
  const kept: Entry[] = [];
  let ordered = true;
  let last = -Infinity;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i]!;
    if (entry.body.length === 0 || !entry.key.startsWith(subtree)) continue;
    const size = map.size;
    map.set(entry.key, entry);
    if (map.size === size) {
      map.clear();
      return loadOver(list, subtree, map, -1); // the map is empty: no deletion, no sequence needed
    }
    if (entry.sequence < last) ordered = false;
    else last = entry.sequence;
    kept.push(entry);
  }
  if (!ordered) kept.sort(bySequence);
  return new FirstLoad(kept);
}

/**
 * A snapshot as of `sequence` over a map that may hold keys: one change per key whose value or
 * properties differ from before, one deletion per key the snapshot no longer has, in sequence order.
 */
export function loadOver(
  entries: Iterable<Entry>,
  subtree: string,
  map: Map<string, Entry>,
  sequence: number,
): Change[] {
  const changes: Change[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (!entry.key.startsWith(subtree) || entry.body.length === 0) continue;
    seen.add(entry.key);
    const before = map.get(entry.key);
    map.set(entry.key, entry);
    if (before === undefined || !before.body.equals(entry.body) || before.properties !== entry.properties) {
      changes.push(changeOf(entry));
    }
  }
  for (const [key, before] of map) {
    if (seen.has(key)) continue;
    map.delete(key);
    changes.push({ key, value: undefined, sequence, deleted: true, properties: before.properties });
  }
  // Deliver in sequence order; deletions of vanished keys carry the snapshot's own sequence.
  changes.sort(bySequence);
  return changes;
}
