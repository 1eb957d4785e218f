/**
 * The sending side of the native update stream (wire/updates.ts): the key changes that one
 * release of the publication watermark frees (publishing.ts) go out as one packed batch per
 * subscribed prefix, where the RFC 12 publisher sends one 5-frame KVPUB per change. libzmq's PUB
 * writes every frame of every message to every matching subscriber's pipe in the sending thread,
 * and its I/O thread then makes about one TCP write per subscriber per message: both costs are now
 * paid per batch (docs/performance.md, "Fan-out"). A batch goes out at the end of the release that
 * filled it: waiting to gather more (a linger, as Kafka's producer has) cost latency and saved
 * no CPU below 5 ms (measured, docs/performance.md). Pure: sends through `post` (the stream's
 * publisher, zmq/stream-publisher.ts, which now writes to each subscriber's socket itself).
 */
import { encodeUpdates, sizedChunks, type PackedEntry } from '../wire/index.js';
import { isDeletePrefix, type Entry } from '../kv/index.js';

export interface UpdateStreamDeps {
  /** send a message on the update stream (zmq/stream-publisher.ts) */
  post(frames: Buffer[]): void;
  /** send a HUGZ on it, only to subscribers sent nothing else in the last `quietMs` (0: to all) */
  heartbeat(frames: Buffer[], quietMs: number): void;
  /** the prefixes subscribed to on the update stream now (a client's subscription, NUL removed) */
  readonly prefixes: ReadonlySet<string>;
  /** no batch above this many bytes, but for one entry bigger on its own (wire chunkBytes) */
  readonly maxBatchBytes: number;
}

export class UpdateStream {
  /** published changes (KVPUBs: relative TTLs) gathered since the last flush */
  private pending: PackedEntry[] = [];

  constructor(private readonly deps: UpdateStreamDeps) {}

  /**
   * A key change as the publisher sends it (with `twinstar-prev` when an event came between):
   * held for the next `flush`, if anyone follows the stream.
   */
  add(published: Entry): void {
    if (this.deps.prefixes.size === 0) return;
    // Most changes have no deadline: the entry itself, no copy.
    if (published.expiresAt === 0) return void this.pending.push(published);
    const { key, sequence, uuid, properties, body } = published;
    this.pending.push({ key, sequence, uuid, properties, body, expiresAt: 0 });
  }

  /**
   * Sends what `add` gathered, now: for each subscribed prefix, the changes under it, in order. A delete
   * by prefix also reaches the subscribers of a longer prefix under it, keyed by that prefix, as
   * the RFC 12 publisher does it (publishing.ts, issue 17).
   */
  flush(): void {
    if (this.pending.length === 0) return;
    const entries = this.pending;
    this.pending = [];
    for (const prefix of this.deps.prefixes) {
      const batch = prefix === '' ? entries : under(prefix, entries);
      if (batch.length === 0) continue;
      for (const { entries: chunk, bytes } of sizedChunks(batch, Infinity, this.deps.maxBatchBytes))
        this.deps.post(encodeUpdates(prefix, chunk, bytes));
    }
  }

  /**
   * A HUGZ (encoded for the publisher), after every change gathered before it, to the subscribers
   * that neither this flush nor any batch in the last `quietMs` reached (0: to all).
   */
  heartbeat(hugz: Buffer[], quietMs: number): void {
    this.flush();
    this.deps.heartbeat(hugz, quietMs);
  }

  /**
   * A subscription to `prefix` was read off the socket: an empty batch tells its subscribers that it
   * is in force from here on (every batch after it holds their changes); a client resumes from
   * its snapshot at the first batch of its own, so nothing published before is missed.
   */
  confirm(prefix: string): void {
    this.deps.post(encodeUpdates(prefix, []));
  }
}

/** The changes a subscriber of `prefix` gets, in order: its keys, and deletes of a prefix of it. */
function under(prefix: string, entries: readonly PackedEntry[]): PackedEntry[] {
  const batch: PackedEntry[] = [];
  for (const e of entries) {
    if (e.key.startsWith(prefix)) batch.push(e);
    else if (prefix.startsWith(e.key) && isDeletePrefix(e)) batch.push({ ...e, key: prefix });
  }
  return batch;
}
