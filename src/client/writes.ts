/**
 * The client's write pipeline: queued writes go to the active in batches (one socket call for many
 * writes), keep their uuid when re-sent after a timeout or a failover (the server applies each
 * once), and settle:
 * - native: once acknowledged and, for a key inside the client's subtree, once the client's own
 *   replica has applied the acknowledged sequence (read-your-writes, read-your-writes.ts). A key
 *   outside the subtree resolves on the acknowledgement: the replica never sees it.
 * - plain CHP: published to every server's collector (Model Six) and resolved with 0.
 * Every wait is bounded by writeTimeoutMs. The client owns the sockets and the phase (WritesHost).
 */
import { encodeKvMsg, encodeRequest, type Durability, type ErrorReply, type Limits } from '../wire/index.js';
import { newUuid } from '../core/index.js';
import {
  ClientSocketError,
  ClosedError,
  ConflictError,
  LeaseNotFoundError,
  QueueFullError,
  ServerRejectedError,
  TimeoutError,
} from '../errors.js';
import { AckedQueue, queued, type Queued } from './acked-queue.js';
import { checkKey, rejectWith } from './arguments.js';
import { checkAckSequences } from './drops.js';
import { AppliedWaiters } from './read-your-writes.js';
import type { Link } from './link.js';

const WRITE_BATCH = 1000;

export interface WritesHost {
  readonly links: readonly Link[];
  readonly subtree: string;
  readonly limits: Limits;
  readonly writeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxPendingWrites: number;
  now(): number;
  /** 'native' | 'chp', or 'auto' while undecided */
  mode(): string;
  closed(): boolean;
  /** the active's link when writes may go out (known active, not closed), else undefined */
  target(): Link | undefined;
  reqId(): number;
  /** the sequence the client's replica reflects */
  applied(): number;
  /** the pair's durability changed (TACK 'degraded' or not) */
  degraded(degraded: boolean): void;
  /** acknowledged writes wait for changes that did not come: resume */
  stalled(): void;
  /**
   * Runs the step that settles a write's promise: the client's next-tick queue, so a write
   * resolves after the updates queued before it (at once when absent).
   */
  later?(step: () => void): void;
}

export class Writes extends AckedQueue {
  /** acknowledged writes waiting for the replica to apply their sequence (read-your-writes) */
  private readonly applying = new AppliedWaiters<Queued>();
  private degradedNow = false;

  constructor(private readonly host: WritesHost) {
    super(host, WRITE_BATCH);
  }

  get degraded(): boolean {
    return this.degradedNow;
  }

  /**
   * A write of `body` (empty: a delete) to `key`; never throws, rejects with a typed error.
   * `nativeOnly` (a condition, a lease): a plain CHP server rejects it with 'plain-chp'.
   */
  write(key: string, body: Buffer, properties: string, nativeOnly = false): Promise<number> {
    const host = this.host;
    try {
      checkKey(key, host.limits);
    } catch (error) {
      return rejectWith(error);
    }
    if (host.closed()) return Promise.reject(new ClosedError());
    if (this.unsettled >= host.maxPendingWrites)
      return Promise.reject(new QueueFullError(host.maxPendingWrites));
    const uuid = newUuid();
    if (nativeOnly && host.mode() === 'chp') return Promise.reject(plainChp());
    if (host.mode() === 'chp') {
      // Model Six: publish to every server's collector; the passive keeps it on its pending list.
      const unsent = this.publishChp(encodeKvMsg({ key, sequence: 0, uuid, properties, body }));
      return unsent ? Promise.reject(unsent) : Promise.resolve(0);
    }
    return new Promise<number>((resolve, reject) => {
      const deadline = host.now() + host.writeTimeoutMs;
      this.enqueue(queued(key, uuid, properties, body, deadline, nativeOnly, resolve, reject));
    });
  }

  /**
   * Model Six: a plain CHP write goes to every server's collector (the passive keeps it on its
   * pending list). An error if a collector's socket could not be opened (EMFILE): the write may
   * have reached the others, and a retry may apply it twice, as any unacknowledged CHP write.
   */
  private publishChp(frames: Buffer[]): ClientSocketError | undefined {
    const links = this.host.links;
    let sent = 0;
    for (const link of links) if (link.publish(frames)) sent++;
    if (sent === links.length) return undefined;
    return new ClientSocketError(
      `a plain CHP write reached ${sent} of ${links.length} servers' collectors: a socket could not be opened (see the warning)`,
    );
  }

  /** Sends queued writes to the active in batches. */
  flush(): void {
    const link = this.host.target();
    const mode = this.host.mode();
    if (link === undefined || mode === 'auto') return; // nothing native before a server advertised it
    if (mode === 'chp') {
      for (const w of this.queue.splice(0)) {
        if (w.nativeOnly) {
          this.fail(w, plainChp());
          continue;
        }
        const { key, uuid, properties, body } = w;
        const unsent = this.publishChp(encodeKvMsg({ key, sequence: 0, uuid, properties, body }));
        if (unsent) this.fail(w, unsent);
        else this.settle(w, 0);
      }
      return;
    }
    this.sendBatches(link, (reqId, writes) => encodeRequest({ command: 'TSET', reqId, writes }));
  }

  /**
   * A TACK (decoded). One whose sequences do not match the writes throws (ReplyError) and settles
   * nothing: the batch stays in flight.
   */
  onAck(reqId: number, sequences: readonly number[], durability: Durability): void {
    const batch = this.inflight.get(reqId);
    if (!batch) return; // already answered, or re-sent after a timeout: the later answer settles it
    const seqs = checkAckSequences(sequences, batch.items.length);
    this.inflight.delete(reqId);
    batch.items.forEach((w, i) => this.settleWhenApplied(w, seqs[i]!));
    this.noteDurability(durability);
  }

  /** A TACK's durability (a write's or a published event's): a change of `degraded` is told. */
  noteDurability(durability: Durability): void {
    const degraded = durability === 'degraded';
    if (degraded !== this.degradedNow) {
      this.degradedNow = degraded;
      this.host.degraded(degraded);
    }
  }

  /** A TERROR (decoded): true if it answered a write batch. */
  override onError(error: ErrorReply): boolean {
    // A TSET is all or nothing: refused conditions and leases fail those writes, the others go again.
    return super.onError(error, (reason) =>
      reason === 'conflict' || reason === 'lease-not-found'
        ? (w, i) => refusal(reason, w, error.message, error.current?.[i])
        : undefined,
    );
  }

  /**
   * Read-your-writes: an acknowledged write to a key of the subtree resolves once the replica has
   * applied its sequence, at once when it has (the usual case), else when the update or a resync
   * brings it there, on this server or after a failover. Its deadline still bounds the wait.
   */
  private settleWhenApplied(w: Queued, sequence: number): void {
    if (!w.key.startsWith(this.host.subtree) || sequence <= this.host.applied()) this.settle(w, sequence);
    else this.applying.add(sequence, w.deadline, w, this.host.now());
  }

  /** The replica has moved: the writes it now reflects resolve. */
  applied(sequence: number): void {
    if (this.applying.size === 0) return; // a watcher that writes nothing: every delivery comes here
    this.applying.release(sequence, this.host.now(), (w, seq) => this.settle(w, seq));
  }

  /** Fails writes past their deadline; asks for a resume when acknowledged changes do not come. */
  expire(now: number): void {
    // Every write waiting for its acknowledgement or its replica is unsettled: none, nothing to do.
    if (this.unsettled === 0) return;
    const ms = this.host.writeTimeoutMs;
    this.expireItems(now, `write not acknowledged within ${ms} ms`);
    this.applying.expire(now, (w, sequence) =>
      this.fail(
        w,
        new TimeoutError(
          `write acknowledged as sequence ${sequence}, but this client's replica did not reach it within ${ms} ms`,
        ),
      ),
    );
    // An acknowledged change that does not arrive (lost on the way): a resume brings the replica
    // up to the server's sequence.
    if (this.applying.stalled(now, this.host.requestTimeoutMs)) this.host.stalled();
  }

  /** Closing: every write not settled rejects with `error`. */
  override failAll(error: Error): void {
    super.failAll(error);
    this.applying.drain((w) => this.fail(w, error));
  }
}

function plainChp(): ServerRejectedError {
  return new ServerRejectedError(
    'plain-chp',
    'a plain CHP server cannot apply conditions, leases or deletes by prefix',
  );
}

/** The typed error of a write refused in a 'conflict' or 'lease-not-found' TERROR. */
function refusal(reason: string, w: Queued, message: string, current: number | undefined): Error {
  const key = JSON.stringify(w.key);
  if (reason === 'conflict')
    return new ConflictError(w.key, current ?? 0, `${message}: ${key} is at sequence ${current ?? 0}`);
  const lease = Number(/(?:^|\n)lease=(\d+)/.exec(w.properties)?.[1] ?? 0);
  return new LeaseNotFoundError(lease, `${message}: ${key}`);
}
