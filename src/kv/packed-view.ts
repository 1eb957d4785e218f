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
 * Sorts the handles into page order, in place, and returns them. First each handle is moved into
 * its page's run (a distribution by page that swaps handles into place, counting each page's run
 * first). Then each run is sorted by offset: a run shares its page, so that is numeric order. Long
 * runs use stable counting passes on the offset's 11-bit digits, through a scratch array the size
 * of the longest run. Short runs use the engine's sort.
 *
 * It is linear in the handles: a comparison sort of a million took ~100 ms, and every watcher's
 * connect takes a view. A view of a million keys allocates no second array of a million handles
 * (8 MB, where sorting through a copy made two of them per view).
 */
export function inPageOrder(handles: Float64Array, pages: number): Float64Array {
  const runs = pageRuns(handles, pages);
  let longest = 0;
  for (let p = 0; p < pages; p++) longest = Math.max(longest, runs[p + 1]! - runs[p]!);
  if (longest < 2) return handles;
  const scratch = new Float64Array(longest >= SHORT_RUN ? longest : 0);
  const counts = new Uint32Array(RADIX + 1);
  for (let p = 0; p < pages; p++) {
    const run = handles.subarray(runs[p]!, runs[p + 1]!);
    if (run.length < SHORT_RUN) run.sort();
    else byOffset(run, scratch, counts);
  }
  return handles;
}

const RADIX_BITS = 11;
const RADIX = 1 << RADIX_BITS;
/** Runs shorter than this are sorted by the engine (a counting pass costs RADIX steps at least). */
const SHORT_RUN = 256;

/**
 * Moves each handle into its page's run, in place: returns where each run starts (run p is from
 * `runs[p]` to `runs[p + 1]`).
 */
function pageRuns(handles: Float64Array, pages: number): Uint32Array {
  const runs = new Uint32Array(pages + 1);
  for (let i = 0; i < handles.length; i++) runs[pageOf(handles[i]!) + 1]!++;
  for (let p = 1; p <= pages; p++) runs[p]! += runs[p - 1]!;
  const next = runs.slice(0, pages); // each run's first place not yet settled
  for (let p = 0; p < pages; p++) {
    const end = runs[p + 1]!;
    while (next[p]! < end) {
      // Carry the handle found here to its run, and the one it displaces on to its own, until
      // one belongs here.
      let h = handles[next[p]!]!;
      for (let q = pageOf(h); q !== p; q = pageOf(h)) {
        const at = next[q]!++;
        const displaced = handles[at]!;
        handles[at] = h;
        h = displaced;
      }
      handles[next[p]!++] = h;
    }
  }
  return runs;
}

/** Sorts one page's run by offset: counting passes on 11-bit digits, through `scratch`. */
function byOffset(run: Float64Array, scratch: Float64Array, counts: Uint32Array): void {
  let maxOffset = 0;
  for (let i = 0; i < run.length; i++) maxOffset = Math.max(maxOffset, offsetOf(run[i]!));
  let from = run;
  let to = scratch.subarray(0, run.length);
  for (let shift = 0; shift < 32 && maxOffset >>> shift !== 0; shift += RADIX_BITS) {
    countingPass(from, to, counts, shift);
    [from, to] = [to, from];
  }
  if (from !== run) run.set(from);
}

/** One stable counting-sort pass of `from` into `to`, on the offset's digit at `shift`. */
function countingPass(from: Float64Array, to: Float64Array, counts: Uint32Array, shift: number): void {
  const digit = (h: number) => (offsetOf(h) >>> shift) & (RADIX - 1);
  counts.fill(0);
  for (let i = 0; i < from.length; i++) counts[digit(from[i]!) + 1]!++;
  for (let b = 1; b <= RADIX; b++) counts[b]! += counts[b - 1]!;
  for (let i = 0; i < from.length; i++) to[counts[digit(from[i]!)]!++] = from[i]!;
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
