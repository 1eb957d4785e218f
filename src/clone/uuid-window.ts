/**
 * The most recent `capacity` write uuids and the sequence each got, for de-duplication of
 * retried writes. A ring of uuids gives the eviction order; a Map gives the lookup. (Evicting
 * through `map.keys().next()` instead looks O(1) but walks V8's tombstones of earlier deletes,
 * which made this quadratic: 40 ms per thousand inserts past 100k.)
 */
export class UuidWindow {
  private readonly ring: (string | undefined)[];
  private head = 0;
  private readonly seqs = new Map<string, number>();

  constructor(readonly capacity: number) {
    this.ring = new Array<string | undefined>(Math.max(1, capacity));
  }

  get size(): number {
    return this.seqs.size;
  }

  get(uuid: string): number | undefined {
    return this.seqs.get(uuid);
  }

  set(uuid: string, sequence: number): void {
    if (this.seqs.has(uuid)) {
      this.seqs.set(uuid, sequence);
      return;
    }
    const evicted = this.ring[this.head];
    if (evicted !== undefined) this.seqs.delete(evicted);
    this.ring[this.head] = uuid;
    this.head = (this.head + 1) % this.ring.length;
    this.seqs.set(uuid, sequence);
  }
}
