/**
 * The key-value map in packed form, a server's and a client replica's: each entry is kept as the
 * bytes a packed batch carries it in (wire/packed.ts), appended to 1 MiB pages, and found through a
 * hash index of record handles (key-index.ts). There is no JS object, string or Buffer per key,
 * which is what made `KvMap` cost ~500 bytes of heap per 100-byte value; here a key costs its
 * packed bytes plus about 32 bytes of index. Entries are decoded when asked for (`get`, a view's
 * `next`). A client's first load adopts the batches it received as pages (`adopt`, `putIn`).
 *
 * A record is never changed once written, which is what makes a view cheap and safe: it is the
 * list of current handles at the time it is taken (sorted, so that a snapshot goes out in about
 * the order the keys were written), plus the pages they lie in. A put writes a new record and
 * leaves the old one as garbage in its page; a page with nothing live in it is dropped, and once
 * garbage passes a third of all written bytes the page with the least live in it is compacted:
 * its live records are copied to the head and the page is dropped (one page per put, so there is
 * never a pause longer than copying one page). A view taken before keeps the dropped page alive
 * for as long as it is read (packed-view.ts).
 *
 * Pure: no I/O. Same contract as `KvMap` (KeyValueState in core/kv-machine.ts).
 */
import {
  deadlineAt,
  packedEntryEnd,
  packEntry,
  packedSize,
  propertiesAt,
  sequenceAt,
} from '../wire/index.js';
import {
  signAfter,
  directoryBitsOf,
  hashBytes,
  hashByte,
  hashEnd,
  hashStart,
  KeyIndex,
  SLASH,
  type KeyRecords,
} from './key-index.js';
import type { Entry } from './kvmap.js';
import { decodeAt, inPageOrder, offsetOf, PackedView, PAGE_SPAN, pageOf } from './packed-view.js';
import type { KvView, Written } from './view.js';

/** Page size and the garbage floor; tests shrink them to make compaction happen. */
export interface PackedMapOptions {
  pageBytes: number;
  garbageFloor: number;
}

const DEFAULTS: PackedMapOptions = { pageBytes: 1 << 20, garbageFloor: 4 << 20 };

/** The hash of the key of the record at `at`, from its bytes. */
function keyHashAt(page: Buffer, at: number): number {
  return hashBytes(page, at + 2, at + 2 + page.readUInt16BE(at));
}
/** Compaction starts once garbage is more than this share of all bytes written to live pages. */
const GARBAGE_SHARE = 1 / 3;

export class PackedKvMap implements KeyRecords {
  private pages: (Buffer | undefined)[] = [];
  /** live bytes of each page */
  private live: number[] = [];
  /** bytes written to each page (its end); garbage is written - live */
  private written: number[] = [];
  private head = -1;
  private totalWritten = 0;
  private totalLive = 0;
  private readonly index = new KeyIndex(this);
  /**
   * The key being looked up: its UTF-8 bytes (`probeBytes` from `probeAt`, `probeLength` of them)
   * when it is not ASCII or comes as bytes, else the char codes of `probe`.
   */
  private probe = '';
  private probeBytes: Buffer | undefined;
  private probeAt = 0;
  private probeLength = 0;
  private probeSignature = 0;
  private scratch = Buffer.allocUnsafe(256);

  constructor(private readonly options: PackedMapOptions = DEFAULTS) {}

  get size(): number {
    return this.index.size;
  }

  /** What the map holds (tests check the garbage bound on it). */
  get stats(): { pages: number; liveBytes: number; writtenBytes: number; indexSlots: number } {
    return {
      pages: this.pages.filter((p) => p !== undefined).length,
      liveBytes: this.totalLive,
      writtenBytes: this.totalWritten,
      indexSlots: this.index.slots,
    };
  }

  get(key: string): Entry | undefined {
    const handle = this.index.find(this.prepare(key));
    return handle < 0 ? undefined : decodeAt(this.pages, handle);
  }

  /**
   * The sequence and deadline of the key's entry, read in place (no decode): what a client checks
   * for each change it delivers (client/revisions.ts).
   */
  stamp(key: string): { sequence: number; expiresAt: number } | undefined {
    const handle = this.index.find(this.prepare(key));
    if (handle < 0) return undefined;
    const page = this.pages[pageOf(handle)]!;
    const sequence = sequenceAt(page, offsetOf(handle));
    const deadline = deadlineAt(page, propertiesAt(page, sequence));
    return { sequence: page.readDoubleBE(sequence), expiresAt: page.readDoubleBE(deadline) };
  }

  /** The uuid and sequence of the key's entry, read in place: what de-duplication asks (no decode). */
  currentWrite(key: string): Written | undefined {
    const handle = this.index.find(this.prepare(key));
    if (handle < 0) return undefined;
    const page = this.pages[pageOf(handle)]!;
    const at = sequenceAt(page, offsetOf(handle));
    const uuidLength = page[at + 8]!;
    const uuid = uuidLength === 0 ? '' : page.toString('latin1', at + 9, at + 9 + uuidLength);
    return { uuid, sequence: page.readDoubleBE(at) };
  }

  /** Removes the key; whether it was held. */
  remove(key: string): boolean {
    const old = this.index.remove(this.prepare(key));
    if (old >= 0) this.release(old);
    return old >= 0;
  }

  /**
   * Takes `frame` as a page of its own, as it is, with nothing in it live yet (`putIn` makes its
   * records live): a client's first load keeps the batches it received as its pages, with no copy.
   * The records must be checked and canonical (wire/packed.ts `PackedBatch`), so that reading one
   * back gives the entry the checked reader gave. Returns the page.
   */
  adopt(frame: Buffer): number {
    let page = this.pages.indexOf(undefined);
    if (page < 0) page = this.pages.length;
    this.pages[page] = frame;
    this.live[page] = 0;
    this.written[page] = frame.length;
    this.totalWritten += frame.length;
    return page;
  }

  /**
   * Makes the record from `start` to `end` of an adopted page the key's current one; whether the
   * key was held already (it is replaced all the same), as `put` says.
   */
  putIn(page: number, start: number, end: number): boolean {
    const frame = this.pages[page]!;
    const hash = this.prepareBytes(frame, start + 2, frame.readUInt16BE(start));
    this.live[page]! += end - start;
    this.totalLive += end - start;
    const old = this.index.set(hash, page * PAGE_SPAN + start, this.probeSignature);
    if (old >= 0) this.release(old);
    return old >= 0;
  }

  /** An adopted page is loaded: dropped if nothing in it is live (no key of it was kept). */
  settle(page: number): void {
    if (this.live[page] === 0) this.drop(page);
  }

  /** Stores the entry, or removes the key when the body is empty (CHP's delete); whether it was held. */
  put(entry: Entry): boolean {
    if (entry.body.length === 0) return this.remove(entry.key);
    const hash = this.prepare(entry.key);
    const old = this.index.set(hash, this.append(entry), this.probeSignature);
    if (old >= 0) this.release(old);
    this.compactOnePage();
    return old >= 0;
  }

  /**
   * The entries under `prefix` now, read later in runs: see the header comment. The index gives
   * the keys whose signature holds the prefix's directory (up to its last '/') without reading any
   * record; those are sorted (linear) and matched against the prefix as the view is read.
   */
  view(prefix: string): KvView {
    const bytes = Buffer.from(prefix);
    const slash = bytes.lastIndexOf(SLASH);
    const directory = slash + 1;
    // no directory, or the root alone (every key's, so no signature holds it): every key
    const candidates = slash <= 0 ? this.index.all() : this.index.signed(directoryBitsOf(bytes, directory));
    const match = bytes.length > 0 ? bytes : undefined;
    return new PackedView(this.pages.slice(), inPageOrder(candidates, this.pages.length), match);
  }

  /** The entries under a prefix now, decoded all at once (tests, small maps; a view reads in runs). */
  snapshot(prefix: string): Entry[] {
    return this.view(prefix).next(this.size);
  }

  empty(): PackedKvMap {
    return new PackedKvMap(this.options);
  }

  /** KeyRecords: whether the record at `handle` has the key `prepare` was last given. */
  matches(handle: number): boolean {
    const page = this.pages[pageOf(handle)]!;
    const at = offsetOf(handle);
    const length = page.readUInt16BE(at);
    const start = at + 2;
    const probe = this.probeBytes;
    if (probe !== undefined) {
      if (length !== this.probeLength) return false;
      const from = this.probeAt;
      for (let i = 0; i < length; i++) if (page[start + i] !== probe[from + i]) return false;
      return true;
    }
    const key = this.probe;
    if (length !== key.length) return false;
    for (let i = 0; i < length; i++) if (page[start + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Hashes `key` and remembers it for `matches`, with its signature for the index. */
  private prepare(key: string): number {
    this.probe = key;
    this.probeBytes = undefined;
    let h = hashStart();
    let signature = 0;
    for (let i = 0; i < key.length; i++) {
      const code = key.charCodeAt(i);
      if (code >= 0x80) return this.prepareUtf8(key);
      h = hashByte(h, code);
      signature = signAfter(signature, h, code, i);
    }
    this.probeSignature = signature;
    return hashEnd(h, key.length);
  }

  private prepareUtf8(key: string): number {
    const length = Buffer.byteLength(key);
    if (length > this.scratch.length) this.scratch = Buffer.allocUnsafe(length);
    this.scratch.write(key, 0);
    return this.prepareBytes(this.scratch, 0, length);
  }

  /** `prepare` for a key given as its UTF-8 bytes: `length` of them in `bytes` from `at`. */
  private prepareBytes(bytes: Buffer, at: number, length: number): number {
    this.probeBytes = bytes;
    this.probeAt = at;
    this.probeLength = length;
    let h = hashStart();
    let signature = 0;
    for (let i = 0; i < length; i++) {
      const byte = bytes[at + i]!;
      h = hashByte(h, byte);
      signature = signAfter(signature, h, byte, i);
    }
    this.probeSignature = signature;
    return hashEnd(h, length);
  }

  /** Writes the entry's record at the head; its handle. */
  private append(entry: Entry): number {
    const size = packedSize(entry);
    const handle = this.reserve(size);
    packEntry(this.pages[pageOf(handle)]!, entry, offsetOf(handle));
    this.totalLive += size;
    return handle;
  }

  /** Room for a live record of `size` bytes at the head, opening a page when it does not fit. */
  private reserve(size: number): number {
    const page = this.roomFor(size);
    const at = this.written[page]!;
    this.written[page] = at + size;
    this.live[page]! += size;
    this.totalWritten += size;
    return page * PAGE_SPAN + at;
  }

  /** The page to write `size` bytes to: the head, or a new one (as big as the record if need be). */
  private roomFor(size: number): number {
    const head = this.head;
    if (head >= 0 && this.written[head]! + size <= this.pages[head]!.length) return head;
    let page = this.pages.indexOf(undefined);
    if (page < 0) page = this.pages.length;
    this.pages[page] = Buffer.allocUnsafeSlow(Math.max(this.options.pageBytes, size));
    this.live[page] = 0;
    this.written[page] = 0;
    this.head = page;
    return page;
  }

  /** The record at `handle` is no longer current. */
  private release(handle: number): void {
    const page = pageOf(handle);
    const at = offsetOf(handle);
    const size = packedEntryEnd(this.pages[page]!, at) - at;
    this.live[page]! -= size;
    this.totalLive -= size;
    if (this.live[page] === 0 && page !== this.head) this.drop(page);
  }

  private drop(page: number): void {
    this.totalWritten -= this.written[page]!;
    this.pages[page] = undefined;
    this.live[page] = 0;
    this.written[page] = 0;
  }

  /** Moves the live records of the page with the least live in it to the head, when garbage is high. */
  private compactOnePage(): void {
    const garbage = this.totalWritten - this.totalLive;
    if (garbage <= this.options.garbageFloor || garbage <= this.totalWritten * GARBAGE_SHARE) return;
    let victim = -1;
    for (let p = 0; p < this.pages.length; p++) {
      if (p === this.head || this.pages[p] === undefined) continue;
      if (victim < 0 || this.live[p]! < this.live[victim]!) victim = p;
    }
    if (victim < 0) return;
    const source = this.pages[victim]!;
    const end = this.written[victim]!;
    for (let at = 0; at < end;) {
      const next = packedEntryEnd(source, at);
      const hash = keyHashAt(source, at);
      const from = victim * PAGE_SPAN + at;
      if (this.index.holds(hash, from)) {
        const to = this.reserve(next - at);
        source.copy(this.pages[pageOf(to)]!, offsetOf(to), at, next);
        this.index.move(hash, from, to);
      }
      at = next;
    }
    this.drop(victim);
  }
}
