/** Shared pieces of the LmdbStorage tests: real data directories under the OS temp dir. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../../src/kv/kvmap.js';
import { LmdbStorage, type LmdbStorageOptions } from '../../../src/storage/index.js';

export const BASE = { replayLogSize: 100, dedupeSize: 1_000, dedupeMs: 60_000 };

export function uuid(n: number): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0xfeed0000, 0);
  b.writeUInt32BE(n, 12);
  return b.toString('latin1');
}

export function entry(sequence: number, key = `/k${sequence}`, body = `v${sequence}`): Entry {
  return { key, sequence, uuid: uuid(sequence), properties: '', body: Buffer.from(body), expiresAt: 0 };
}

/** Temporary data directories and the storages opened on them, all closed and removed by `cleanup`. */
export class Dirs {
  private readonly dirs: string[] = [];
  private readonly open: LmdbStorage[] = [];

  make(): string {
    const dir = mkdtempSync(join(tmpdir(), 'twinstar-lmdb-'));
    this.dirs.push(dir);
    return dir;
  }

  storage(options: Partial<LmdbStorageOptions> & { dir: string }): LmdbStorage {
    const storage = LmdbStorage.open({ ...BASE, fsync: 'off', ...options });
    this.open.push(storage);
    return storage;
  }

  async cleanup(): Promise<void> {
    for (const s of this.open.splice(0)) await s.close();
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** Commit ids lmdb reports (its `aftercommit` event), ignoring the 0 it reports for open. */
export function commits(storage: LmdbStorage): number[] {
  const ids: number[] = [];
  const env = (storage as unknown as { env: { on(e: string, f: (x: { txnId: number }) => void): void } }).env;
  env.on('aftercommit', (e) => {
    if (e.txnId > 0) ids.push(e.txnId);
  });
  return ids;
}
