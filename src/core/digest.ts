/**
 * A fingerprint of a whole map: two nodes with the same digest hold the same state (keys, values,
 * sequences, uuids, deadlines). It is order-independent (the XOR of one SHA-256 per entry), so it
 * needs no sort, and it is computed over a point-in-time array a chunk per event-loop turn: an
 * operator's (or anyone's) `/digest` must never freeze the reactor long enough for a failover.
 */
import { createHash } from 'node:crypto';
import { eachRun, type Entry, type KvView } from '../kv/index.js';

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

/** The digest of a view (read a run per turn, then closed) taken at `sequence`. */
export async function digestOf(view: KvView, sequence: number): Promise<Digest> {
  const acc = Buffer.alloc(32);
  let keys = 0;
  await eachRun(view, CHUNK, (run) => {
    for (const entry of run) {
      const h = entryHash(entry);
      for (let b = 0; b < 32; b++) acc[b]! ^= h[b]!;
    }
    keys += run.length;
  });
  return { sequence, keys, digest: acc.toString('hex') };
}
