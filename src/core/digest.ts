/**
 * A fingerprint of a whole map: two nodes with the same digest hold the same state (keys, values,
 * sequences, uuids, deadlines). It is order-independent (the XOR of one SHA-256 per entry), so it
 * needs no sort, and it is computed over a point-in-time array a chunk per event-loop turn: an
 * operator's (or anyone's) `/digest` must never freeze the reactor long enough for a failover.
 */
import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Entry } from '../kv/index.js';

export interface Digest {
  sequence: number;
  keys: number;
  digest: string;
}

/** Entries hashed per event-loop turn (about a millisecond of work each). */
const CHUNK = 1000;

export function entryHash(e: Entry): Buffer {
  const hash = createHash('sha256');
  hash.update(e.key).update('\0').update(String(e.sequence)).update('\0').update(e.uuid, 'latin1');
  return hash.update('\0').update(String(e.expiresAt)).update('\0').update(e.body).digest();
}

export async function digestOf(entries: readonly Entry[], sequence: number): Promise<Digest> {
  const acc = Buffer.alloc(32);
  for (let i = 0; i < entries.length; i++) {
    const h = entryHash(entries[i]!);
    for (let b = 0; b < 32; b++) acc[b]! ^= h[b]!;
    if ((i + 1) % CHUNK === 0) await yieldToLoop();
  }
  return { sequence, keys: entries.length, digest: acc.toString('hex') };
}
