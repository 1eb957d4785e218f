/**
 * Leases as a state machine of the sequencer (issue 17), in the manner of etcd's: a lease has a
 * TTL; keys written with `lease=<id>` go with it; when it expires or is revoked, its keys are
 * deleted by sequenced deletes and then the lease itself. A lease is an entry of the reserved
 * namespace (`\0l/<id>`: its TTL and deadline), so it is replicated, stored and resynced with the
 * map; a keep-alive rewrites that entry, which no client sees (no watch event).
 *
 * Deadlines belong to the active (like TTL): only the active asks `due`. A node that has just
 * become active gives every lease its whole TTL again from then (`grace`), as etcd does at a
 * leader change, so that a holder that fails over with its client keeps its lease.
 */
import { isDeletePrefix, type Entry } from '../kv/index.js';
import { isReserved } from '../events/index.js';
import type { DueChange, StateMachine } from './state-machine.js';

export const LEASE_PREFIX = '\u0000l/';
const EMPTY = Buffer.alloc(0);

export interface LeaseRecord {
  readonly ttlMs: number;
  /** absolute deadline on the active's clock (ms) */
  readonly expiresAt: number;
}

interface Lease {
  ttlMs: number;
  expiresAt: number;
  readonly keys: Set<string>;
}

export function leaseKey(id: number): string {
  return `${LEASE_PREFIX}${id}`;
}

/** The lease a key's properties attach it to (`lease=<id>`), if any. */
export function leaseOf(properties: string): number | undefined {
  const at = properties.indexOf('lease=');
  if (at < 0 || (at > 0 && properties[at - 1] !== '\n')) return undefined;
  const end = properties.indexOf('\n', at);
  const id = Number(properties.slice(at + 6, end < 0 ? undefined : end));
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

export class LeaseMachine implements StateMachine {
  private readonly leases = new Map<number, Lease>();
  private readonly keyLease = new Map<string, number>();
  private graceFrom = 0;

  get size(): number {
    return this.leases.size;
  }

  has(id: number): boolean {
    return this.leases.has(id);
  }

  /** A lease's TTL, deadline and key count, for TLEASE replies and `lease ls`. */
  info(id: number, now: number): { ttlMs: number; remainingMs: number; keys: number } | undefined {
    const lease = this.leases.get(id);
    if (lease === undefined) return undefined;
    return {
      ttlMs: lease.ttlMs,
      remainingMs: Math.max(0, this.deadline(lease) - now),
      keys: lease.keys.size,
    };
  }

  ids(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  /** This node became active at `now`: every lease gets its whole TTL from then at least. */
  grace(now: number): void {
    this.graceFrom = now;
  }

  apply(entry: Entry): void {
    if (entry.key.startsWith(LEASE_PREFIX)) return this.applyLease(entry);
    if (isReserved(entry.key)) return;
    if (isDeletePrefix(entry)) {
      for (const key of [...this.keyLease.keys()]) if (key.startsWith(entry.key)) this.detach(key);
      return;
    }
    const id = entry.body.length > 0 ? leaseOf(entry.properties) : undefined;
    const before = this.keyLease.get(entry.key);
    if (before !== undefined && before !== id) this.detach(entry.key);
    // A key names a lease that exists (the server checks it); a plain CHP write with a `lease=`
    // property of its own attaches to nothing.
    if (id !== undefined && this.leases.has(id)) {
      this.lease(id).keys.add(entry.key);
      this.keyLease.set(entry.key, id);
    }
  }

  private applyLease(entry: Entry): void {
    const id = Number(entry.key.slice(LEASE_PREFIX.length));
    if (entry.body.length === 0) {
      const lease = this.leases.get(id);
      for (const key of lease?.keys ?? []) this.keyLease.delete(key);
      this.leases.delete(id);
      return;
    }
    const record = JSON.parse(entry.body.toString()) as LeaseRecord;
    const lease = this.lease(id);
    lease.ttlMs = record.ttlMs;
    lease.expiresAt = record.expiresAt;
  }

  /** The lease with this id, made empty if a key named it before its record was restored. */
  private lease(id: number): Lease {
    let lease = this.leases.get(id);
    if (lease === undefined) {
      lease = { ttlMs: 0, expiresAt: 0, keys: new Set() };
      this.leases.set(id, lease);
    }
    return lease;
  }

  private detach(key: string): void {
    const id = this.keyLease.get(key);
    if (id === undefined) return;
    this.keyLease.delete(key);
    this.leases.get(id)?.keys.delete(key);
  }

  private deadline(lease: Lease): number {
    return Math.max(lease.expiresAt, this.graceFrom + lease.ttlMs);
  }

  snapshot(): Promise<Entry[]> {
    return Promise.resolve([]); // the entries live in the key-value map
  }

  empty(): LeaseMachine {
    return new LeaseMachine();
  }

  /** Snapshot entries in any order: a key may name its lease before the lease's record comes. */
  restore(entries: Iterable<Entry>): void {
    for (const entry of entries) {
      if (entry.body.length === 0) continue;
      const id = entry.key.startsWith(LEASE_PREFIX) ? undefined : leaseOf(entry.properties);
      if (id !== undefined && !isReserved(entry.key)) {
        this.lease(id).keys.add(entry.key);
        this.keyLease.set(entry.key, id);
      } else this.apply(entry);
    }
  }

  /** Active only: the change that grants or keeps alive lease `id` at `now`. */
  keepChange(id: number, ttlMs: number, now: number): DueChange {
    const record: LeaseRecord = { ttlMs, expiresAt: now + ttlMs };
    return { key: leaseKey(id), properties: '', body: Buffer.from(JSON.stringify(record)), expiresAt: 0 };
  }

  /** Active only: deletes of the lease's keys, then of the lease (a revoke, or an expiry). */
  revokeChanges(id: number): DueChange[] {
    const lease = this.leases.get(id);
    if (lease === undefined) return [];
    const del = (key: string): DueChange => ({ key, properties: '', body: EMPTY, expiresAt: 0 });
    return [...[...lease.keys].map(del), del(leaseKey(id))];
  }

  due(now: number, max: number): DueChange[] {
    const out: DueChange[] = [];
    for (const [id, lease] of this.leases) {
      if (out.length >= max) break;
      // ttlMs 0: keys restored naming a lease whose record never came; they are left alone
      if (lease.ttlMs <= 0 || this.deadline(lease) > now) continue;
      // One by one: a lease may hold a million keys, and so many arguments overflow V8's stack.
      for (const change of this.revokeChanges(id)) out.push(change);
    }
    return out;
  }
}
