/**
 * One map made of two: keys under `prefix` live in `inside`, all others in `outside`. The server
 * keeps its key-value entries packed (PackedKvMap: little memory, a decode per read) and the event
 * bus's reserved keys as objects (KvMap): events are few next to keys (retention bounds them), are
 * read once per subscriber and group right after they are written, and are deleted soon, where
 * packing would cost a decode per delivery and a rewrite per delete.
 *
 * A view of a prefix reads the one part that can hold such keys, or both, one after the other,
 * when the prefix is also a prefix of `prefix` (the empty prefix: the whole map).
 */
import type { Entry } from './kvmap.js';
import type { KeyValueState, KvView, PackedRecord, SizedKey, Written } from './view.js';

export class PartitionedMap implements KeyValueState {
  constructor(
    private readonly prefix: string,
    readonly inside: KeyValueState,
    readonly outside: KeyValueState,
  ) {}

  get size(): number {
    return this.inside.size + this.outside.size;
  }

  get(key: string): Entry | undefined {
    return this.partOf(key).get(key);
  }

  currentWrite(key: string): Written | undefined {
    const part = this.partOf(key);
    return part.currentWrite ? part.currentWrite(key) : part.get(key);
  }

  put(entry: Entry): void {
    this.partOf(entry.key).put(entry);
  }

  view(prefix: string): KvView {
    if (prefix.startsWith(this.prefix)) return this.inside.view(prefix);
    if (!this.prefix.startsWith(prefix)) return this.outside.view(prefix);
    return new ConcatView(this.outside.view(prefix), this.inside.view(prefix));
  }

  /** The entries under a prefix now, all at once (tests, small maps; a view reads in runs). */
  snapshot(prefix: string): Entry[] {
    const view = this.view(prefix);
    const out: Entry[] = [];
    for (let run = view.next(10_000); run.length > 0; run = view.next(10_000)) out.push(...run);
    return out;
  }

  empty(): PartitionedMap {
    return new PartitionedMap(this.prefix, this.inside.empty(), this.outside.empty());
  }

  private partOf(key: string): KeyValueState {
    return key.startsWith(this.prefix) ? this.inside : this.outside;
  }
}

/** Two views read as one: all of the first, then the second. */
class ConcatView implements KvView {
  constructor(
    private readonly first: KvView,
    private readonly second: KvView,
  ) {}

  next(max: number): Entry[] {
    return this.read(max, (view, n) => view.next(n));
  }

  nextSizes(max: number): SizedKey[] {
    return this.read(max, (view, n) => view.nextSizes(n));
  }

  nextPacked(max: number): PackedRecord[] {
    return this.read(max, (view, n) => view.nextPacked(n));
  }

  private read<T>(max: number, from: (view: KvView, n: number) => T[]): T[] {
    const run = from(this.first, max);
    return run.length > 0 ? run : from(this.second, max);
  }

  again(): ConcatView {
    return new ConcatView(this.first.again(), this.second.again());
  }

  close(): void {
    this.first.close();
    this.second.close();
  }
}
