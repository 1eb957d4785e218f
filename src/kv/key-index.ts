/**
 * An open-addressing hash index from keys to record handles, for the packed map (packed-map.ts).
 * It holds no key: a slot is a handle (a number naming where the record lies) and the key's 32-bit
 * hash and a 32-bit signature of the directories it lies in, 16 bytes, and the owner answers
 * whether the record at a handle has a given key. A million keys so cost about 32 MB (two million
 * slots) instead of a JS string and a Map entry each. The signature lets a subtree's view pass over
 * the keys of other directories without reading their records (`signed`).
 *
 * Linear probing, at most half full, and backward-shift deletion (no tombstones), so a probe
 * stops at the first empty slot and deletes never slow later lookups. The hash is seeded per
 * process, so that keys chosen by a client cannot be aimed at one chain of slots.
 */

/** What the index asks of its owner: does the record at `handle` hold the key being probed? */
export interface KeyRecords {
  matches(handle: number): boolean;
}

const EMPTY = -1;
const MIN_SLOTS = 1024;

/** A per-process seed for `hashByte`'s chain. */
const SEED = (Math.random() * 0x100000000) >>> 0;

/** The hash of a key's UTF-8 bytes: the state before the first byte... */
export function hashStart(): number {
  return SEED;
}

/** ...each next byte of a key's UTF-8 bytes... */
export function hashByte(h: number, byte: number): number {
  h = Math.imul(h ^ byte, 0x5bd1e995);
  return h ^ (h >>> 15);
}

/** ...and the final mix, an unsigned 32-bit hash. */
export function hashEnd(h: number, length: number): number {
  h = Math.imul(h ^ length, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = hashStart();
  for (let i = start; i < end; i++) h = hashByte(h, bytes[i]!);
  return hashEnd(h, end - start);
}

export const SLASH = 0x2f;

/**
 * The bits of a directory (a key's bytes up to and including a '/') in a key's signature: two of
 * the 32, from the directory's hash (`h` is the hash state after its `length` bytes). A key's
 * signature has the bits of each of its directories but the root ('/' alone, which every key
 * under it shares: its bits would only fill the signature). Two bits make a directory's keys stand
 * apart from another directory's in all but about (bits set / 32)^2 of cases: for a key two
 * directories deep, 1 in 64, where one bit per directory, root included, failed 3 times in 32 (a
 * subtree's view then reads every key of the other directory: docs/performance.md).
 */
export function directoryBits(h: number, length: number): number {
  const d = hashEnd(h, length);
  return (1 << (d & 31)) | (1 << ((d >>> 5) & 31));
}

/** The bits of the directory that is these first `length` bytes (a prefix up to its last '/'). */
export function directoryBitsOf(bytes: Uint8Array, length: number): number {
  let h = hashStart();
  for (let i = 0; i < length; i++) h = hashByte(h, bytes[i]!);
  return directoryBits(h, length);
}

/**
 * A key's signature once byte `i` of it is hashed (`h`, the hash state after it): a '/' closes a
 * directory, whose bits it adds, but for the root. The one rule of `signatureOf`, for the loops
 * that hash a key and sign it in the same pass (kv/packed-map.ts).
 */
export function signAfter(signature: number, h: number, byte: number, i: number): number {
  return byte === SLASH && i > 0 ? signature | directoryBits(h, i + 1) : signature;
}

/** The signature of a key's UTF-8 bytes: the bits of every directory it lies in, but the root. */
export function signatureOf(bytes: Uint8Array, length: number): number {
  let h = hashStart();
  let signature = 0;
  for (let i = 0; i < length; i++) {
    h = hashByte(h, bytes[i]!);
    signature = signAfter(signature, h, bytes[i]!, i);
  }
  return signature;
}

export class KeyIndex {
  private handles = new Float64Array(MIN_SLOTS).fill(EMPTY);
  private hashes = new Uint32Array(MIN_SLOTS);
  /** each key's signature (`signatureOf`): a prefix view passes over keys outside its directory */
  private signatures = new Uint32Array(MIN_SLOTS);
  private mask = MIN_SLOTS - 1;
  private count = 0;

  constructor(private readonly records: KeyRecords) {}

  get size(): number {
    return this.count;
  }

  /** Slots allocated (memory: 16 bytes each). */
  get slots(): number {
    return this.handles.length;
  }

  /** The handle of the record the owner matches under `hash`, or -1. */
  find(hash: number): number {
    const at = this.slotOf(hash);
    return at < 0 ? EMPTY : this.handles[at]!;
  }

  /**
   * Points the matched key at `handle`, or adds it with its `signature` (`signatureOf`); returns
   * the handle it replaced, or -1.
   */
  set(hash: number, handle: number, signature: number): number {
    let at = hash & this.mask;
    for (;;) {
      const held = this.handles[at]!;
      if (held === EMPTY) break;
      if (this.hashes[at] === hash && this.records.matches(held)) {
        this.handles[at] = handle;
        return held;
      }
      at = (at + 1) & this.mask;
    }
    this.handles[at] = handle;
    this.hashes[at] = hash;
    this.signatures[at] = signature;
    this.count++;
    if (this.count * 2 > this.handles.length) this.resize(this.handles.length * 2);
    return EMPTY;
  }

  /** Removes the matched key; returns its handle, or -1 when it was not there. */
  remove(hash: number): number {
    const at = this.slotOf(hash);
    if (at < 0) return EMPTY;
    const held = this.handles[at]!;
    this.vacate(at);
    this.count--;
    if (this.handles.length > MIN_SLOTS && this.count * 8 < this.handles.length) {
      this.resize(this.handles.length / 2);
    }
    return held;
  }

  /** Whether `handle` is the current record of a key hashing to `hash`. */
  holds(hash: number, handle: number): boolean {
    return this.slotHolding(hash, handle) >= 0;
  }

  /** The record at `from` now lies at `to` (the owner moved it); false if `from` was not current. */
  move(hash: number, from: number, to: number): boolean {
    const at = this.slotHolding(hash, from);
    if (at < 0) return false;
    this.handles[at] = to;
    return true;
  }

  /** Every current handle, in no particular order. */
  all(): Float64Array {
    const out = new Float64Array(this.count);
    let n = 0;
    const { handles } = this;
    for (let i = 0; i < handles.length; i++) if (handles[i] !== EMPTY) out[n++] = handles[i]!;
    return out;
  }

  /**
   * The handles of keys whose signature has all of `bits`: every key of that directory, and the
   * few others whose signature has those bits too (a Bloom filter: the caller checks each key).
   */
  signed(bits: number): Float64Array {
    const { handles, signatures } = this;
    // Counted first, then copied: a view of a million keys grows no array of a million numbers.
    let count = 0;
    for (let i = 0; i < handles.length; i++) {
      if ((signatures[i]! & bits) === bits && handles[i] !== EMPTY) count++;
    }
    const found = new Float64Array(count);
    for (let i = 0, n = 0; n < count; i++) {
      if ((signatures[i]! & bits) === bits && handles[i] !== EMPTY) found[n++] = handles[i]!;
    }
    return found;
  }

  clear(): void {
    this.handles = new Float64Array(MIN_SLOTS).fill(EMPTY);
    this.hashes = new Uint32Array(MIN_SLOTS);
    this.signatures = new Uint32Array(MIN_SLOTS);
    this.mask = MIN_SLOTS - 1;
    this.count = 0;
  }

  private slotOf(hash: number): number {
    for (let at = hash & this.mask; ; at = (at + 1) & this.mask) {
      const held = this.handles[at]!;
      if (held === EMPTY) return -1;
      if (this.hashes[at] === hash && this.records.matches(held)) return at;
    }
  }

  private slotHolding(hash: number, handle: number): number {
    for (let at = hash & this.mask; ; at = (at + 1) & this.mask) {
      const held = this.handles[at]!;
      if (held === EMPTY) return -1;
      if (held === handle) return at;
    }
  }

  /** Empties slot `at`, shifting back later slots of its run that would otherwise be cut off. */
  private vacate(at: number): void {
    const { handles, hashes, signatures, mask } = this;
    let hole = at;
    for (let next = (at + 1) & mask; handles[next] !== EMPTY; next = (next + 1) & mask) {
      const home = hashes[next]! & mask;
      // The entry at `next` may fill the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (stays) continue;
      handles[hole] = handles[next]!;
      hashes[hole] = hashes[next]!;
      signatures[hole] = signatures[next]!;
      hole = next;
    }
    handles[hole] = EMPTY;
  }

  private resize(slots: number): void {
    const { handles, hashes, signatures } = this;
    this.handles = new Float64Array(slots).fill(EMPTY);
    this.hashes = new Uint32Array(slots);
    this.signatures = new Uint32Array(slots);
    this.mask = slots - 1;
    for (let i = 0; i < handles.length; i++) {
      if (handles[i] === EMPTY) continue;
      let at = hashes[i]! & this.mask;
      while (this.handles[at] !== EMPTY) at = (at + 1) & this.mask;
      this.handles[at] = handles[i]!;
      this.hashes[at] = hashes[i]!;
      this.signatures[at] = signatures[i]!;
    }
  }
}
