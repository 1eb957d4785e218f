/**
 * The publication watermark: committed changes wait here, in sequence order, until clients may
 * see them. In a pair that is once the passive holds them (a client that saw a change the passive
 * lacks would, after a failover, see its sequence number reused for another change: promise 1);
 * on a lone active, at once. Whoever owns the queue says how far it may go (`release(upTo)`) and
 * when to stop for now (`mayContinue`, e.g. a time budget or a full send queue); the queue keeps
 * its place, so the next `release` goes on from there. Pure: no clock, no sockets.
 */

export interface Sequenced {
  readonly sequence: number;
}

/** 'done': nothing more may be released now. 'paused': `mayContinue` stopped it; call again later. */
export type ReleaseOutcome = 'done' | 'paused';

/** Released entries above which the queue drops them from memory, if they are half of it or more. */
const COMPACT_AFTER = 1024;

export class PublicationQueue<T extends Sequenced> {
  private queue: T[] = [];
  private head = 0;
  private published = 0;

  /** The sequence of the last change released, or the one the queue was started at. */
  get publishedSequence(): number {
    return this.published;
  }

  /** Changes committed and not released yet. */
  get size(): number {
    return this.queue.length - this.head;
  }

  /** A change just committed: held until `release` reaches its sequence. Sequences only grow. */
  push(entry: T): void {
    this.queue.push(entry);
  }

  /**
   * Forgets every change held (a demoted node never publishes what it did not publish: those
   * changes are not on the winner's timeline); with a sequence, counts from there (a node that
   * becomes active has published, in effect, everything it holds).
   */
  reset(sequence?: number): void {
    this.queue = [];
    this.head = 0;
    if (sequence !== undefined) this.published = sequence;
  }

  /**
   * Releases, in order, the held changes whose sequence is at most `upTo`, handing each to
   * `publish`. Before each one, `mayContinue(released so far in this call)` may stop the release
   * ('paused'); otherwise it ends when the next held change is above `upTo` or none is left.
   */
  release(
    upTo: number,
    publish: (entry: T) => void,
    mayContinue: (released: number) => boolean,
  ): ReleaseOutcome {
    const queue = this.queue;
    const start = this.head;
    let i = start;
    let outcome: ReleaseOutcome = 'done';
    for (; i < queue.length && queue[i]!.sequence <= upTo; i++) {
      if (!mayContinue(i - start)) {
        outcome = 'paused';
        break;
      }
      publish(queue[i]!);
      this.published = queue[i]!.sequence;
    }
    if (i === queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (i > COMPACT_AFTER && i * 2 > queue.length) {
      this.queue = queue.slice(i);
      this.head = 0;
    } else {
      this.head = i;
    }
    return outcome;
  }
}
