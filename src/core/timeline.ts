/**
 * The pair's history of promotions. Each promotion opens a new term: a random id, the epoch it
 * was won with, and the first sequence number it assigned. Two nodes that were both active (split
 * brain) have histories that fork at the loser's last term; a client or a passive that wants to
 * resume from (sequence, term) is on our timeline only if that term is in our history and the
 * sequence falls before the next term began. Anything else must take a full snapshot, because the
 * same sequence numbers may mean different changes on the other branch (promise 4).
 */
import type { TimelineEntry } from '../wire/index.js';
export type { TimelineEntry };

const KEEP = 32;

/** A history as a storage keeps it. */
export interface StoredHistory {
  readonly entries?: readonly TimelineEntry[];
  readonly epoch?: number;
  /** the node held a complete copy of the history (the FSM's `history` fact) */
  readonly history?: boolean;
}

export class Timeline {
  private entries: TimelineEntry[];
  private highestEpoch: number;
  private complete: boolean | undefined;
  /**
   * What was stored when this node started, if it had a history at all: a node restarted from its
   * data directory, as opposed to a fresh one (a restored snapshot starts a new history).
   */
  readonly restored: { readonly epoch: number; readonly history: boolean } | undefined;

  /**
   * Starts from a history loaded from storage. `onChange` is called after every change of the
   * terms or the epoch, so that a storage can persist them with the log.
   */
  constructor(
    stored: StoredHistory = {},
    private readonly onChange?: () => void,
  ) {
    this.entries = (stored.entries ?? []).slice(-KEEP);
    this.highestEpoch = Math.max(stored.epoch ?? 0, this.current?.epoch ?? 0);
    this.complete = stored.history;
    // A history stored before the flag existed counts as incomplete: the peer decides.
    if (this.entries.length > 0)
      this.restored = { epoch: this.highestEpoch, history: stored.history ?? false };
  }

  /** Whether this node holds a complete copy of the history (stored, so a restart knows). */
  get history(): boolean | undefined {
    return this.complete;
  }

  setHistory(complete: boolean): void {
    if (complete === this.complete) return;
    this.complete = complete;
    this.onChange?.();
  }

  /**
   * The highest epoch this node knows was taken: by its own promotions, or by the active it
   * follows. A promotion must take a higher one (dual actives are decided by epoch).
   */
  get epoch(): number {
    return this.highestEpoch;
  }

  /** Learn of a higher epoch (never lowers it). */
  raiseEpoch(epoch: number): void {
    if (epoch <= this.highestEpoch) return;
    this.highestEpoch = epoch;
    this.onChange?.();
  }

  get current(): TimelineEntry | undefined {
    return this.entries[this.entries.length - 1];
  }

  get term(): string {
    return this.current?.term ?? '';
  }

  list(): TimelineEntry[] {
    return [...this.entries];
  }

  /** A new term starts at `startSequence` (this node just became active). */
  open(entry: TimelineEntry): void {
    this.entries.push(entry);
    if (this.entries.length > KEEP) this.entries.splice(0, this.entries.length - KEEP);
    this.highestEpoch = Math.max(this.highestEpoch, entry.epoch);
    this.onChange?.();
  }

  /** Take the active's history as ours (after a sync from it). */
  adopt(entries: readonly TimelineEntry[]): void {
    this.entries = entries.slice(-KEEP);
    this.onChange?.();
  }

  /** Does a history that reached `sequence` under `term` agree with ours up to that point? */
  includes(sequence: number, term: string): boolean {
    const i = this.entries.findIndex((e) => e.term === term);
    if (i === -1) return false;
    const next = this.entries[i + 1];
    return next === undefined || sequence < next.startSequence;
  }

  /**
   * Where another node's history leaves ours: the first sequence of the first term of theirs we
   * do not share. Our changes from there on are unknown to them. Undefined if theirs holds nothing
   * new (then we are not behind them).
   */
  forkPoint(theirs: readonly TimelineEntry[]): number | undefined {
    const ours = new Set(this.entries.map((e) => e.term));
    return theirs.find((e) => !ours.has(e.term))?.startSequence;
  }

  /**
   * The last sequence both histories share: just before the first term that only one of them
   * has. Both nodes compute the same number from the two timelines, which is what lets two
   * actives agree on who served more since they parted. Infinity if neither has a term the other
   * lacks (they have not forked).
   */
  commonUpTo(theirs: readonly TimelineEntry[]): number {
    const theirTerms = new Set(theirs.map((e) => e.term));
    const onlyOurs = this.entries.find((e) => !theirTerms.has(e.term))?.startSequence ?? Infinity;
    const onlyTheirs = this.forkPoint(theirs) ?? Infinity;
    return Math.min(onlyOurs, onlyTheirs) - 1;
  }
}
