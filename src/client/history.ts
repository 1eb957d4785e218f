/**
 * Watch from a sequence (issue 17; docs/protocol.md, Watch from a sequence): `TWATCH` replays
 * every change under a prefix after `fromSequence` (TSYNC batches, then TSYNCEND at the server's
 * sequence S), then the watch goes on with the replica's live updates. No gap, no duplicate:
 * live updates that come while the replay runs are held, and only those above S are told after
 * it; a replay cut short by a failover, unanswered or refused 'busy' (the server's cap of
 * streams) is asked again from the last change told. The server's 'history-unavailable' ends the
 * watch with HistoryUnavailableError, any other refusal with ServerRejectedError.
 */
import { encodeRequest, type ErrorReply, type PackedBatch, type PackedEntry } from '../wire/index.js';
import { HistoryUnavailableError, ServerRejectedError } from '../errors.js';
import { isDeletePrefix } from '../kv/index.js';
import type { Update } from './events.js';
import type { Link } from './link.js';
import type { WatchStream } from './watch.js';

export interface HistoryHost {
  now(): number;
  reqId(): number;
  target(): Link | undefined;
  mode(): string;
  /** the TTL left of a replayed entry that sets a key */
  ttlRemainingMs(entry: PackedEntry): number | undefined;
}

/** One watch from a sequence: its replay, then live updates. */
export class HistoryWatch {
  /** the last sequence told (replayed, then live) */
  private told: number;
  /** the replay's request in flight (undefined: not sent, or done) */
  reqId: number | undefined;
  /** live updates held while the replay runs; undefined once live */
  private held: Update[] | undefined = [];
  private sentAt = 0;
  /** keys the replay has set and not deleted: what a replayed delete by prefix deletes */
  private readonly known = new Set<string>();

  constructor(
    readonly prefix: string,
    fromSequence: number,
    private readonly stream: WatchStream<Update>,
  ) {
    this.told = fromSequence;
  }

  get replaying(): boolean {
    return this.held !== undefined;
  }

  /** Sends (or sends again, from the last change told) the replay request. */
  send(host: HistoryHost, link: Link): void {
    this.reqId = host.reqId();
    this.sentAt = host.now();
    link.request(
      encodeRequest({ command: 'TWATCH', reqId: this.reqId, prefix: this.prefix, fromSequence: this.told }),
    );
  }

  /** A live update from the client (its replica applied it). */
  live(update: Update): void {
    if (!update.key.startsWith(this.prefix)) return;
    if (this.held !== undefined) return void this.held.push(update);
    if (update.seq > this.told) this.tell(update);
  }

  /** A TSYNC of the replay: each change above what was told, in order. */
  batch(entries: readonly PackedEntry[], host: HistoryHost): void {
    this.sentAt = host.now();
    for (const entry of entries) {
      if (entry.sequence <= this.told) continue;
      if (isDeletePrefix(entry)) this.deletePrefix(entry);
      else if (entry.key.startsWith(this.prefix)) this.replayed(entry, host);
    }
  }

  /** TSYNCEND: the replay reached `sequence`; held live updates above it follow, then live ones. */
  end(sequence: number): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.reqId = undefined;
    this.told = Math.max(this.told, sequence);
    for (const update of held) this.live(update);
  }

  /** The server refused the replay: the watch ends with a typed error. */
  refused(reply: ErrorReply): void {
    this.reqId = undefined;
    if (reply.reason === 'history-unavailable') {
      const oldest = /oldest\D*(\d+)/.exec(reply.message)?.[1];
      this.stream.fail(
        new HistoryUnavailableError(reply.message, oldest === undefined ? undefined : Number(oldest)),
      );
    } else {
      this.stream.fail(new ServerRejectedError(reply.reason, reply.message));
    }
  }

  /** The server is at its cap of streams ('busy'): asked again once `due`, as after no answer. */
  busy(now: number): void {
    this.sentAt = now;
  }

  /** No answer for `timeoutMs`: ask again. */
  due(now: number, timeoutMs: number): boolean {
    return this.reqId !== undefined && now - this.sentAt > timeoutMs;
  }

  private replayed(entry: PackedEntry, host: HistoryHost): void {
    const deleted = entry.body.length === 0;
    if (deleted) this.known.delete(entry.key);
    else this.known.add(entry.key);
    this.tell({
      key: entry.key,
      value: deleted ? undefined : entry.body,
      seq: entry.sequence,
      deleted,
      resync: false,
      ttlRemainingMs: deleted ? undefined : host.ttlRemainingMs(entry),
    });
  }

  /** A replayed delete by prefix: a delete of each key the replay knows under it, one sequence. */
  private deletePrefix(entry: PackedEntry): void {
    if (!entry.key.startsWith(this.prefix) && !this.prefix.startsWith(entry.key)) return;
    for (const key of [...this.known]) {
      if (!key.startsWith(entry.key)) continue;
      this.known.delete(key);
      this.tell({
        key,
        value: undefined,
        seq: entry.sequence,
        deleted: true,
        resync: false,
        ttlRemainingMs: undefined,
      });
    }
    this.told = Math.max(this.told, entry.sequence);
  }

  private tell(update: Update): void {
    this.told = Math.max(this.told, update.seq);
    this.stream.push(update);
  }
}

/** Every open watch from a sequence: routes the replies of their replays. */
export class Histories {
  private readonly watches = new Set<HistoryWatch>();

  constructor(private readonly host: HistoryHost) {}

  open(watch: HistoryWatch): void {
    this.watches.add(watch);
    const link = this.host.target();
    if (this.host.mode() === 'chp') {
      watch.refused({
        command: 'TERROR',
        reqId: 0,
        reason: 'plain-chp',
        message: 'a plain CHP server has no history to replay',
      });
      this.watches.delete(watch);
    } else if (link !== undefined) watch.send(this.host, link);
  }

  close(watch: HistoryWatch): void {
    this.watches.delete(watch);
  }

  /** Ready on an active: replays not sent yet, or lost with the server before, are asked of it. */
  onReady(): void {
    const link = this.host.target();
    if (link === undefined) return;
    for (const w of this.watches) if (w.replaying && w.reqId === undefined) w.send(this.host, link);
  }

  /** The server in use is lost: replays in flight will be asked again. */
  lost(): void {
    for (const w of this.watches) w.reqId = undefined;
  }

  tick(now: number, timeoutMs: number): void {
    const link = this.host.target();
    if (link === undefined) return;
    for (const w of this.watches) if (w.due(now, timeoutMs)) w.send(this.host, link);
  }

  private answering(reqId: number): HistoryWatch | undefined {
    for (const w of this.watches) if (w.reqId === reqId) return w;
    return undefined;
  }

  waiting(reqId: number): boolean {
    return this.answering(reqId) !== undefined;
  }

  /** A TSYNC or TSYNCEND: true if it answers a replay. */
  onSync(reqId: number, batch: PackedBatch | undefined, end: number | undefined): boolean {
    const w = this.answering(reqId);
    if (!w) return false;
    if (batch) w.batch(batch.entries(), this.host); // decoded only once it is known to be a replay's
    if (end !== undefined) w.end(end);
    return true;
  }

  onError(reply: ErrorReply): boolean {
    const w = this.answering(reply.reqId);
    if (!w) return false;
    if (reply.reason === 'busy') return (w.busy(this.host.now()), true); // a transient refusal
    w.refused(reply);
    this.watches.delete(w);
    return true;
  }
}
