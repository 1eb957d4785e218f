/**
 * The Model Six pending list. CHP clients publish each KVSET to both servers' collectors; the
 * passive holds its copy here until the same update (matched by uuid) arrives from the active. If
 * the active dies first, the passive applies what is left at promotion with fresh sequence
 * numbers, so a fire-and-forget update survives the failover.
 *
 * It never grows without bound: at most `max` items (oldest dropped first), none older than
 * `maxAgeMs` (the active evidently never got it), and none whose TTL has already run out.
 */
import { Fifo, type KvMsg } from '../clone/index.js';

export interface PendingItem {
  readonly msg: KvMsg;
  readonly receivedAt: number;
}

export class PendingList {
  private readonly items = new Map<string, PendingItem>();
  /** arrival order; a Fifo, so dropping the oldest is O(1) however large `max` is */
  private anonymous = new Fifo<PendingItem>();
  dropped = 0;

  constructor(
    private readonly max: number,
    private readonly maxAgeMs: number,
  ) {}

  get size(): number {
    return this.items.size + this.anonymous.length;
  }

  /** Hold an update; `alreadyApplied` says the active's copy already arrived (matched early). */
  add(msg: KvMsg, receivedAt: number, alreadyApplied: boolean): void {
    if (alreadyApplied) return;
    if (msg.uuid.length === 16) {
      this.items.delete(msg.uuid); // a re-sent update moves to the back: Map order is arrival order
      this.items.set(msg.uuid, { msg, receivedAt });
    } else this.anonymous.push({ msg, receivedAt }); // a foreign client without a usable uuid
    while (this.size > this.max) this.dropOldest();
  }

  /** The active's copy of an update arrived: forget ours. */
  match(uuid: string): void {
    this.items.delete(uuid);
  }

  /** Drop items the active has had ample time to replicate. */
  expire(now: number): void {
    for (const [uuid, item] of this.items) {
      if (now - item.receivedAt <= this.maxAgeMs) break; // insertion order is arrival order
      this.items.delete(uuid);
      this.dropped++;
    }
    // Arrival order is age order: the expired ones are at the front.
    for (let oldest = this.anonymous.peek(); oldest !== undefined; oldest = this.anonymous.peek()) {
      if (now - oldest.receivedAt <= this.maxAgeMs) break;
      this.anonymous.shift();
      this.dropped++;
    }
  }

  /** Everything left, in arrival order, emptying the list (at promotion). */
  drain(): PendingItem[] {
    const all = [...this.items.values(), ...this.anonymous.takeAll()].sort(
      (a, b) => a.receivedAt - b.receivedAt,
    );
    this.items.clear();
    return all;
  }

  clear(): void {
    this.items.clear();
    this.anonymous.takeAll();
  }

  private dropOldest(): void {
    const first = this.items.entries().next();
    const oldestAnon = this.anonymous.peek();
    if (!first.done && (oldestAnon === undefined || first.value[1].receivedAt <= oldestAnon.receivedAt)) {
      this.items.delete(first.value[0]);
    } else {
      this.anonymous.shift();
    }
    this.dropped++;
  }
}
