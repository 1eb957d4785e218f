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
 *  - `loadBatchesIntoEmpty`, the same first load straight from the native TSYNC batches as they
 *    came (checked on arrival, wire/packed.ts): each batch becomes a page of the packed map as it is
 *    (`adopt`, `putIn`: no copy), and a change is decoded from it only when read (`PackedFirstLoad`).
 *    No object, string or Buffer per key at all.
 *
 * All keep only the keys under the subtree with a body (an empty body is a delete, which a snapshot
 * never holds). For an empty map they give the same map and the same changes, in the same order
 * (test/unit/kv/snapshot-load.test.ts checks that on random snapshots). The first loads give up
 * (undefined) on a key that comes twice, which no server sends: the caller then loads the decoded
 * entries into an empty map with `loadOver`, the general path.
 */
import {
  bodyLengthAt,
  deadlineAt,
  EMPTY,
  packedKeyStartsWith,
  propertiesAt,
  recordEnd,
  sequenceAt,
  unpackEntry,
  type PackedBatch,
} from '../wire/index.js';
import type { Entry } from './kvmap.js';
import type { PackedKvMap } from './packed-map.js';
import type { ReplicaMap } from './replica-map.js';
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
 * The first load: `map` is empty. One change per key kept, in sequence order; undefined when a key
 * comes twice (see the header).
 */
export function loadIntoEmpty(
  list: readonly Entry[],
  subtree: string,
  map: ReplicaMap,
): FirstLoad | undefined {
  const kept: Entry[] = [];
  let ordered = true;
  let last = -Infinity;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i]!;
    if (entry.body.length === 0 || !entry.key.startsWith(subtree)) continue;
    if (map.put(entry)) return undefined;
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
  map: ReplicaMap,
  sequence: number,
): Change[] {
  const changes: Change[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (!entry.key.startsWith(subtree) || entry.body.length === 0) continue;
    seen.add(entry.key);
    const before = map.get(entry.key);
    map.put(entry);
    if (before === undefined || !before.body.equals(entry.body) || before.properties !== entry.properties) {
      changes.push(changeOf(entry));
    }
  }
  for (const before of map.values('')) {
    const { key } = before;
    if (seen.has(key)) continue;
    map.put(deletion(key));
    changes.push({ key, value: undefined, sequence, deleted: true, properties: before.properties });
  }
  // Deliver in sequence order; deletions of vanished keys carry the snapshot's own sequence.
  changes.sort(bySequence);
  return changes;
}

/** An entry that deletes `key` (an empty body), to put into a map. */
export function deletion(key: string): Entry {
  return { key, sequence: 0, uuid: '', properties: '', body: EMPTY, expiresAt: 0 };
}

/** Where a record of a batch starts: the batch's index * 2^32 + its offset (exact in a double). */
const SPAN = 2 ** 32;

/** A first load's changes read from its batches: each decoded when read, then the ones pushed after. */
export class PackedFirstLoad implements ChangeList {
  private readonly after: Change[] = [];

  constructor(
    private readonly frames: readonly Buffer[],
    private readonly records: Float64Array,
  ) {}

  get length(): number {
    return this.records.length + this.after.length;
  }

  at(index: number): Change | undefined {
    if (index >= this.records.length) return this.after[index - this.records.length];
    const record = this.records[index]!;
    return changeOf(unpackEntry(this.frames[Math.floor(record / SPAN)]!, { at: record % SPAN }));
  }

  push(change: Change): void {
    this.after.push(change);
  }
}

/**
 * The first load from native batches, all canonical (`PackedBatch.canonical`): `map` is empty. One
 * change per key kept, in sequence order; undefined when a key comes twice (see the header).
 */
export function loadBatchesIntoEmpty(
  batches: readonly PackedBatch[],
  subtree: string,
  map: PackedKvMap,
): PackedFirstLoad | undefined {
  const prefix = Buffer.from(subtree);
  const frames = batches.map((b) => b.frame);
  let records: Float64Array = new Float64Array(batches.reduce((n, b) => n + b.count, 0));
  let kept = 0;
  let ordered = true;
  let last = -Infinity;
  for (let f = 0; f < frames.length; f++) {
    const frame = frames[f]!;
    const page = map.adopt(frame);
    for (let at = 0; at < frame.length;) {
      const sequenceField = sequenceAt(frame, at);
      const sequence = frame.readDoubleBE(sequenceField);
      const deadline = deadlineAt(frame, propertiesAt(frame, sequenceField));
      const end = recordEnd(frame, deadline);
      if (bodyLengthAt(frame, deadline) > 0 && packedKeyStartsWith(frame, at, prefix)) {
        if (map.putIn(page, at, end)) return undefined;
        if (sequence < last) ordered = false;
        else last = sequence;
        records[kept++] = f * SPAN + at;
      }
      at = end;
    }
    map.settle(page);
  }
  records = records.subarray(0, kept);
  if (!ordered) records = inSequenceOrder(frames, records);
  return new PackedFirstLoad(frames, records);
}

/** The records sorted by their sequence, stably (rare: a server streams in about write order). */
function inSequenceOrder(frames: readonly Buffer[], records: Float64Array): Float64Array {
  const sequenceOf = (record: number): number => {
    const frame = frames[Math.floor(record / SPAN)]!;
    return frame.readDoubleBE(sequenceAt(frame, record % SPAN));
  };
  const order = Array.from(records, (record, i) => ({ record, sequence: sequenceOf(record), i }));
  order.sort((a, b) => a.sequence - b.sequence || a.i - b.i);
  return Float64Array.from(order, (o) => o.record);
}
