/**
 * The Model Six pending list. CHP clients publish each KVSET to both servers' collectors; the
 * passive holds its copy here until the same update (matched by uuid) arrives from the active. If
 * the active dies first, the passive applies what is left at promotion with fresh sequence
 * numbers, so a fire-and-forget update survives the failover.
 *
 * It never grows without bound: at most `max` items (oldest dropped first), none older than
 * `maxAgeMs` (the active evidently never got it), and none whose TTL has already run out.
 */
import type { KvMsg } from '../clone/index.js';

export interface PendingItem {
  readonly msg: KvMsg;
  readonly receivedAt: number;
}

export class PendingList {
  private readonly items = new Map<string, PendingItem>();
  private anonymous: PendingItem[] = [];
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
    const before = this.anonymous.length;
    this.anonymous = this.anonymous.filter((item) => now - item.receivedAt <= this.maxAgeMs);
    this.dropped += before - this.anonymous.length;
  }

  /** Everything left, in arrival order, emptying the list (at promotion). */
  drain(): PendingItem[] {
    const all = [...this.items.values(), ...this.anonymous].sort((a, b) => a.receivedAt - b.receivedAt);
    this.items.clear();
    this.anonymous = [];
    return all;
  }

  clear(): void {
    this.items.clear();
    this.anonymous = [];
  }

  private dropOldest(): void {
    const first = this.items.entries().next();
    const oldestAnon = this.anonymous[0];
    if (!first.done && (oldestAnon === undefined || first.value[1].receivedAt <= oldestAnon.receivedAt)) {
      this.items.delete(first.value[0]);
    } else {
      this.anonymous.shift();
    }
    this.dropped++;
  }
}
