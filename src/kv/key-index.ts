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
/**
 * A slot holds its handle + 1, and 0 when it is free: a new table is then all free as allocated,
 * with no fill, and its pages are first touched as its slots are used (filling 64 MB for the
 * table of 4M keys took ~100-200 ms in one call).
 */
const FREE = 0;
const MIN_SLOTS = 1024;
/** Slots of the table before a resize moved per `set` while the new one fills (see `resize`). */
const MOVE_PER_SET = 8;

/** One open-addressing table: a handle, its key's hash and its signature per slot. */
interface Table {
  handles: Float64Array;
  hashes: Uint32Array;
  signatures: Uint32Array;
  mask: number;
}

function table(slots: number): Table {
  return {
    handles: new Float64Array(slots),
    hashes: new Uint32Array(slots),
    signatures: new Uint32Array(slots),
    mask: slots - 1,
  };
}

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
  /** each slot's handle, hash and signature (`signatureOf`: a view passes over keys outside its directory) */
  private t = table(MIN_SLOTS);
  /**
   * While a resize is under way: the table before it, whose runs of slots not yet moved it still
   * holds (whole runs: a probe never crosses into a moved one), `moving` slots after `from` of it
   * done. Re-indexing a million keys in one call took ~300 ms, long enough for the peer of a node
   * loading keys at full speed to take it for dead; so a resize moves a few slots per `set`.
   */
  private old: Table | undefined;
  private from = 0;
  private moving = 0;
  private count = 0;

  constructor(private readonly records: KeyRecords) {}

  get size(): number {
    return this.count;
  }

  /** Slots allocated (memory: 16 bytes each). */
  get slots(): number {
    return this.t.handles.length + (this.old?.handles.length ?? 0);
  }

  /** Slots of the table before a resize still to be moved (0: none under way). */
  get resizing(): number {
    return this.old === undefined ? 0 : this.old.handles.length - this.moving;
  }

  /** The handle of the record the owner matches under `hash`, or -1. */
  find(hash: number): number {
    let at = this.slotOf(this.t, hash);
    if (at >= 0) return this.t.handles[at]! - 1;
    if (this.old === undefined) return EMPTY;
    at = this.slotOf(this.old, hash);
    return at < 0 ? EMPTY : this.old.handles[at]! - 1;
  }

  /**
   * Points the matched key at `handle`, or adds it with its `signature` (`signatureOf`); returns
   * the handle it replaced, or -1.
   */
  set(hash: number, handle: number, signature: number): number {
    if (this.old !== undefined) {
      const before = this.slotOf(this.old, hash);
      if (before >= 0) {
        const held = this.old.handles[before]! - 1;
        this.old.handles[before] = handle + 1;
        this.moveSlots(MOVE_PER_SET);
        return held;
      }
    }
    const { t } = this;
    let at = hash & t.mask;
    for (;;) {
      const held = t.handles[at]!;
      if (held === FREE) break;
      if (t.hashes[at] === hash && this.records.matches(held - 1)) {
        t.handles[at] = handle + 1;
        return held - 1;
      }
      at = (at + 1) & t.mask;
    }
    t.handles[at] = handle + 1;
    t.hashes[at] = hash;
    t.signatures[at] = signature;
    this.count++;
    if (this.old !== undefined) this.moveSlots(MOVE_PER_SET);
    else if (this.count * 2 > t.handles.length) this.resize(t.handles.length * 2);
    return EMPTY;
  }

  /** Removes the matched key; returns its handle, or -1 when it was not there. */
  remove(hash: number): number {
    let tab = this.t;
    let at = this.slotOf(tab, hash);
    if (at < 0 && this.old !== undefined) at = this.slotOf((tab = this.old), hash);
    if (at < 0) return EMPTY;
    const held = tab.handles[at]! - 1;
    vacate(tab, at);
    this.count--;
    const { length } = this.t.handles;
    if (this.old !== undefined) this.moveSlots(MOVE_PER_SET);
    else if (length > MIN_SLOTS && this.count * 8 < length) this.resize(length / 2);
    return held;
  }

  /** Whether `handle` is the current record of a key hashing to `hash`. */
  holds(hash: number, handle: number): boolean {
    return (
      slotHolding(this.t, hash, handle) >= 0 ||
      (this.old !== undefined && slotHolding(this.old, hash, handle) >= 0)
    );
  }

  /** The record at `from` now lies at `to` (the owner moved it); false if `from` was not current. */
  move(hash: number, from: number, to: number): boolean {
    let tab = this.t;
    let at = slotHolding(tab, hash, from);
    if (at < 0 && this.old !== undefined) at = slotHolding((tab = this.old), hash, from);
    if (at < 0) return false;
    tab.handles[at] = to + 1;
    return true;
  }

  /** Every current handle, in no particular order. */
  all(): Float64Array {
    const out = new Float64Array(this.count);
    let n = 0;
    for (const { handles } of this.tables())
      for (let i = 0; i < handles.length; i++) if (handles[i] !== FREE) out[n++] = handles[i]! - 1;
    return out;
  }

  /**
   * The handles of keys whose signature has all of `bits`: every key of that directory, and the
   * few others whose signature has those bits too (a Bloom filter: the caller checks each key).
   */
  signed(bits: number): Float64Array {
    // Counted first, then copied: a view of a million keys grows no array of a million numbers.
    let count = 0;
    for (const { handles, signatures } of this.tables())
      for (let i = 0; i < handles.length; i++) {
        if ((signatures[i]! & bits) === bits && handles[i] !== FREE) count++;
      }
    const found = new Float64Array(count);
    let n = 0;
    for (const { handles, signatures } of this.tables())
      for (let i = 0; i < handles.length && n < count; i++) {
        if ((signatures[i]! & bits) === bits && handles[i] !== FREE) found[n++] = handles[i]! - 1;
      }
    return found;
  }

  clear(): void {
    this.t = table(MIN_SLOTS);
    this.old = undefined;
    this.count = 0;
  }

  private tables(): Table[] {
    return this.old === undefined ? [this.t] : [this.t, this.old];
  }

  private slotOf(tab: Table, hash: number): number {
    const { handles, hashes, mask } = tab;
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const held = handles[at]!;
      if (held === FREE) return -1;
      if (hashes[at] === hash && this.records.matches(held - 1)) return at;
    }
  }

  /**
   * Starts moving every key to a table of `slots`: the old one is emptied a run of slots at a
   * time, from just after one of its empty slots, so what is left of it is whole runs.
   */
  private resize(slots: number): void {
    const old = this.t;
    this.t = table(slots);
    let from = 0;
    while (old.handles[from] !== FREE) from++; // (at most half full: there is one)
    this.old = old;
    this.from = from;
    this.moving = 0;
    this.moveSlots(MOVE_PER_SET);
  }

  /** Moves at least `budget` slots of the old table (to the end of a run), dropping it when done. */
  private moveSlots(budget: number): void {
    const old = this.old!;
    const { length } = old.handles;
    let moved = 0;
    while (
      this.moving < length &&
      (moved < budget || old.handles[(this.from + this.moving) & old.mask] !== FREE)
    ) {
      const i = (this.from + this.moving) & old.mask;
      this.moving++;
      moved++;
      const handle = old.handles[i]!;
      if (handle === FREE) continue;
      old.handles[i] = FREE;
      const { t } = this;
      let at = old.hashes[i]! & t.mask;
      while (t.handles[at] !== FREE) at = (at + 1) & t.mask;
      t.handles[at] = handle;
      t.hashes[at] = old.hashes[i]!;
      t.signatures[at] = old.signatures[i]!;
    }
    if (this.moving >= length) this.old = undefined;
  }
}

function slotHolding(tab: Table, hash: number, handle: number): number {
  const { handles, mask } = tab;
  for (let at = hash & mask; ; at = (at + 1) & mask) {
    const held = handles[at]!;
    if (held === FREE) return -1;
    if (held === handle + 1) return at;
  }
}

/** Empties slot `at` of `tab`, shifting back later slots of its run that would otherwise be cut off. */
function vacate(tab: Table, at: number): void {
  const { handles, hashes, signatures, mask } = tab;
  let hole = at;
  for (let next = (at + 1) & mask; handles[next] !== FREE; next = (next + 1) & mask) {
    const home = hashes[next]! & mask;
    // The entry at `next` may fill the hole unless its home lies cyclically in (hole, next].
    const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next;
    if (stays) continue;
    handles[hole] = handles[next]!;
    hashes[hole] = hashes[next]!;
    signatures[hole] = signatures[next]!;
    hole = next;
  }
  handles[hole] = FREE;
}
