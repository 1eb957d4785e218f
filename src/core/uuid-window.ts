/**
 * Recent write uuids and the sequence each got, for de-duplication of retried writes. Clients
 * retry by the clock, so the horizon is a time: every uuid is remembered for at least `horizonMs`
 * after it was set. `maxSize` bounds the memory: when it is reached the oldest uuid goes even if
 * it is younger than the horizon, and `onEvictedEarly` is told (a retry of that write could then
 * apply twice). Pure: the caller passes the time in.
 *
 * The sequencer puts a uuid here once the entry its write made is replaced or deleted (until then
 * the entry answers for it: core/state-machine.ts `CurrentWrites`), and the uuid of a change that
 * leaves no entry. Packed, because a node overwriting keys at full load holds millions here.
 * A Map of uuid strings plus a ring of references cost about 77 B per uuid, 69 B of it on the JS
 * heap, and left the GC a million strings to mark. Here nothing per uuid is a JS object:
 *
 *   ring, oldest first from serial `tail`, one position per uuid remembered, in segments of
 *   SEGMENT positions allocated as the newest uuid enters one and dropped as the oldest leaves it:
 *     bytes  Uint8Array   16 B  the uuid's latin1 bytes (its char codes)
 *     seqs   Float64Array  8 B  the sequence it was applied at
 *     times  Float64Array  8 B  when it was first set: the start of its horizon
 *   index  Int32Array, a power of two, open addressing with linear probing; a slot holds ring
 *     position + 1 (0 is empty): 8-16 B a uuid.
 *
 * So 40-56 B per uuid. Nothing is ever copied or re-indexed in one go: a node at full write load
 * holds millions of uuids here, and rebuilding its index in one call took ~250 ms at 1M and
 * ~530 ms at 2M, long enough for the peer of that node to take it for dead (a false failover in
 * the bench). Forgetting the oldest only moves `tail` (its index slot stays as a tombstone: a
 * slot whose position is no longer live, skipped by lookups, taken over by inserts). When slots
 * in use pass LOAD_MAX of the index, or the index is far larger than what is live, a new one is
 * started for the live count and filled a few uuids per `set` (more per `prune`), oldest first;
 * meanwhile the old one, untouched, answers for the uuids not yet moved. The hash is the packed
 * map's seeded key hash (kv/key-index.ts) over the 16 bytes: the slot a uuid lands in depends on
 * a seed no client sees, so a foreign client cannot craft uuids that pile into one probe chain
 * (it is no cryptographic MAC, but nothing reveals the seed).
 *
 * Only uuids of 16 chars with char codes 0-255 can be stored (every caller passes `isDedupeUuid`
 * uuids, decoded from bytes as latin1): `set` ignores any other string and `get` finds nothing
 * for it, which is what the window would answer anyway as such uuids are never de-duplicated.
 */
import { hashByte, hashBytes, hashEnd, hashStart } from '../kv/index.js';
import { UUID_BYTES } from '../wire/index.js';

/** The uuid of a change the server makes itself (a group op, a lease): never de-duplicated. */
export const ZERO_UUID = '\0'.repeat(UUID_BYTES);

/** Only a proper 16-byte, non-zero uuid identifies a write; foreign clients may send anything. */
export function isDedupeUuid(uuid: string): boolean {
  return uuid.length === UUID_BYTES && uuid !== ZERO_UUID;
}

export interface UuidWindowOptions {
  /** every uuid is remembered at least this long (ms) unless `maxSize` forces it out */
  horizonMs: number;
  /** the most uuids remembered at once: the memory bound */
  maxSize: number;
  /** the cap forced out a uuid only `ageMs` old, younger than `horizonMs` */
  onEvictedEarly?: (ageMs: number) => void;
}

/** Ring positions per segment (a power of two), and its log2. */
export const SEGMENT = 4096;
const SEGMENT_BITS = 12;
const MIN_INDEX = 2048;
/** The most uuids a window can hold: its ring has twice as many positions, and 2^30 fit an Int32. */
export const MAX_SIZE = 2 ** 29;
/** An index takes a new one once this share of its slots holds an entry, live or not. */
const LOAD_MAX = 0.6;
/** uuids moved to a new index per `set` and per `prune` (see the header) */
const MOVE_PER_SET = 4;
const MOVE_PER_PRUNE = 16_384;

/** The hash of a uuid string, from its char codes (no allocation): the packed map's key hash. */
function hashString(uuid: string): number {
  let h = hashStart();
  for (let i = 0; i < UUID_BYTES; i++) h = hashByte(h, uuid.charCodeAt(i));
  return hashEnd(h, UUID_BYTES);
}

/** Whether the window can hold `uuid`: 16 chars, each a byte. */
function storable(uuid: string): boolean {
  if (uuid.length !== UUID_BYTES) return false;
  for (let i = 0; i < UUID_BYTES; i++) if (uuid.charCodeAt(i) > 0xff) return false;
  return true;
}

/** Index slots for `live` uuids: a power of two, at least 2.5 slots a uuid. */
function indexSize(live: number): number {
  let size = MIN_INDEX;
  while (size < 2.5 * live) size *= 2;
  return size;
}

class Segment {
  readonly bytes = new Uint8Array(SEGMENT * UUID_BYTES);
  readonly seqs = new Float64Array(SEGMENT);
  readonly times = new Float64Array(SEGMENT);
}

export class UuidWindow {
  /** ring positions: a power of two of at least 2 `maxSize`; serial s lies at position s % positions */
  private readonly positions: number;
  private readonly segments: (Segment | undefined)[];
  private allocated = 0;
  /** serial of the oldest uuid (serials only grow) */
  private tail = 0;
  private count = 0;
  private index = new Int32Array(MIN_INDEX);
  /** slots of `index` holding an entry, live or not */
  private used = 0;
  /**
   * While a new index is filled: the one before it, untouched, which answers for the serials in
   * [moved, end) not yet moved (those still live).
   */
  private old: Int32Array | undefined;
  private moved = 0;
  private end = 0;
  private readonly maxSize: number;
  /** how many uuids the cap forced out before `horizonMs` had passed */
  evictedEarly = 0;
  /**
   * The last uuid `get` did not find, and its hash. Only `set` adds a uuid (forgetting others and
   * moving them to a new index never make a missing one present), and `set` clears this.
   */
  private missed: string | undefined;
  private missedHash = 0;

  constructor(private readonly options: UuidWindowOptions) {
    this.maxSize = Math.max(1, options.maxSize);
    // A position + 1 must fit the index's Int32 slots.
    if (this.maxSize > MAX_SIZE) throw new RangeError(`maxSize ${this.maxSize} is above ${MAX_SIZE}`);
    // Twice what can be live: the live uuids never wrap round into the segment the oldest left.
    let positions = 2 * SEGMENT;
    while (positions < 2 * this.maxSize) positions *= 2;
    this.positions = positions;
    this.segments = new Array<Segment | undefined>(positions / SEGMENT).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  /** ring positions allocated: they follow the uuids remembered, a segment at a time */
  get capacity(): number {
    return this.allocated * SEGMENT;
  }

  /** uuids still to be moved to a new index (0: none under way) */
  get rebuilding(): number {
    return this.old === undefined ? 0 : Math.max(0, this.end - Math.max(this.moved, this.tail));
  }

  get(uuid: string): number | undefined {
    if (uuid.length !== UUID_BYTES) return undefined;
    const hash = hashString(uuid);
    const at = this.find(uuid, hash);
    if (at >= 0) return this.segment(at).seqs[at & (SEGMENT - 1)];
    this.missed = uuid;
    this.missedHash = hash;
    return undefined;
  }

  /**
   * Remember `uuid` as applied at `sequence`, at time `now`. A uuid already remembered keeps its
   * place and its time (it is the same write), and takes the new sequence. A string that is not
   * 16 chars of 0-255 is ignored (see the header). `absent`: the caller knows the window does not
   * hold it (the uuid of an entry that was current until now), so it is not looked for.
   */
  set(uuid: string, sequence: number, now: number, absent = false): void {
    if (!storable(uuid)) return;
    // A commit asks `get` first and then sets the uuid it missed: no second hash and probe.
    const missed = uuid === this.missed;
    this.missed = undefined;
    const hash = missed ? this.missedHash : hashString(uuid);
    const known = missed || absent ? -1 : this.find(uuid, hash);
    if (known >= 0) {
      this.segment(known).seqs[known & (SEGMENT - 1)] = sequence;
      return;
    }
    this.forgetOlderThan(now - this.options.horizonMs);
    if (this.count === this.maxSize) {
      const age = now - this.timeOf(this.tail);
      this.dropOldest();
      this.evictedEarly++;
      this.options.onEvictedEarly?.(age);
    }
    const at = (this.tail + this.count) % this.positions;
    const slot = at >> SEGMENT_BITS;
    let segment = this.segments[slot];
    if (segment === undefined) {
      segment = this.segments[slot] = new Segment();
      this.allocated++;
    }
    const within = at & (SEGMENT - 1);
    for (let i = 0, o = within * UUID_BYTES; i < UUID_BYTES; i++) segment.bytes[o + i] = uuid.charCodeAt(i);
    segment.seqs[within] = sequence;
    segment.times[within] = now;
    this.count++;
    this.insert(at, hash);
    this.upkeep(MOVE_PER_SET);
  }

  /**
   * Forgets the uuids past the horizon at `now` without a new one coming (a timer calls it), so
   * that a burst of writes does not hold its uuids until the next writes push them out.
   */
  prune(now: number): void {
    this.forgetOlderThan(now - this.options.horizonMs);
    this.upkeep(MOVE_PER_PRUNE);
  }

  /** Forgets every uuid set at or before `cutoff`. */
  private forgetOlderThan(cutoff: number): void {
    while (this.count > 0 && this.timeOf(this.tail) <= cutoff) this.dropOldest();
  }

  private dropOldest(): void {
    const at = this.tail % this.positions;
    this.tail++;
    this.count--;
    // The segment is left once its last position is, or once nothing is left at all (the next
    // uuid then takes a new one).
    if ((at & (SEGMENT - 1)) === SEGMENT - 1 || this.count === 0) this.release(at >> SEGMENT_BITS);
  }

  private release(slot: number): void {
    if (this.segments[slot] === undefined) return;
    this.segments[slot] = undefined;
    this.allocated--;
  }

  private segment(at: number): Segment {
    return this.segments[at >> SEGMENT_BITS]!;
  }

  private timeOf(serial: number): number {
    const at = serial % this.positions;
    return this.segment(at).times[at & (SEGMENT - 1)]!;
  }

  /** The serial of the live uuid at position `at`, or -1 when none is there. */
  private liveSerial(at: number): number {
    const offset = (at - (this.tail % this.positions) + this.positions) % this.positions;
    return offset < this.count ? this.tail + offset : -1;
  }

  /** Whether position `at` holds `uuid`. */
  private holds(at: number, uuid: string): boolean {
    const { bytes } = this.segment(at);
    const offset = (at & (SEGMENT - 1)) * UUID_BYTES;
    let i = 0;
    while (i < UUID_BYTES && bytes[offset + i] === uuid.charCodeAt(i)) i++;
    return i === UUID_BYTES;
  }

  /** The ring position of `uuid` (whose hash is `hash`), or -1. */
  private find(uuid: string, hash: number): number {
    const { index } = this;
    const mask = index.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = index[slot]!;
      if (entry === 0) break;
      if (this.liveSerial(entry - 1) >= 0 && this.holds(entry - 1, uuid)) return entry - 1;
    }
    const { old } = this;
    if (old === undefined) return -1;
    const oldMask = old.length - 1;
    for (let slot = hash & oldMask; ; slot = (slot + 1) & oldMask) {
      const entry = old[slot]!;
      if (entry === 0) return -1;
      // Only a live uuid not yet moved counts: the rest are in the new index, or forgotten.
      const serial = this.liveSerial(entry - 1);
      if (serial >= this.moved && serial < this.end && this.holds(entry - 1, uuid)) return entry - 1;
    }
  }

  /** Indexes position `at` in the first slot from its home that is empty or no longer live. */
  private insert(at: number, hash: number): void {
    const { index } = this;
    const mask = index.length - 1;
    let slot = hash & mask;
    for (; index[slot] !== 0; slot = (slot + 1) & mask) if (this.liveSerial(index[slot]! - 1) < 0) break;
    if (index[slot] === 0) this.used++;
    index[slot] = at + 1;
  }

  /** Moves up to `budget` uuids to a new index under way; starts one when this one needs it. */
  private upkeep(budget: number): void {
    if (this.old !== undefined) this.move(budget);
    const size = this.index.length;
    const crowded = this.used >= LOAD_MAX * size;
    const oversized = size > MIN_INDEX && 8 * this.count < size;
    if (!crowded && !oversized) return;
    if (this.old !== undefined) this.move(Infinity); // (the new index has room for far longer)
    this.old = this.index;
    this.index = new Int32Array(indexSize(this.count));
    this.used = 0;
    this.moved = this.tail;
    this.end = this.tail + this.count;
    this.move(budget);
  }

  private move(budget: number): void {
    let serial = Math.max(this.moved, this.tail);
    const last = Math.min(this.end, serial + budget);
    for (; serial < last; serial++) {
      const at = serial % this.positions;
      const offset = (at & (SEGMENT - 1)) * UUID_BYTES;
      this.insert(at, hashBytes(this.segment(at).bytes, offset, offset + UUID_BYTES));
    }
    this.moved = serial;
    if (serial >= this.end) this.old = undefined;
  }
}
