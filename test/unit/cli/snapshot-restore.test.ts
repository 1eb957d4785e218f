/**
 * `restoreInto` (src/cli/snapshot-restore.ts) on real temporary directories: what it writes is
 * what LmdbStorage loads (every field, the sequence, a new history, the de-duplication window);
 * it never writes into a directory that holds anything; and a restore that fails leaves nothing.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Snapshot } from '../../../src/cli/snapshot-file.js';
import { RestoreRefused, restoreInto } from '../../../src/cli/snapshot-restore.js';
import { StorageError } from '../../../src/errors.js';
import type { Entry } from '../../../src/kv/index.js';
import { LmdbStorage, MAX_KEY_BYTES } from '../../../src/storage/index.js';

const uuid = (n: number) => Buffer.alloc(16, n).toString('latin1');
const NOW = 1_800_000_000_000;

const ENTRIES: Entry[] = [
  { key: '/a', sequence: 3, uuid: uuid(1), properties: '', body: Buffer.from('one'), expiresAt: 0 },
  {
    key: '/ttl',
    sequence: 5,
    uuid: uuid(2),
    properties: 'ttl=60\n',
    body: Buffer.from([0, 255]),
    expiresAt: NOW + 60_000,
  },
  { key: '/gone', sequence: 6, uuid: '', properties: 'ttl=1\n', body: Buffer.from('x'), expiresAt: NOW - 1 },
];
const SNAPSHOT: Snapshot = { sequence: 9, term: 'abc', savedAt: NOW - 5000, entries: ENTRIES };

const OPTIONS = { replayLogSize: 10, dedupeSize: 100, dedupeMs: 30_000, fsync: 'off' } as const;

async function refusal(run: Promise<unknown>): Promise<Error> {
  try {
    await run;
  } catch (error) {
    return error as Error;
  }
  throw new Error('the restore went through');
}

describe('snapshot restore into a data directory', () => {
  let work: string;
  beforeEach(() => (work = mkdtempSync(join(tmpdir(), 'twinstar-restore-'))));
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  it('writes what LmdbStorage loads: every entry, the sequence, no term, epoch 0, the uuids', async () => {
    const dir = join(work, 'new', 'node');
    const restored = await restoreInto(SNAPSHOT, dir, 'pair-x', NOW);
    expect(restored).to.deep.equal({ pairId: 'pair-x', expired: 1 });
    const storage = LmdbStorage.open({ ...OPTIONS, dir, pairId: 'pair-x' });
    try {
      const loaded = storage.load();
      expect(loaded.sequence).to.equal(9);
      const byKey = new Map(loaded.entries.map((e) => [e.key, e]));
      expect([...byKey.keys()].sort()).to.deep.equal(['/a', '/gone', '/ttl']);
      for (const e of ENTRIES) expect(byKey.get(e.key)).to.deep.equal(e);
      expect(storage.timeline.list()).to.deep.equal([]);
      expect(storage.timeline.epoch).to.equal(0);
      expect(storage.appliedSequence(uuid(2)), 'a retried write of a restored key applies once').to.equal(5);
    } finally {
      await storage.close();
    }
  });

  it('an empty directory is taken; without --pair-id a new pair id is written', async () => {
    const dir = join(work, 'empty');
    mkdirSync(dir);
    const { pairId } = await restoreInto(SNAPSHOT, dir, undefined, NOW);
    expect(pairId).to.match(/^[0-9a-f-]{36}$/);
    const storage = LmdbStorage.open({ ...OPTIONS, dir });
    expect(storage.pairId).to.equal(pairId);
    await storage.close();
  });

  it('refuses a directory that holds anything, and a file, writing nothing', async () => {
    const dir = join(work, 'full');
    mkdirSync(dir);
    writeFileSync(join(dir, 'data.mdb'), 'not mine to replace');
    const error = await refusal(restoreInto(SNAPSHOT, dir, undefined, NOW));
    expect(error).to.be.instanceOf(RestoreRefused);
    expect(error.message).to.equal(
      `${dir} is not empty (1 entries): restore only into an empty or new directory`,
    );
    expect(readdirSync(dir)).to.deep.equal(['data.mdb']);
    const file = join(work, 'a-file');
    writeFileSync(file, 'x');
    expect((await refusal(restoreInto(SNAPSHOT, file, undefined, NOW))).message).to.equal(
      `${file} is not a directory`,
    );
  });

  it('a restore that fails (a key lmdb cannot hold) leaves no data directory behind', async () => {
    const long: Entry = { ...ENTRIES[0]!, key: `/${'k'.repeat(MAX_KEY_BYTES)}` };
    const dir = join(work, 'failed');
    const error = await refusal(restoreInto({ ...SNAPSHOT, entries: [long] }, dir, undefined, NOW));
    expect(error).to.be.instanceOf(StorageError);
    expect(() => statSync(dir), 'the directory it created is gone').to.throw(/ENOENT/);
  });
});
