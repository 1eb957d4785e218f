/**
 * `twinstar snapshot restore`: a backup file written into a new data directory in LmdbStorage's
 * format, for a node started with `--data-dir` on it. The entries go in through the storage's own
 * stage and install (what a passive does with a snapshot it received), so the directory is exactly
 * what a node that synced this map would hold, and it is checked by opening it again.
 *
 * The restored directory starts a new history: it holds the map at the snapshot's sequence S and
 * no term (epoch 0), like a node that has never been active. The node that serves it opens a new
 * term with a fresh id whose first sequence is S+1; a client or a passive that followed the old
 * pair is not on that timeline, so it takes a full snapshot rather than resuming.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { schema } from '../config/index.js';
import { LmdbStorage } from '../storage/index.js';
import type { Snapshot } from './snapshot-file.js';

/** A reason not to restore (the directory), for one line and exit status 2. */
export class RestoreRefused extends Error {}

export interface Restored {
  readonly pairId: string;
  /** keys whose TTL deadline has already passed: the active deletes them once it serves */
  readonly expired: number;
}

/** The de-duplication window as the node's defaults size it (the node applies its own on open). */
const WINDOW = {
  replayLogSize: 1,
  dedupeSize: schema.dedupeSize.default,
  dedupeMs: schema.dedupeMs.default,
};

/** Only an empty or new directory: a restore never mixes with, or replaces, a data directory. */
function prepare(dir: string): { created: boolean } {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(dir, { recursive: true });
    return { created: true };
  }
  if (!isDir) throw new RestoreRefused(`${dir} is not a directory`);
  const inside = readdirSync(dir);
  if (inside.length > 0)
    throw new RestoreRefused(
      `${dir} is not empty (${inside.length} entries): restore only into an empty or new directory`,
    );
  return { created: false };
}

/** Writes `snapshot` into `dir` (which must be empty or absent); removes what it wrote on failure. */
export async function restoreInto(
  snapshot: Snapshot,
  dir: string,
  pairId: string | undefined,
  now = Date.now(),
): Promise<Restored> {
  const { created } = prepare(dir);
  let storage: LmdbStorage | undefined;
  try {
    storage = LmdbStorage.open({ ...WINDOW, dir, fsync: 'always', ...(pairId ? { pairId } : {}) });
    const stage = storage.stage();
    for (const entry of snapshot.entries) stage.add(entry, now);
    storage.install(stage, snapshot.sequence);
    await storage.flush();
    const written = storage.pairId;
    await storage.close();
    storage = undefined;
    await check(snapshot, dir, written);
    const expired = snapshot.entries.filter((e) => e.expiresAt > 0 && e.expiresAt <= now).length;
    return { pairId: written, expired };
  } catch (error) {
    // A failed storage is left to the process's exit by LmdbStorage (its close would wait forever).
    if (storage && !storage.failed) await storage.close().catch(() => undefined);
    for (const name of ['data.mdb', 'lock.mdb']) rmSync(join(dir, name), { force: true });
    if (created) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Opens the written directory as a node will and compares what it loads with the snapshot. */
async function check(snapshot: Snapshot, dir: string, pairId: string): Promise<void> {
  const reopened = LmdbStorage.open({ ...WINDOW, dir, fsync: 'off', pairId });
  try {
    const loaded = reopened.load();
    if (loaded.sequence !== snapshot.sequence || loaded.entries.length !== snapshot.entries.length)
      throw new Error(
        `the restored directory holds ${loaded.entries.length} keys at sequence ${loaded.sequence}, ` +
          `not ${snapshot.entries.length} at ${snapshot.sequence}`,
      );
  } finally {
    await reopened.close();
  }
}
