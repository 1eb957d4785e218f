/**
 * A bounded log of the most recent sequenced changes, so that a passive or a client that missed a
 * few updates can resume from its last sequence instead of taking a whole snapshot. Sequences in
 * the log are contiguous; `since(n)` answers only when the log still covers n + 1.
 *
 * It is bounded twice: by entry count and by bytes (`footprint`), oldest out first. Counting alone
 * let one key overwritten with 1 MiB values hold 100k × 1 MiB; the byte budget keeps that at the
 * budget, and a resume from further back than the log reaches gets a snapshot instead.
 *
 * Entries are held packed, not as objects. An `Entry` with its key and uuid strings and a Buffer
 * around its body costs some 300 bytes of heap besides the body: 100k of them were ~35 MB of a
 * server holding 1M keys. Instead, each entry's bytes are written once, in the packed-batch form
 * (what `packBatch([entry])` makes of it, through the wire module's own `packEntry`), and read back
 * with `unpackEntry`: one codec. The layout:
 *
 * - Records follow one another in a shared chunk, a Buffer with its own ArrayBuffer. A new chunk
 *   starts when the next record does not fit; its size follows what the log holds (an eighth of
 *   it, from 4 KiB up to 256 KiB), so a small log stays small. A record above an eighth of that
 *   size (32 KiB at most) gets a chunk of its own, so a chunk's unused tail is under an eighth.
 * - Per ring slot: the chunk (a reference), the record's offset in it (Uint32Array) and its
 *   `footprint` (Float64Array), so that `bytes` and the byte budget mean what they always did.
 *   No object or string per entry. A chunk goes to the GC with the last slot naming it, so what the
 *   log holds is its records' bytes, the chunks' tails, at most two partly used chunks (the oldest,
 *   the one being filled) and the slot arrays, however many entries have gone through it: for
 *   keys and uuids of 16 bytes and bodies of 100, 179 bytes an entry instead of 395 as objects.
 * - No sequence per slot: sequences are contiguous, so the first and the last say where each is
 *   (and each record still carries its own).
 *
 * `since` decodes only the entries it returns, into new objects. A prefix is encoded once and
 * compared as UTF-8 bytes with each key where it lies. A returned body is a copy, not a view into a
 * chunk: a view would keep the whole chunk alive for as long as a caller holds the body, and once
 * the log has emptied, its current chunk is written over from the start.
 *
 * The packed form is the wire's: a key or properties must be well-formed UTF-16 (a lone surrogate
 * reads back as U+FFFD) and a uuid latin1, as everything read off the wire is; `append` throws, as
 * `packBatch` would, for a uuid over 255 bytes or a key or properties over 64 KiB (the log stays
 * whole, without that entry).
 */
import type { Entry } from '../kv/index.js';
import {
  footprint,
  packedEntryEnd,
  packedKeyStartsWith,
  packedSize,
  packEntry,
  unpackEntry,
} from '../wire/index.js';

/** The largest shared chunk. */
const CHUNK_BYTES = 256 * 1024;
/** The smallest shared chunk. */
const MIN_CHUNK_BYTES = 4 * 1024;

export class ReplayLog {
  private readonly slots: number;
  /** per ring slot: the chunk holding the record, its offset there, its footprint */
  private readonly chunkOf: (Buffer | undefined)[];
  private readonly offsetOf: Uint32Array;
  private readonly costOf: Float64Array;
  private start = 0; // slot of the oldest entry
  private count = 0;
  private held = 0;
  private first = 0; // sequences of the oldest and the newest entry, while count > 0
  private last = 0;
  /** the shared chunk being filled, and how far */
  private chunk: Buffer | undefined;
  private fill = 0;
  /** entries evicted to stay within the byte budget (not those pushed out by count) */
  evictedForBytes = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes = Infinity,
  ) {
    this.slots = Math.max(1, capacity);
    this.chunkOf = new Array<Buffer | undefined>(this.slots).fill(undefined);
    this.offsetOf = new Uint32Array(this.slots);
    this.costOf = new Float64Array(this.slots);
  }

  /** entries held */
  get size(): number {
    return this.count;
  }

  /** bytes held, as `footprint` counts them */
  get bytes(): number {
    return this.held;
  }

  get firstSequence(): number | undefined {
    return this.count === 0 ? undefined : this.first;
  }

  get lastSequence(): number | undefined {
    return this.count === 0 ? undefined : this.last;
  }

  append(entry: Entry): void {
    if (this.count > 0 && entry.sequence !== this.last + 1) this.clear(); // never hold a gap
    if (this.count === this.slots) this.dropOldest();
    const slot = (this.start + this.count) % this.slots;
    this.write(entry, slot);
    const cost = footprint(entry);
    this.costOf[slot] = cost;
    if (this.count === 0) this.first = entry.sequence;
    this.last = entry.sequence;
    this.count++;
    this.held += cost;
    // The newest entry always stays: it is no bigger than one message the limits allow.
    while (this.held > this.maxBytes && this.count > 1) {
      this.dropOldest();
      this.evictedForBytes++;
    }
  }

  clear(): void {
    this.chunkOf.fill(undefined);
    this.chunk = undefined;
    this.start = 0;
    this.count = 0;
    this.held = 0;
  }

  /** Packs the entry into a chunk and notes where in `slot`, which stays free if packing throws. */
  private write(entry: Entry, slot: number): void {
    const length = packedSize(entry);
    const size = Math.min(CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, Math.floor(this.held / 8)));
    let chunk: Buffer;
    let at = 0;
    if (length > size / 8) {
      chunk = Buffer.allocUnsafeSlow(length); // a chunk of its own
    } else {
      if (this.count === 0) this.fill = 0; // nothing held: the chunk is free from its start
      if (this.chunk === undefined || this.fill + length > this.chunk.length) {
        this.chunk = Buffer.allocUnsafeSlow(size);
        this.fill = 0;
      }
      chunk = this.chunk;
      at = this.fill;
    }
    const end = packEntry(chunk, entry, at);
    if (chunk === this.chunk) this.fill = end;
    this.chunkOf[slot] = chunk;
    this.offsetOf[slot] = at;
  }

  private dropOldest(): void {
    this.held -= this.costOf[this.start]!;
    this.chunkOf[this.start] = undefined; // a chunk no slot names is garbage (unless being filled)
    this.start = (this.start + 1) % this.slots;
    this.count--;
    this.first += 1; // the next entry's sequence: append checked it is exactly this
  }

  /** Whether every change after `sequence` up to the newest is still held. */
  covers(sequence: number): boolean {
    if (this.count === 0) return false;
    return sequence + 1 >= this.first && sequence <= this.last;
  }

  /**
   * Changes `first` to `last` as one packed batch (the bytes `packBatch` would make of them, copied),
   * or undefined unless the log holds them all. The replication batch of the changes just
   * committed: packing them again cost the active about a third of its packing (issue 18).
   */
  packed(first: number, last: number): Buffer | undefined {
    if (this.count === 0 || first > last || first < this.first || last > this.last) return undefined;
    // Records of consecutive slots in one chunk lie end to end: copied a run at a time.
    const runs: { chunk: Buffer; from: number; to: number }[] = [];
    let size = 0;
    for (let i = first - this.first; i <= last - this.first; i++) {
      const slot = (this.start + i) % this.slots;
      const chunk = this.chunkOf[slot]!;
      const from = this.offsetOf[slot]!;
      const to = packedEntryEnd(chunk, from);
      const run = runs[runs.length - 1];
      if (run !== undefined && run.chunk === chunk && run.to === from) run.to = to;
      else runs.push({ chunk, from, to });
      size += to - from;
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const { chunk, from, to } of runs) at += chunk.copy(out, at, from, to);
    return out;
  }

  /** Changes with a sequence above `sequence`, oldest first, or undefined when the log no longer has them. */
  since(sequence: number, prefix = ''): Entry[] | undefined {
    if (!this.covers(sequence)) return undefined;
    const out: Entry[] = [];
    const want = Buffer.from(prefix);
    // UTF-8 cannot carry a lone surrogate, which a prefix read off the wire never has; such a
    // prefix may still match a key whose surrogate pair it cuts, so it is matched on decoded keys.
    const inPlace = want.toString() === prefix;
    const cursor = { at: 0 };
    for (let i = sequence + 1 - this.first; i < this.count; i++) {
      const slot = (this.start + i) % this.slots;
      const chunk = this.chunkOf[slot]!;
      cursor.at = this.offsetOf[slot]!;
      if (inPlace && want.length > 0 && !packedKeyStartsWith(chunk, cursor.at, want)) continue;
      const entry = unpackEntry(chunk, cursor); // no limits: these are bytes this log packed
      if (inPlace || entry.key.startsWith(prefix)) out.push(entry);
    }
    return out;
  }
}
