/**
 * Recent write uuids and the sequence each got, for de-duplication of retried writes. Clients
 * retry by the clock, so the horizon is a time: every uuid is remembered for at least `horizonMs`
 * after it was set. `maxSize` bounds the memory: when it is reached the oldest uuid goes even if
 * it is younger than the horizon, and `onEvictedEarly` is told (a retry of that write could then
 * apply twice). Pure: the caller passes the time in.
 *
 * Packed, because a server loading a million keys within `horizonMs` holds a million uuids here.
 * A Map of uuid strings plus a ring of references cost about 77 B per uuid, 69 B of it on the JS
 * heap (the 16-char string, the Map entry, the ring slot), and left the GC a million strings to
 * mark. Here nothing per uuid is a JS object; it all lives in typed arrays, outside the JS heap:
 *
 *   ring, oldest first from `tail` (wrapping), one slot per uuid remembered:
 *     bytes  Uint8Array   16 B  the uuid's latin1 bytes (its char codes)
 *     seqs   Float64Array  8 B  the sequence it was applied at
 *     times  Float64Array  8 B  when it was first set: the start of its horizon
 *     hashes Uint32Array   4 B  its hash, so that forgetting it and resizing never hash a uuid
 *                              again (that halved the cost of a set once the ring is full)
 *   index  Int32Array, a power of two of at least twice the ring's slots (load <= 0.5), open
 *     addressing with linear probing; a slot holds ring position + 1, 0 is empty: 8-16 B a uuid.
 *
 * So 44-52 B per ring slot (44 B per uuid with 1M in a full ring). The ring grows by doubling
 * when full and halves once under a quarter full (insert and lookup O(1) amortised); either
 * re-packs it oldest first at position 0, and the index is rebuilt. Forgetting the oldest deletes
 * its index slot by backward shift (later entries of its cluster move back), so there are no
 * tombstones and probes stay short. The hash is the packed map's seeded key hash
 * (kv/key-index.ts) over the 16 bytes: the slot a uuid lands in depends on a seed no client sees,
 * so a foreign client cannot craft uuids that pile into one probe chain (it is no cryptographic
 * MAC, but nothing reveals the seed).
 *
 * Only uuids of 16 chars with char codes 0-255 can be stored (every caller passes `isDedupeUuid`
 * uuids, decoded from bytes as latin1): `set` ignores any other string and `get` finds nothing
 * for it, which is what the window would answer anyway as such uuids are never de-duplicated.
 */
import { hashByte, hashEnd, hashStart } from '../kv/index.js';
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

const MIN_CAPACITY = 1024;
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

/** Index slots for a ring of `capacity`: a power of two, at least twice as many (load <= 0.5). */
function indexSize(capacity: number): number {
  let size = 2;
  while (size < 2 * capacity) size *= 2;
  return size;
}

export class UuidWindow {
  /** the ring's uuids, UUID_BYTES each */
  private bytes: Uint8Array;
  private seqs: Float64Array;
  private times: Float64Array;
  /** each ring slot's uuid hash: resizing and forgetting find a uuid's home slot without hashing it again */
  private hashes: Uint32Array;
  /** ring position + 1 of a uuid, found by probing on from its hash; 0 = empty */
  private index: Int32Array;
  /** ring index of the oldest uuid */
  private tail = 0;
  private count = 0;
  private readonly maxSize: number;
  private readonly minCapacity: number;
  /** how many uuids the cap forced out before `horizonMs` had passed */
  evictedEarly = 0;
  /**
   * The last uuid `get` did not find, and its hash. Only `set` adds a uuid (forgetting others and
   * resizing never make a missing one present), and `set` clears this, so it stays a miss.
   */
  private missed: string | undefined;
  private missedHash = 0;

  constructor(private readonly options: UuidWindowOptions) {
    this.maxSize = Math.max(1, options.maxSize);
    this.minCapacity = Math.min(this.maxSize, MIN_CAPACITY);
    this.bytes = new Uint8Array(this.minCapacity * UUID_BYTES);
    this.seqs = new Float64Array(this.minCapacity);
    this.times = new Float64Array(this.minCapacity);
    this.hashes = new Uint32Array(this.minCapacity);
    this.index = new Int32Array(indexSize(this.minCapacity));
  }

  get size(): number {
    return this.count;
  }

  /** slots in the ring: it grows with the uuids remembered and shrinks as they are forgotten */
  get capacity(): number {
    return this.seqs.length;
  }

  get(uuid: string): number | undefined {
    if (uuid.length !== UUID_BYTES) return undefined;
    const hash = hashString(uuid);
    const at = this.find(uuid, hash);
    if (at >= 0) return this.seqs[at];
    this.missed = uuid;
    this.missedHash = hash;
    return undefined;
  }

  /**
   * Remember `uuid` as applied at `sequence`, at time `now`. A uuid already remembered keeps its
   * place and its time (it is the same write), and takes the new sequence. A string that is not
   * 16 chars of 0-255 is ignored (see the header).
   */
  set(uuid: string, sequence: number, now: number): void {
    if (!storable(uuid)) return;
    // A commit asks `get` first and then sets the uuid it missed: no second hash and probe.
    const missed = uuid === this.missed;
    this.missed = undefined;
    const hash = missed ? this.missedHash : hashString(uuid);
    const known = missed ? -1 : this.find(uuid, hash);
    if (known >= 0) {
      this.seqs[known] = sequence;
      return;
    }
    this.forgetOlderThan(now - this.options.horizonMs);
    if (this.count === this.maxSize) {
      const age = now - this.times[this.tail]!;
      this.dropOldest();
      this.evictedEarly++;
      this.options.onEvictedEarly?.(age);
    }
    if (this.count === this.capacity) this.resize(Math.min(this.maxSize, 2 * this.capacity));
    const at = (this.tail + this.count) % this.capacity;
    for (let i = 0, o = at * UUID_BYTES; i < UUID_BYTES; i++) this.bytes[o + i] = uuid.charCodeAt(i);
    this.seqs[at] = sequence;
    this.times[at] = now;
    this.hashes[at] = hash;
    this.count++;
    this.insert(at, hash);
  }

  /**
   * Forgets the uuids past the horizon at `now` without a new one coming (a timer calls it), so
   * that a burst of writes does not hold its uuids until the next writes push them out.
   */
  prune(now: number): void {
    this.forgetOlderThan(now - this.options.horizonMs);
  }

  /** Forgets every uuid set at or before `cutoff`; halves the ring once it is mostly empty. */
  private forgetOlderThan(cutoff: number): void {
    while (this.count > 0 && this.times[this.tail]! <= cutoff) this.dropOldest();
    const capacity = this.capacity;
    if (capacity > this.minCapacity && this.count < capacity / 4) {
      this.resize(Math.max(this.minCapacity, Math.floor(capacity / 2)));
    }
  }

  /** The ring position of `uuid` (whose hash is `hash`), or -1. */
  private find(uuid: string, hash: number): number {
    const { index, bytes } = this;
    const mask = index.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = index[slot]!;
      if (entry === 0) return -1;
      const offset = (entry - 1) * UUID_BYTES;
      let i = 0;
      while (i < UUID_BYTES && bytes[offset + i] === uuid.charCodeAt(i)) i++;
      if (i === UUID_BYTES) return entry - 1;
    }
  }

  /** Indexes ring position `at`, whose uuid hashes to `hash`, in the first free slot from its home. */
  private insert(at: number, hash: number): void {
    const { index } = this;
    const mask = index.length - 1;
    let slot = hash & mask;
    while (index[slot] !== 0) slot = (slot + 1) & mask;
    index[slot] = at + 1;
  }

  private dropOldest(): void {
    this.unindex(this.tail);
    this.tail = (this.tail + 1) % this.capacity;
    this.count--;
  }

  /**
   * Removes ring position `at` from the index by backward shift: each later entry of the cluster
   * whose home is not between the hole and itself moves back into the hole, which moves on to
   * where it was. The cluster stays unbroken for every probe, with no tombstone left behind.
   */
  private unindex(at: number): void {
    const { index, hashes } = this;
    const mask = index.length - 1;
    let hole = hashes[at]! & mask;
    while (index[hole] !== at + 1) {
      if (index[hole] === 0) return; // not indexed (cannot happen): never spin on it
      hole = (hole + 1) & mask;
    }
    for (let slot = (hole + 1) & mask; index[slot] !== 0; slot = (slot + 1) & mask) {
      const entry = index[slot]!;
      const home = hashes[entry - 1]! & mask;
      // probes for this entry run from home to slot: they pass the hole unless it is outside that
      if (((slot - home) & mask) >= ((slot - hole) & mask)) {
        index[hole] = entry;
        hole = slot;
      }
    }
    index[hole] = 0;
  }

  /** Copies the ring, oldest first, into arrays of `capacity` (at least `count`); rebuilds the index. */
  private resize(capacity: number): void {
    const bytes = new Uint8Array(capacity * UUID_BYTES);
    const seqs = new Float64Array(capacity);
    const times = new Float64Array(capacity);
    const hashes = new Uint32Array(capacity);
    // the ring in at most two runs: tail to the end of the arrays, then from 0 where it wrapped
    const first = Math.min(this.count, this.capacity - this.tail);
    const runs: [from: number, length: number, to: number][] = [
      [this.tail, first, 0],
      [0, this.count - first, first],
    ];
    for (const [from, length, to] of runs) {
      bytes.set(this.bytes.subarray(from * UUID_BYTES, (from + length) * UUID_BYTES), to * UUID_BYTES);
      seqs.set(this.seqs.subarray(from, from + length), to);
      times.set(this.times.subarray(from, from + length), to);
      hashes.set(this.hashes.subarray(from, from + length), to);
    }
    this.bytes = bytes;
    this.seqs = seqs;
    this.times = times;
    this.hashes = hashes;
    this.tail = 0;
    this.index = new Int32Array(indexSize(capacity));
    for (let at = 0; at < this.count; at++) this.insert(at, hashes[at]!);
  }
}
