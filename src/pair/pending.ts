/**
 * The Model Six pending list. CHP clients publish each KVSET to both servers' collectors; the
 * passive holds its copy here until the same update (matched by uuid) arrives from the active. If
 * the active dies first, the passive applies what is left at promotion with fresh sequence
 * numbers, so a fire-and-forget update survives the failover.
 *
 * It never grows without bound: at most `max` items and `maxBytes` bytes (`footprint`; oldest
 * dropped first), none older than `maxAgeMs` (the active evidently never got it), and none whose
 * TTL has already run out. Every drop is counted by reason (the node exports the counts).
 */
import { Fifo } from '../zmq/index.js';
import { footprint, type KvMsg } from '../wire/index.js';

export interface PendingItem {
  readonly msg: KvMsg;
  readonly receivedAt: number;
}

/** Why an update left the pending list without being matched or applied. */
export type PendingDropReason = 'count' | 'bytes' | 'age';

export class PendingList {
  private readonly items = new Map<string, PendingItem>();
  /** arrival order; a Fifo, so dropping the oldest is O(1) however large `max` is */
  private anonymous = new Fifo<PendingItem>();
  private held = 0;
  /** updates dropped so far, by reason */
  readonly droppedBy: Record<PendingDropReason, number> = { count: 0, bytes: 0, age: 0 };

  constructor(
    private readonly max: number,
    private readonly maxAgeMs: number,
    private readonly maxBytes = Infinity,
  ) {}

  get size(): number {
    return this.items.size + this.anonymous.length;
  }

  /** bytes held, as `footprint` counts them */
  get bytes(): number {
    return this.held;
  }

  /** updates dropped so far, for every reason */
  get dropped(): number {
    return this.droppedBy.count + this.droppedBy.bytes + this.droppedBy.age;
  }

  /** Hold an update; `alreadyApplied` says the active's copy already arrived (matched early). */
  add(msg: KvMsg, receivedAt: number, alreadyApplied: boolean): void {
    if (alreadyApplied) return;
    if (msg.uuid.length === 16) {
      this.match(msg.uuid); // a re-sent update moves to the back: Map order is arrival order
      this.items.set(msg.uuid, { msg, receivedAt });
    } else this.anonymous.push({ msg, receivedAt }); // a foreign client without a usable uuid
    this.held += footprint(msg);
    while (this.size > this.max) this.dropOldest('count');
    // The newest update always stays: it is no bigger than one message the limits allow.
    while (this.held > this.maxBytes && this.size > 1) this.dropOldest('bytes');
  }

  /** The active's copy of an update arrived: forget ours. */
  match(uuid: string): void {
    const item = this.items.get(uuid);
    if (item === undefined) return;
    this.items.delete(uuid);
    this.held -= footprint(item.msg);
  }

  /** Drop items the active has had ample time to replicate. */
  expire(now: number): void {
    for (const [uuid, item] of this.items) {
      if (now - item.receivedAt <= this.maxAgeMs) break; // insertion order is arrival order
      this.match(uuid);
      this.droppedBy.age++;
    }
    // Arrival order is age order: the expired ones are at the front.
    for (let oldest = this.anonymous.peek(); oldest !== undefined; oldest = this.anonymous.peek()) {
      if (now - oldest.receivedAt <= this.maxAgeMs) break;
      this.anonymous.shift();
      this.held -= footprint(oldest.msg);
      this.droppedBy.age++;
    }
  }

  /** Everything left, in arrival order, emptying the list (at promotion). */
  drain(): PendingItem[] {
    const all = [...this.items.values(), ...this.anonymous.takeAll()].sort(
      (a, b) => a.receivedAt - b.receivedAt,
    );
    this.clear();
    return all;
  }

  clear(): void {
    this.items.clear();
    this.anonymous.takeAll();
    this.held = 0;
  }

  private dropOldest(reason: PendingDropReason): void {
    const first = this.items.entries().next();
    const oldestAnon = this.anonymous.peek();
    if (!first.done && (oldestAnon === undefined || first.value[1].receivedAt <= oldestAnon.receivedAt)) {
      this.match(first.value[0]);
    } else {
      this.anonymous.shift();
      if (oldestAnon) this.held -= footprint(oldestAnon.msg);
    }
    this.droppedBy[reason]++;
  }
}
