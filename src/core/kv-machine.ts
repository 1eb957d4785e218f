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
} from '../kv/index.js';
import { isReserved, RESERVED_PREFIX } from '../events/index.js';
import { Deadlines, type Scheduled } from './deadlines.js';
import type { DueChange, StateMachine } from './state-machine.js';

export type { KeyValueState };

interface Ttl extends Scheduled {
  readonly at: number;
  readonly key: string;
  readonly sequence: number;
}

const EMPTY = Buffer.alloc(0);

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

  apply(entry: Entry): void {
    if (isDeletePrefix(entry)) this.deleteUnder(entry);
    this.map.put(entry);
    if (entry.expiresAt > 0 && entry.body.length > 0)
      this.ttl.schedule({ at: entry.expiresAt, key: entry.key, sequence: entry.sequence });
  }

  /** A delete by prefix (issue 17): every key under it goes, at the change's sequence; never the bus's. */
  private deleteUnder(change: Entry): void {
    const view = this.map.view(change.key);
    const gone: string[] = [];
    try {
      for (let run = view.next(10_000); run.length > 0; run = view.next(10_000))
        for (const entry of run) if (!isReserved(entry.key)) gone.push(entry.key);
    } finally {
      view.close();
    }
    for (const key of gone)
      this.map.put({ key, sequence: change.sequence, uuid: '', properties: '', body: EMPTY, expiresAt: 0 });
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
