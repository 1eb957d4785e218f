/**
 * The key-value map as a state machine: a `KeyValueState` holds the entries (in memory a
 * `PartitionedMap`: keys packed, the event bus's entries as objects; or the durable storage's own,
 * which keeps values out of the JS heap), a `Deadlines` heap their TTLs.
 * An expired key becomes a sequenced delete that only the active asks for (promise 5); the
 * passive schedules the same deadlines so that it can take over at promotion.
 *
 * It lives beside the sequencer, not in kv/, so that kv/ stays a leaf that imports no core
 * module (core already depends on kv for `Entry`): no import cycle between the folders.
 */
import {
  KvMap,
  PackedKvMap,
  PartitionedMap,
  isDeletePrefix,
  readAll,
  type Entry,
  type KeyValueState,
  type Written,
} from '../kv/index.js';
import { isReserved, RESERVED_PREFIX } from '../events/index.js';
import { Deadlines, type Scheduled } from './deadlines.js';
import type { CurrentWrites, DueChange, StateMachine } from './state-machine.js';

export type { KeyValueState };

interface Ttl extends Scheduled {
  readonly at: number;
  readonly key: string;
  readonly sequence: number;
}

const EMPTY = Buffer.alloc(0);
const NONE: readonly Written[] = [];

/** In memory: keys packed, the event bus's reserved keys as objects (src/kv/partitioned.ts says why). */
function memoryState(): KeyValueState {
  return new PartitionedMap(RESERVED_PREFIX, new KvMap(), new PackedKvMap());
}

export class KvMachine implements StateMachine {
  constructor(readonly map: KeyValueState = memoryState()) {}

  private readonly ttl = new Deadlines<Ttl>({
    // A deadline counts while the entry it was set for is still the current one.
    isLive: (d) => {
      const current = this.map.get(d.key);
      return current !== undefined && current.sequence === d.sequence && current.expiresAt === d.at;
    },
    liveBound: () => this.map.size,
  });

  /** TTL items held, superseded ones included (memory bound checks). */
  get deadlinesHeld(): number {
    return this.ttl.held;
  }

  /** This machine holds each key's current entry, and with it the uuid of the write that made it. */
  readonly writes: CurrentWrites = {
    current: (key) => (this.map.currentWrite ? this.map.currentWrite(key) : this.map.get(key)),
    replacedBy: (entry, known) => {
      if (isDeletePrefix(entry)) return this.under(entry.key);
      const current = known === undefined ? this.writes.current(entry.key) : known;
      return current ? [current] : NONE;
    },
    keeps: (entry) => entry.body.length > 0,
  };

  apply(entry: Entry): void {
    if (isDeletePrefix(entry)) this.deleteUnder(entry);
    this.map.put(entry);
    if (entry.expiresAt > 0 && entry.body.length > 0)
      this.ttl.schedule({ at: entry.expiresAt, key: entry.key, sequence: entry.sequence });
  }

  /** A delete by prefix (issue 17): every key under it goes, at the change's sequence; never the bus's. */
  private deleteUnder(change: Entry): void {
    for (const { key } of this.under(change.key))
      this.map.put({ key, sequence: change.sequence, uuid: '', properties: '', body: EMPTY, expiresAt: 0 });
  }

  /** The keys under a prefix that a delete by prefix removes (not the bus's), with their writes. */
  private under(prefix: string): (Written & { key: string })[] {
    const view = this.map.view(prefix);
    const found: (Written & { key: string })[] = [];
    try {
      for (let run = view.next(10_000); run.length > 0; run = view.next(10_000))
        for (const { key, uuid, sequence } of run) if (!isReserved(key)) found.push({ key, uuid, sequence });
    } finally {
      view.close();
    }
    return found;
  }

  snapshot(): Promise<Entry[]> {
    return readAll(this.map.view(''));
  }

  empty(): KvMachine {
    return new KvMachine(this.map.empty());
  }

  restore(entries: Iterable<Entry>): void {
    for (const entry of entries) this.apply(entry);
  }

  /** The earliest live TTL deadline, if any. */
  nextDeadline(): number | undefined {
    return this.ttl.next();
  }

  /**
   * Entries whose TTL has run out, earliest first. They stay in the map until the delete the
   * caller sequences for each is applied.
   */
  expired(now: number, max = Infinity): Entry[] {
    return this.ttl.due(now, max).map((d) => this.map.get(d.key)!);
  }

  due(now: number, max: number): DueChange[] {
    return this.expired(now, max).map((gone) => ({
      key: gone.key,
      properties: '',
      body: EMPTY,
      expiresAt: 0,
    }));
  }
}
