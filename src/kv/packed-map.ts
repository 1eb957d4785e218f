/**
 * The server's key-value map in packed form: each entry is kept as the bytes a packed batch
 * carries it in (wire/chp.ts), appended to 1 MiB pages, and found through a hash index of record
 * handles (key-index.ts). There is no JS object, string or Buffer per key, which is what made
 * `KvMap` cost ~500 bytes of heap per 100-byte value; here a key costs its packed bytes plus about
 * 32 bytes of index. Entries are decoded when asked for (`get`, a view's `next`).
 *
 * A record is never changed once written, which is what makes a view cheap and safe: it is the
 * list of current handles at the time it is taken (sorted, so that a snapshot goes out in about
 * the order the keys were written), plus the pages they lie in. A put writes a new record and
 * leaves the old one as garbage in its page; a page with nothing live in it is dropped, and once
 * garbage passes a third of all written bytes the page with the least live in it is compacted:
 * its live records are copied to the head and the page is dropped (one page per put, so there is
 * never a pause longer than copying one page). A view taken before keeps the dropped page alive
 * for as long as it is read.
 *
 * Pure: no I/O. Same contract as `KvMap` (KeyValueState in core/kv-machine.ts).
 */
import { packedEntryEnd, packedKeyStartsWith, packEntry, packedSize, unpackEntry } from '../wire/index.js';
import {
  directoryBit,
  directoryBitOf,
  hashBytes,
  hashByte,
  hashEnd,
  hashStart,
  KeyIndex,
  signatureOf,
  SLASH,
  type KeyRecords,
} from './key-index.js';
import type { Entry } from './kvmap.js';
import type { KvView, PackedRecord, SizedKey } from './view.js';

/** Page size and the garbage floor; tests shrink them to make compaction happen. */
export interface PackedMapOptions {
  pageBytes: number;
  garbageFloor: number;
}

const DEFAULTS: PackedMapOptions = { pageBytes: 1 << 20, garbageFloor: 4 << 20 };
/** A handle is page * PAGE_SPAN + offset: exact in a double for any page count we can hold. */
const PAGE_SPAN = 2 ** 32;
const pageOf = (handle: number): number => Math.floor(handle / PAGE_SPAN);
const offsetOf = (handle: number): number => handle % PAGE_SPAN;

/** The key of the record at `at`, decoded. */
function keyAt(page: Buffer, at: number): string {
  return page.toString('utf8', at + 2, at + 2 + page.readUInt16BE(at));
}

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
  /** The key being looked up: its UTF-8 bytes when it is not ASCII, else its char codes are. */
  private probe = '';
  private probeBytes: Buffer | undefined;
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
    return handle < 0 ? undefined : this.decode(this.pages, handle);
  }

  /** Stores the entry, or removes the key when the body is empty (CHP's delete). */
  put(entry: Entry): void {
    const hash = this.prepare(entry.key);
    if (entry.body.length === 0) {
      const old = this.index.remove(hash);
      if (old >= 0) this.release(old);
      return;
    }
    const old = this.index.set(hash, this.append(entry), this.probeSignature);
    if (old >= 0) this.release(old);
    this.compactOnePage();
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
    const candidates = slash < 0 ? this.index.all() : this.index.signed(directoryBitOf(bytes, directory));
    const match = bytes.length > 0 ? bytes : undefined;
    return new PackedView(this, this.pages.slice(), this.inPageOrder(candidates), match);
  }

  /** The entries under a prefix now, decoded all at once (tests, small maps; a view reads in runs). */
  snapshot(prefix: string): Entry[] {
    return this.view(prefix).next(this.size);
  }

  empty(): PackedKvMap {
    return new PackedKvMap(this.options);
  }

  /**
   * The handles sorted: a radix sort, stable counting passes on the offset's 11-bit digits and then
   * on the page, linear in the handles (a comparison sort of a million took ~100 ms, and every
   * watcher's connect takes a view).
   */
  private inPageOrder(handles: Float64Array): Float64Array {
    let maxOffset = 0;
    for (let i = 0; i < handles.length; i++) maxOffset = Math.max(maxOffset, offsetOf(handles[i]!));
    let from: Float64Array = handles;
    let to: Float64Array = new Float64Array(handles.length);
    for (let shift = 0; shift < 32 && maxOffset >>> shift !== 0; shift += RADIX_BITS) {
      countingPass(from, to, RADIX, (h) => (offsetOf(h) >>> shift) & (RADIX - 1));
      [from, to] = [to, from];
    }
    countingPass(from, to, this.pages.length, pageOf);
    return to;
  }

  /** KeyRecords: whether the record at `handle` has the key `prepare` was last given. */
  matches(handle: number): boolean {
    const page = this.pages[pageOf(handle)]!;
    const at = offsetOf(handle);
    const length = page.readUInt16BE(at);
    const start = at + 2;
    const probe = this.probeBytes;
    if (probe !== undefined) {
      if (length !== probe.length) return false;
      for (let i = 0; i < length; i++) if (page[start + i] !== probe[i]) return false;
      return true;
    }
    const key = this.probe;
    if (length !== key.length) return false;
    for (let i = 0; i < length; i++) if (page[start + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** @internal a view decodes through the pages it was given. */
  decode(pages: readonly (Buffer | undefined)[], handle: number): Entry {
    return unpackEntry(pages[pageOf(handle)]!, { at: offsetOf(handle) });
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
      if (code === SLASH) signature |= directoryBit(h, i + 1);
    }
    this.probeSignature = signature;
    return hashEnd(h, key.length);
  }

  private prepareUtf8(key: string): number {
    const length = Buffer.byteLength(key);
    if (length > this.scratch.length) this.scratch = Buffer.allocUnsafe(length);
    this.scratch.write(key, 0);
    this.probeBytes = this.scratch.subarray(0, length);
    this.probeSignature = signatureOf(this.scratch, length);
    return hashBytes(this.scratch, 0, length);
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

const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;

/** One stable counting-sort pass of `from` into `to`, on a digit below `buckets`. */
function countingPass(
  from: Float64Array,
  to: Float64Array,
  buckets: number,
  digit: (h: number) => number,
): void {
  const starts = new Uint32Array(buckets + 1);
  for (let i = 0; i < from.length; i++) starts[digit(from[i]!) + 1]!++;
  for (let b = 1; b <= buckets; b++) starts[b]! += starts[b - 1]!;
  for (let i = 0; i < from.length; i++) to[starts[digit(from[i]!)]!++] = from[i]!;
}

/** A point-in-time view: handles fixed when it was taken, matched and decoded as they are read. */
class PackedView implements KvView {
  private at = 0;

  constructor(
    private readonly map: PackedKvMap,
    private readonly pages: readonly (Buffer | undefined)[],
    private readonly handles: Float64Array,
    private readonly prefix: Buffer | undefined,
  ) {}

  next(max: number): Entry[] {
    return this.read(max, (h) => this.map.decode(this.pages, h));
  }

  /** The records themselves: a snapshot stream copies them into its messages undecoded. */
  nextPacked(max: number): PackedRecord[] {
    return this.read(max, (h) => {
      const source = this.pages[pageOf(h)]!;
      const start = offsetOf(h);
      return { key: keyAt(source, start), source, start, end: packedEntryEnd(source, start) };
    });
  }

  nextSizes(max: number): SizedKey[] {
    return this.nextPacked(max).map(({ key, start, end }) => ({ key, bytes: end - start }));
  }

  /** Up to `max` of the next handles under the prefix, each made into a `T`. */
  private read<T>(max: number, make: (handle: number) => T): T[] {
    const out: T[] = [];
    for (let h = this.nextHandle(max); h >= 0; h = this.nextHandle(max - out.length)) out.push(make(h));
    return out;
  }

  /** The next handle under the prefix, or -1 at the end or when `room` is 0. */
  private nextHandle(room: number): number {
    if (room <= 0) return -1;
    const { handles, prefix } = this;
    while (this.at < handles.length) {
      const h = handles[this.at++]!;
      if (prefix === undefined) return h;
      if (packedKeyStartsWith(this.pages[pageOf(h)]!, offsetOf(h), prefix)) return h;
    }
    return -1;
  }

  again(): PackedView {
    return new PackedView(this.map, this.pages, this.handles, this.prefix);
  }

  close(): void {}
}
