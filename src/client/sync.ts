/**
 * Sync assembly, pure (no sockets; time is passed in): the client's one sync at a time, gathered
 * from its stream into one replica load: the native batches as they came, or plain CHP's entries.
 * - native: TSNAP or TRESUME answered by TSYNC batches then TSYNCEND, matched by request id and
 *   server (a stale answer is ignored); TERROR 'busy' means ask the same server again later;
 * - plain CHP: ICANHAZ? answered by KVSYNC messages then KTHXBAI.
 * `due()` tells the client's timer what a sync in progress needs: a retry after 'busy', nothing
 * (still coming), or that it stalled. The client decodes the frames and loads the replica.
 */
import type { Entry } from '../kv/index.js';
import type { PackedBatch } from '../wire/index.js';

interface NativeSync {
  readonly reqId: number;
  readonly server: number;
  readonly batches: PackedBatch[];
  lastProgress: number;
  /** the first sync with a newly found active rather than a resync with the server in use */
  readonly fresh: boolean;
  /** the server was busy (TERROR 'busy'): ask it again at this time */
  retryAt?: number;
}

interface ChpSync {
  readonly server: number;
  readonly entries: Entry[];
  /** when its last message came */
  progress: number;
}

/** What the timer should do about the sync in progress. */
export type SyncDue =
  | { readonly action: 'retry'; readonly server: number; readonly fresh: boolean }
  | { readonly action: 'stalled' }
  | { readonly action: 'reask'; readonly server: number };

export class SyncAssembly {
  private native: NativeSync | undefined;
  private chp: ChpSync | undefined;
  /** plain CHP: the server whose published updates the replica holds while it is asked (-1: none) */
  private holding = -1;

  /** A native sync request `reqId` went to `server`. */
  startNative(reqId: number, server: number, fresh: boolean, now: number): void {
    this.native = { reqId, server, batches: [], lastProgress: now, fresh };
  }

  /** An ICANHAZ? went (or goes again) to `server`: its snapshot starts from nothing. */
  startChp(server: number, now: number): void {
    this.chp = { server, entries: [], progress: now };
  }

  /** No sync in progress any more (the client looks for the active again). */
  stop(): void {
    this.native = undefined;
    this.chp = undefined;
    this.holding = -1;
  }

  /**
   * Plain CHP: an update published by `server`, the one being asked, came before its snapshot ends
   * (the replica holds it). False when the replica holds updates from another server: drop them.
   */
  holdFrom(server: number): boolean {
    const same = this.holding === server;
    this.holding = server;
    return same;
  }

  /** Whether `reqId` is the native sync in progress. */
  isNative(reqId: number): boolean {
    return this.native?.reqId === reqId;
  }

  /** Whether a TSYNC/TSYNCEND/TERROR from `server` answers the native sync in progress. */
  answers(server: number, reqId: number): boolean {
    return this.native !== undefined && this.native.reqId === reqId && this.native.server === server;
  }

  /** A TSYNC batch of the native sync in progress (check `answers` first). */
  batch(batch: PackedBatch, now: number): void {
    const sync = this.native!;
    sync.lastProgress = now;
    sync.batches.push(batch);
  }

  /**
   * TSYNCEND: the sync is over; returns its batches, and whether it was the first sync with a
   * newly found active (`fresh`).
   */
  end(): { synced: { batches: PackedBatch[] }; fresh: boolean } {
    const sync = this.native;
    this.native = undefined;
    return { synced: { batches: sync?.batches ?? [] }, fresh: sync?.fresh ?? true };
  }

  /** TERROR 'busy' to the native sync in progress: ask the same server again at `retryAt`. */
  busy(retryAt: number): void {
    this.native!.retryAt = retryAt;
  }

  /** Whether a plain CHP snapshot from `server` is being received. */
  receivingChp(server: number): boolean {
    return this.chp !== undefined && this.chp.server === server;
  }

  /** A KVSYNC of the CHP snapshot in progress. */
  chpEntry(entry: Entry, now: number): void {
    this.chp!.progress = now;
    this.chp!.entries.push(entry);
  }

  /** KTHXBAI: the CHP snapshot is over; returns its entries. */
  chpEnd(): Entry[] {
    const entries = this.chp?.entries ?? [];
    this.chp = undefined;
    this.holding = -1;
    return entries;
  }

  /** The client was frozen: time it slept through does not count against the native sync. */
  thaw(now: number): void {
    if (this.native) this.native.lastProgress = now;
  }

  /**
   * What the timer should do (the server in use is heard, or the caller would have given up on
   * it): ask again after 'busy'; give up on a native sync that made no progress for
   * `requestTimeoutMs`; ask the same server again for a CHP snapshot whose request or answer was
   * lost (HUGZ keep the server heard, so its own progress must judge it).
   */
  due(now: number, requestTimeoutMs: number): SyncDue | undefined {
    const sync = this.native;
    if (sync?.retryAt !== undefined && now >= sync.retryAt)
      return { action: 'retry', server: sync.server, fresh: sync.fresh };
    if (sync && now - sync.lastProgress > requestTimeoutMs) return { action: 'stalled' };
    if (this.chp && now - this.chp.progress > requestTimeoutMs)
      return { action: 'reask', server: this.chp.server };
    return undefined;
  }
}
