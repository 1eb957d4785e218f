/**
 * What a node that lost a dual-active meeting had that the winner may not have. The same holds for
 * a node that restarted from its data and found its peer held the newer, forked history.
 *
 * At demotion the loser notes every change it sequenced after the two histories parted, and
 * whether it had acknowledged each one to a client. It cannot yet tell which of them the winner
 * holds anyway (clients re-send unacknowledged writes to the new active with their original uuid),
 * so the report waits until the loser has synced from the winner: then a change whose uuid the
 * winner applied is not lost, and only the rest are reported. Without this, every freeze of the
 * active past the failover timeout raised an error-level "lost" report for writes the winner held.
 */
import type { Entry } from '../kv/index.js';

export interface DivergentUpdate {
  readonly key: string;
  readonly sequence: number;
  /** hex */
  readonly uuid: string;
  readonly deleted: boolean;
  /** a client was told this write was durable */
  readonly acknowledged: boolean;
}

/** How this node came to follow a peer whose history forked from its own. */
export type DivergenceCause = 'dual-active' | 'restart';

export interface DivergenceReport {
  readonly cause: DivergenceCause;
  /** the last sequence both histories shared */
  readonly commonUpTo: number;
  /** changes the loser sequenced after that point */
  readonly candidates: number;
  /** of those, the ones the winner does not hold */
  readonly lost: DivergentUpdate[];
  readonly acknowledgedLost: number;
}

interface Candidate {
  readonly entry: Entry;
  readonly acknowledged: boolean;
}

export class Divergence {
  private pending: { cause: DivergenceCause; commonUpTo: number; candidates: Candidate[] } | undefined;

  /** The node just lost a dual-active meeting; `changes` are what it sequenced after `commonUpTo`. */
  lost(
    commonUpTo: number,
    changes: readonly Entry[],
    acknowledged: (uuid: string) => boolean,
    cause: DivergenceCause = 'dual-active',
  ): void {
    this.pending = {
      cause,
      commonUpTo,
      candidates: changes.map((entry) => ({ entry, acknowledged: acknowledged(entry.uuid) })),
    };
  }

  get waiting(): boolean {
    return this.pending !== undefined;
  }

  /**
   * The node has synced from the winner: report what the winner lacks. `winnerHolds` says whether
   * the winner applied a write with that uuid.
   */
  settle(winnerHolds: (entry: { uuid: string; key: string }) => boolean): DivergenceReport | undefined {
    const pending = this.pending;
    this.pending = undefined;
    if (pending === undefined) return undefined;
    const lost = pending.candidates
      .filter(({ entry }) => !winnerHolds(entry))
      .map(({ entry, acknowledged }) => ({
        key: entry.key,
        sequence: entry.sequence,
        uuid: Buffer.from(entry.uuid, 'latin1').toString('hex'),
        deleted: entry.body.length === 0,
        acknowledged,
      }));
    return {
      cause: pending.cause,
      commonUpTo: pending.commonUpTo,
      candidates: pending.candidates.length,
      lost,
      acknowledgedLost: lost.filter((u) => u.acknowledged).length,
    };
  }
}

/**
 * The uuids of the most recent writes this node acknowledged to clients, bounded: the loser of a
 * dual active says which of its lost updates a client had been told were durable.
 */
export class AcknowledgedWrites {
  private readonly ring: (string | undefined)[];
  private head = 0;
  private readonly set = new Set<string>();

  /** 100,000 by default (not dedupeSize, which caps a time horizon and defaults to millions) */
  constructor(capacity = 100_000) {
    this.ring = new Array<string | undefined>(Math.max(1, capacity));
  }

  add(uuid: string): void {
    if (this.set.has(uuid)) return;
    const evicted = this.ring[this.head];
    if (evicted !== undefined) this.set.delete(evicted);
    this.ring[this.head] = uuid;
    this.head = (this.head + 1) % this.ring.length;
    this.set.add(uuid);
  }

  has(uuid: string): boolean {
    return this.set.has(uuid);
  }
}
