/**
 * Malformed input from a server, on the client side (promise 6, "bad input is survived"): a
 * message the client cannot decode is dropped and counted by reason, and a server that sends
 * malformed replies is left out of the search for the active for a while, so that a broken or
 * impostor server can neither crash the application nor keep the client in a tight loop.
 *
 * Pure bookkeeping: no sockets, and time comes from the caller.
 */
import { isCounter, KvMsgError, MAX_SEQUENCE } from '../wire/index.js';

/** Where the dropped message came from: the snapshot socket (replies) or the publisher. */
export type DropSource = 'reply' | 'published';

/** The 'dropped' event's payload. */
export interface DropInfo {
  /** the snapshot endpoint of the server that sent it */
  readonly server: string;
  readonly source: DropSource;
  /** a short stable word: a codec reason (src/wire/chp.ts) or one of ClientDropReason */
  readonly reason: string;
  readonly message: string;
}

/**
 * Reasons only the client gives (the codec's reasons, such as 'batch-truncated', come from
 * KvMsgError): a TACK whose sequences do not match its writes, a reply that is not a message of
 * the protocol, an event for no open subscription, and an error the client's own handler hit (a
 * bug: counted rather than thrown).
 */
export type ClientDropReason =
  | 'ack-size'
  | 'ack-sequence'
  | 'unexpected-reply'
  | 'handler-error'
  /** a TEVT for a subscription that is not open, or from a server not in use */
  | 'unknown-subscription';

/** Thrown by the client's own checks of native replies; its reason is counted like a codec one. */
export class ReplyError extends Error {
  constructor(
    readonly reason: ClientDropReason,
    message: string,
  ) {
    super(message);
  }
}

/** Whether an error says the server's message was malformed (rather than a bug of the client). */
export function isMalformed(error: unknown): error is KvMsgError | ReplyError {
  return error instanceof KvMsgError || error instanceof ReplyError;
}

/** The reason word for an error caught while handling a server's message. */
export function reasonOf(error: unknown): string {
  return isMalformed(error) ? error.reason : 'handler-error';
}

export class DropCounter {
  private readonly counts = new Map<string, number>();
  private sum = 0;

  count(reason: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.sum++;
  }

  get total(): number {
    return this.sum;
  }

  /** A copy: reason -> messages dropped for it since the client started. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}

/**
 * Servers whose replies were malformed. Until its time is up a server gets no vote (sync
 * request): the client tries the other one, and a server that answers every request with garbage
 * is asked again once per period instead of in a tight loop.
 */
export class Quarantine {
  private readonly until = new Map<number, number>();

  add(server: number, until: number): void {
    this.until.set(server, Math.max(until, this.until.get(server) ?? 0));
  }

  has(server: number, now: number): boolean {
    const until = this.until.get(server);
    if (until === undefined) return false;
    if (now < until) return true;
    this.until.delete(server);
    return false;
  }

  get size(): number {
    return this.until.size;
  }
}

/**
 * The sequences of a TACK (decoded by the codec) against the writes they answer: one per write, in
 * request order, each a counter from 1 to MAX_SEQUENCE. Anything else is a malformed
 * acknowledgement (ReplyError), and none of its writes is settled by it.
 */
export function checkAckSequences(sequences: readonly number[], writes: number): readonly number[] {
  if (sequences.length !== writes)
    throw new ReplyError('ack-size', `TACK carries ${sequences.length} sequences for ${writes} writes`);
  sequences.forEach((value, i) => {
    if (!isCounter(value) || value === 0 || value > MAX_SEQUENCE)
      throw new ReplyError('ack-sequence', `TACK sequence ${value} of write ${i} is out of range`);
  });
  return sequences;
}
