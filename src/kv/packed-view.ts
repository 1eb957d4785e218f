/**
 * The packed map's handles (kv/packed-map.ts) and its point-in-time view. A handle is a record's
 * place: its page * PAGE_SPAN + its offset in the page, exact in a double for any page count we can
 * hold. A view is the handles current when it was taken, in page order, and the pages they lie in:
 * records are never changed once written, so it reads them (and matches a prefix) later, in runs.
 * Pure: no I/O.
 */
import { packedEntryEnd, packedKeyStartsWith, unpackEntry } from '../wire/index.js';
import type { Entry } from './kvmap.js';
import type { KvView, PackedRecord, SizedKey } from './view.js';

export const PAGE_SPAN = 2 ** 32;
export const pageOf = (handle: number): number => Math.floor(handle / PAGE_SPAN);
export const offsetOf = (handle: number): number => handle % PAGE_SPAN;

/** The key of the record at `at`, decoded. */
function keyAt(page: Buffer, at: number): string {
  return page.toString('utf8', at + 2, at + 2 + page.readUInt16BE(at));
}

/** The entry of the record at `handle`, decoded. */
export function decodeAt(pages: readonly (Buffer | undefined)[], handle: number): Entry {
  return unpackEntry(pages[pageOf(handle)]!, { at: offsetOf(handle) });
}

/**
 * The handles sorted: a radix sort, stable counting passes on the offset's 11-bit digits and then
 * on the page, linear in the handles (a comparison sort of a million took ~100 ms, and every
 * watcher's connect takes a view).
 */
export function inPageOrder(handles: Float64Array, pages: number): Float64Array {
  let maxOffset = 0;
  for (let i = 0; i < handles.length; i++) maxOffset = Math.max(maxOffset, offsetOf(handles[i]!));
  let from: Float64Array = handles;
  let to: Float64Array = new Float64Array(handles.length);
  for (let shift = 0; shift < 32 && maxOffset >>> shift !== 0; shift += RADIX_BITS) {
    countingPass(from, to, RADIX, (h) => (offsetOf(h) >>> shift) & (RADIX - 1));
    [from, to] = [to, from];
  }
  countingPass(from, to, pages, pageOf);
  return to;
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

/**
 * A record of a page, as a view hands it out: its key is decoded only if asked for. A stream to a
 * client that may read every key never asks (view-streams.ts), and a 1M-key snapshot then decodes
 * no key at all, where it decoded each twice (measuring, then sending).
 */
class PageRecord implements PackedRecord, SizedKey {
  constructor(
    readonly source: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  get key(): string {
    return keyAt(this.source, this.start);
  }

  get bytes(): number {
    return this.end - this.start;
  }
}

/** A point-in-time view: handles fixed when it was taken, matched and decoded as they are read. */
export class PackedView implements KvView {
  private at = 0;

  constructor(
    private readonly pages: readonly (Buffer | undefined)[],
    private readonly handles: Float64Array,
    private readonly prefix: Buffer | undefined,
  ) {}

  next(max: number): Entry[] {
    return this.read(max, (h) => decodeAt(this.pages, h));
  }

  /** The records themselves: a snapshot stream copies them into its messages undecoded. */
  nextPacked(max: number): PackedRecord[] {
    return this.read(max, (h) => {
      const source = this.pages[pageOf(h)]!;
      const start = offsetOf(h);
      return new PageRecord(source, start, packedEntryEnd(source, start));
    });
  }

  nextSizes(max: number): SizedKey[] {
    return this.nextPacked(max) as PageRecord[];
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
    return new PackedView(this.pages, this.handles, this.prefix);
  }

  close(): void {}
}
