/**
 * Recent write uuids and the sequence each got, for de-duplication of retried writes. Clients
 * retry by the clock, so the horizon is a time: every uuid is remembered for at least `horizonMs`
 * after it was set. `maxSize` bounds the memory: when it is reached the oldest uuid goes even if
 * it is younger than the horizon, and `onEvictedEarly` is told (a retry of that write could then
 * apply twice). Pure: the caller passes the time in.
 *
 * A FIFO ring of (uuid, time) gives the eviction order; a Map gives the lookup. The ring grows and
 * shrinks by doubling and halving, so insert and lookup stay O(1) amortised. (Evicting through
 * `map.keys().next()` instead looks O(1) but walks V8's tombstones of earlier deletes, which made
 * this quadratic: 40 ms per thousand inserts past 100k.)
 */
import { UUID_BYTES } from '../wire/index.js';

/** The uuid of a change the server makes itself (a group op, a lease): never de-duplicated. */
export const ZERO_UUID = '\0'.repeat(UUID_BYTES);

/** Only a proper 16-byte, non-zero uuid identifies a write; foreign clients may send anything. */
export function isDedupeUuid(uuid: string): boolean {
  return uuid.length === UUID_BYTES && uuid !== ZERO_UUID;
}

export interface UuidWindowOptions {
  /** every uuid is remembered at least this long (ms) unless `maxSize` forces it out */
  horizonMs: number;
  /** the most uuids remembered at once: the memory bound */
  maxSize: number;
  /** the cap forced out a uuid only `ageMs` old, younger than `horizonMs` */
  onEvictedEarly?: (ageMs: number) => void;
}

const MIN_CAPACITY = 1024;

export class UuidWindow {
  private uuids: (string | undefined)[];
  private times: Float64Array;
  /** ring index of the oldest uuid */
  private tail = 0;
  private count = 0;
  private readonly seqs = new Map<string, number>();
  private readonly maxSize: number;
  private readonly minCapacity: number;
  /** how many uuids the cap forced out before `horizonMs` had passed */
  evictedEarly = 0;

  constructor(private readonly options: UuidWindowOptions) {
    this.maxSize = Math.max(1, options.maxSize);
    this.minCapacity = Math.min(this.maxSize, MIN_CAPACITY);
    this.uuids = new Array<string | undefined>(this.minCapacity);
    this.times = new Float64Array(this.minCapacity);
  }

  get size(): number {
    return this.seqs.size;
  }

  /** slots in the ring: it grows with the uuids remembered and shrinks as they are forgotten */
  get capacity(): number {
    return this.uuids.length;
  }

  get(uuid: string): number | undefined {
    return this.seqs.get(uuid);
  }

  /**
   * Remember `uuid` as applied at `sequence`, at time `now`. A uuid already remembered keeps its
   * place and its time (it is the same write), and takes the new sequence.
   */
  set(uuid: string, sequence: number, now: number): void {
    if (this.seqs.has(uuid)) {
      this.seqs.set(uuid, sequence);
      return;
    }
    this.forgetOlderThan(now - this.options.horizonMs);
    if (this.count === this.maxSize) {
      const age = now - this.times[this.tail]!;
      this.dropOldest();
      this.evictedEarly++;
      this.options.onEvictedEarly?.(age);
    }
    if (this.count === this.uuids.length) this.resize(Math.min(this.maxSize, 2 * this.uuids.length));
    const at = (this.tail + this.count) % this.uuids.length;
    this.uuids[at] = uuid;
    this.times[at] = now;
    this.count++;
    this.seqs.set(uuid, sequence);
  }

  /**
   * Forgets the uuids past the horizon at `now` without a new one coming (a timer calls it), so
   * that a burst of writes does not hold its uuids until the next writes push them out.
   */
  prune(now: number): void {
    this.forgetOlderThan(now - this.options.horizonMs);
  }

  /** Forgets every uuid set at or before `cutoff`; halves the ring once it is mostly empty. */
  private forgetOlderThan(cutoff: number): void {
    while (this.count > 0 && this.times[this.tail]! <= cutoff) this.dropOldest();
    const capacity = this.uuids.length;
    if (capacity > this.minCapacity && this.count < capacity / 4) {
      this.resize(Math.max(this.minCapacity, Math.floor(capacity / 2)));
    }
  }

  private dropOldest(): void {
    this.seqs.delete(this.uuids[this.tail]!);
    this.uuids[this.tail] = undefined;
    this.tail = (this.tail + 1) % this.uuids.length;
    this.count--;
  }

  /** Copies the ring, oldest first, into arrays of `capacity` (at least `count`). */
  private resize(capacity: number): void {
    const uuids = new Array<string | undefined>(capacity);
    const times = new Float64Array(capacity);
    for (let i = 0; i < this.count; i++) {
      const from = (this.tail + i) % this.uuids.length;
      uuids[i] = this.uuids[from];
      times[i] = this.times[from]!;
    }
    this.uuids = uuids;
    this.times = times;
    this.tail = 0;
  }
}
