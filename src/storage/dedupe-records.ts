/**
 * Which de-duplication records LmdbStorage keeps on disk. The window in memory (UuidWindow)
 * forgets a uuid after `horizonMs` or when `maxSize` pushes it out; this FIFO of the records
 * written, oldest first, says which stored records to delete in the same transaction, so the
 * stored window stays as bounded as the one in memory. A restart replays the stored records,
 * oldest first, into a fresh UuidWindow with their original times. Pure: no lmdb, no clock.
 */
import { RecordError, seal, unseal } from './records.js';

export interface DedupeRecord {
  /** when the write was applied (ms), the start of its horizon */
  readonly time: number;
  readonly sequence: number;
  readonly uuid: string;
}

/** A stored record's key: ordered by time, then sequence (unique). */
export type DedupeKey = [number, number];

export class DedupeRecords {
  private times: number[] = [];
  private seqs: number[] = [];
  private head = 0;

  constructor(
    private readonly maxSize: number,
    private readonly horizonMs: number,
  ) {}

  /** records held */
  get size(): number {
    return this.times.length - this.head;
  }

  static key(record: DedupeRecord): DedupeKey {
    return [record.time, record.sequence];
  }

  static encode(record: DedupeRecord): Buffer {
    return seal(`${record.time}:${record.sequence}`, Buffer.from(record.uuid, 'latin1'));
  }

  static decode(key: unknown, value: Uint8Array | undefined): DedupeRecord {
    if (!Array.isArray(key) || key.length !== 2 || !key.every((n) => typeof n === 'number')) {
      throw new RecordError('corrupt', `dedupe record key ${JSON.stringify(key)} has a bad layout`);
    }
    const [time, sequence] = key as DedupeKey;
    const uuid = unseal(`${time}:${sequence}`, value, 'dedupe record').toString('latin1');
    return { time, sequence, uuid };
  }

  /** A record loaded at start (they come oldest first). */
  restore(record: DedupeRecord): void {
    this.times.push(record.time);
    this.seqs.push(record.sequence);
  }

  /** The keys of the stored records past the horizon at `now` (forgotten here: delete them). */
  expire(now: number): DedupeKey[] {
    const drop: DedupeKey[] = [];
    while (this.size > 0 && this.times[this.head]! <= now - this.horizonMs) {
      drop.push([this.times[this.head]!, this.seqs[this.head]!]);
      this.head++;
    }
    this.compact();
    return drop;
  }

  /**
   * A record is written: returns the keys of the stored records to delete with it, those past
   * the horizon at its time and the oldest beyond `maxSize`.
   */
  add(record: DedupeRecord): DedupeKey[] {
    this.times.push(record.time);
    this.seqs.push(record.sequence);
    const drop: DedupeKey[] = [];
    const cutoff = record.time - this.horizonMs;
    while (this.size > 1 && (this.times[this.head]! <= cutoff || this.size > this.maxSize)) {
      drop.push([this.times[this.head]!, this.seqs[this.head]!]);
      this.head++;
    }
    this.compact();
    return drop;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.seqs = this.seqs.slice(this.head);
      this.head = 0;
    }
  }
}
