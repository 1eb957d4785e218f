/**
 * A point-in-time view of a map's entries, read a run at a time: what a snapshot streams from.
 * The view is fixed when it is taken; the map may change while it is read (across event-loop
 * turns). In memory it is an array of references (`ArrayView`); a durable map reads a held lmdb
 * read transaction (src/storage/stored-kv.ts), so a million entries are never all in the heap.
 */
import { packBatch, packedSize } from '../wire/index.js';
import type { Entry } from './kvmap.js';

/** An entry's key and its exact size in a packed batch (`packedSize`), without the entry. */
export interface SizedKey {
  readonly key: string;
  readonly bytes: number;
}

/**
 * An entry as packed-batch bytes: `source` from `start` to `end`. A stream sends these bytes as
 * they are: the packed map hands out the records it holds, with nothing decoded but the keys.
 * Those bytes never change once handed out (a packed map's records are written once; other views
 * pack fresh buffers), so a message may be a view of them rather than a copy.
 */
export interface PackedRecord {
  readonly key: string;
  readonly source: Buffer;
  readonly start: number;
  readonly end: number;
}

/** Entries packed into one buffer, as records (views that hold entries as objects). */
export function packRecords(entries: readonly Entry[]): PackedRecord[] {
  const source = packBatch(entries);
  let end = 0;
  return entries.map((entry) => {
    const start = end;
    end += packedSize(entry);
    return { key: entry.key, source, start, end };
  });
}

export interface KvView {
  /** The next entries, at most `max` (none once all were read). */
  next(max: number): Entry[];
  /** `next`, as packed bytes (see PackedRecord). */
  nextPacked(max: number): PackedRecord[];
  /** `next`, but only each entry's key and packed size: much cheaper from a durable map. */
  nextSizes(max: number): SizedKey[];
  /** A new cursor over the same point in time, from its start. */
  again(): KvView;
  /** Releases what the view holds, for every cursor of it. Idempotent. */
  close(): void;
}

/** Which write made a key's current entry: its uuid and sequence (de-duplication, core/sequencer.ts). */
export interface Written {
  readonly uuid: string;
  readonly sequence: number;
}

/** Where a key-value machine keeps its entries (core/kv-machine.ts): a map and its views. */
export interface KeyValueState {
  readonly size: number;
  get(key: string): Entry | undefined;
  /** The uuid and sequence of the key's entry, read in place where the map can (else `get` does). */
  currentWrite?(key: string): Written | undefined;
  /** Stores the entry, or removes the key when the body is empty (CHP's delete). */
  put(entry: Entry): void;
  /**
   * The entries under a prefix as they are now: the view is fixed when this is called, and may be
   * read across event-loop turns (the map keeps changing meanwhile). The caller closes it.
   */
  view(prefix: string): KvView;
  /** An empty state of the same kind, to fill while a snapshot streams in. */
  empty(): KeyValueState;
}

export class ArrayView implements KvView {
  private at = 0;

  constructor(private readonly entries: readonly Entry[]) {}

  next(max: number): Entry[] {
    const run = this.entries.slice(this.at, this.at + max);
    this.at += run.length;
    return run;
  }

  nextSizes(max: number): SizedKey[] {
    return this.next(max).map((entry) => ({ key: entry.key, bytes: packedSize(entry) }));
  }

  nextPacked(max: number): PackedRecord[] {
    return packRecords(this.next(max));
  }

  again(): ArrayView {
    return new ArrayView(this.entries);
  }

  close(): void {}
}

/**
 * Reads a view a run of `run` entries at a time, giving the event loop a turn after each, and
 * closes it once read, or once `each` returns false (the reader stops early).
 */
export async function eachRun(
  view: KvView,
  run: number,
  each: (entries: Entry[]) => boolean | void,
): Promise<void> {
  try {
    for (let entries = view.next(run); entries.length > 0; entries = view.next(run)) {
      if (each(entries) === false) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    view.close();
  }
}

/** The entries of a view that `keep` accepts (all by default), read a run per event-loop turn. */
export async function readAll(view: KvView, keep: (entry: Entry) => boolean = () => true): Promise<Entry[]> {
  const out: Entry[] = [];
  await eachRun(view, 10_000, (entries) => {
    for (const entry of entries) if (keep(entry)) out.push(entry);
  });
  return out;
}

/**
 * A view without the keys `skip` names (the event bus's reserved namespace, for clients): each
 * run still has up to `max` entries, and is empty only once the view underneath is read out.
 */
export class FilteredView implements KvView {
  constructor(
    private readonly inner: KvView,
    private readonly skip: (key: string) => boolean,
  ) {}

  next(max: number): Entry[] {
    return this.collect(max, (n) => this.inner.next(n));
  }

  nextSizes(max: number): SizedKey[] {
    return this.collect(max, (n) => this.inner.nextSizes(n));
  }

  nextPacked(max: number): PackedRecord[] {
    return this.collect(max, (n) => this.inner.nextPacked(n));
  }

  private collect<T extends { key: string }>(max: number, read: (n: number) => T[]): T[] {
    const out: T[] = [];
    while (out.length < max) {
      const run = read(max - out.length);
      if (run.length === 0) break;
      for (const item of run) if (!this.skip(item.key)) out.push(item);
    }
    return out;
  }

  again(): FilteredView {
    return new FilteredView(this.inner.again(), this.skip);
  }

  close(): void {
    this.inner.close();
  }
}
