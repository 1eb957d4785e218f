/**
 * Snapshot streams read from a point-in-time view (src/kv/view.ts) without holding it whole: a
 * first pass, a run per slice of event-loop time, works out the stream's worst-case buffered
 * bytes (what the budgets of snapshot-streams.ts need before a stream starts); the stream then
 * reads the view again from its start and cuts the very same messages, each encoded only when it
 * is about to be sent. In memory a view is an array of references; from a durable map it is a
 * held read transaction, so a million entries never sit in the heap at once.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Entry, KvView, PackedRecord } from '../kv/index.js';
import { packedSize } from '../wire/index.js';
import { DRAIN_BUDGET_MS } from '../zmq/index.js';

/** Entries read from a view at a time. */
const RUN = 1_000;

/**
 * How a stream's messages are cut: at most `maxEntries` each, and `maxBytes` of packed entries
 * (`packedSize`), but for one big entry.
 */
export interface Cut {
  readonly maxEntries: number;
  readonly maxBytes: number;
}

/**
 * Which keys a stream carries (the principal's read rights); undefined: every key, and then no
 * key is read at all (a packed view decodes a record's key only when asked: kv/packed-view.ts).
 */
export type Keep = ((key: string) => boolean) | undefined;

/** The same cutting rule for both passes: feed sizes, learn where a message ends. */
class Cutter {
  count = 0;
  bytes = 0;

  constructor(private readonly cut: Cut) {}

  /** Whether an entry of `size` bytes starts a new message (the one so far is complete). */
  startsNew(size: number): boolean {
    return this.count > 0 && (this.count >= this.cut.maxEntries || this.bytes + size > this.cut.maxBytes);
  }

  add(size: number): void {
    this.count++;
    this.bytes += size;
  }

  reset(): void {
    this.count = 0;
    this.bytes = 0;
  }
}

export interface ViewMessage {
  readonly entries: Entry[];
  readonly bytes: number;
}

/** The messages of a view, in order: the entries `keep` accepts, cut by `cut`. */
export function* viewMessages(view: KvView, keep: Keep, cut: Cut): Generator<ViewMessage> {
  const cutter = new Cutter(cut);
  let entries: Entry[] = [];
  for (let run = view.next(RUN); run.length > 0; run = view.next(RUN)) {
    for (const entry of run) {
      if (keep !== undefined && !keep(entry.key)) continue;
      const size = packedSize(entry);
      if (cutter.startsNew(size)) {
        yield { entries, bytes: cutter.bytes };
        entries = [];
        cutter.reset();
      }
      entries.push(entry);
      cutter.add(size);
    }
  }
  if (entries.length > 0) yield { entries, bytes: cutter.bytes };
}

/**
 * `viewMessages`, each message as one packed batch: the bytes the view hands out (nextPacked) go
 * out as they are, so a packed map's records are never decoded and packed again. The same entries,
 * cut in the same places. A message whose records lie back to back in one source (a packed map's
 * page, read in page order: most of a snapshot) is a view of those bytes, which never change
 * (`PackedRecord`); any other is a copy. A view sends no byte more than a copy, and keeps its page
 * alive until ZeroMQ has sent it, as the stream's view of the map kept every page while it ran: at
 * most the pages the map had when the view was taken. Without it, each 1M-key join left ~130 MB of
 * copies for the active's GC.
 */
export function* packedViewMessages(view: KvView, keep: Keep, cut: Cut): Generator<Buffer> {
  const cutter = new Cutter(cut);
  let records: PackedRecord[] = [];
  const take = (): Buffer => {
    const out = contiguous(records) ?? copied(records, cutter.bytes);
    records = [];
    cutter.reset();
    return out;
  };
  for (let run = view.nextPacked(RUN); run.length > 0; run = view.nextPacked(RUN)) {
    for (const record of run) {
      if (keep !== undefined && !keep(record.key)) continue;
      const size = record.end - record.start;
      if (cutter.startsNew(size)) yield take();
      records.push(record);
      cutter.add(size);
    }
  }
  if (cutter.count > 0) yield take();
}

/** The records as one view of their source, when they lie back to back in it. */
function contiguous(records: readonly PackedRecord[]): Buffer | undefined {
  const first = records[0]!;
  let end = first.end;
  for (let i = 1; i < records.length; i++) {
    const record = records[i]!;
    if (record.source !== first.source || record.start !== end) return undefined;
    end = record.end;
  }
  return first.source.subarray(first.start, end);
}

function copied(records: readonly PackedRecord[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const { source, start, end } of records) at += source.copy(out, at, start, end);
  return out;
}

export interface ViewMeasure {
  /** entries the stream will carry */
  readonly entries: number;
  /** the most bytes it can hold in a pipe of `queue` messages: all of it, or `queue` × its largest */
  readonly bytes: number;
}

/**
 * Walks the messages `viewMessages` would cut and works out the worst case in a pipe of `queue`
 * messages, each costing `overhead` bytes beside its entries. Gives the event loop a turn whenever
 * it has worked for DRAIN_BUDGET_MS. The view is read to its end (pass `view.again()`).
 */
export async function measureView(
  view: KvView,
  keep: Keep,
  cut: Cut,
  overhead: number,
  queue: number,
): Promise<ViewMeasure> {
  const cutter = new Cutter(cut);
  let entries = 0;
  let total = 0;
  let largest = 0;
  const close = () => {
    if (cutter.count === 0) return;
    total += cutter.bytes + overhead;
    largest = Math.max(largest, cutter.bytes + overhead);
    cutter.reset();
  };
  let sliceStart = performance.now();
  // Sizes only: no entry is decoded (the durable map works them out from its records' lengths),
  // and no key unless `keep` reads it.
  for (let run = view.nextSizes(RUN); run.length > 0; run = view.nextSizes(RUN)) {
    for (const sized of run) {
      if (keep !== undefined && !keep(sized.key)) continue;
      const bytes = sized.bytes;
      if (cutter.startsNew(bytes)) close();
      cutter.add(bytes);
      entries++;
    }
    if (performance.now() - sliceStart > DRAIN_BUDGET_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  close();
  return { entries, bytes: Math.min(total, queue * largest) };
}
