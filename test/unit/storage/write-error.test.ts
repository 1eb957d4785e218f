/**
 * A write that fails for real (the file hits a size limit, as a full disk would stop it): a child
 * process under `ulimit -f` sees flush() reject with ERR_STORAGE, stays up, closes, and exits 0
 * (nothing escaped as an uncaught error or unhandled rejection). Reopened without the limit, the
 * file holds every sequence flushed before the failure and nothing after.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FsyncMode } from '../../../src/storage/index.js';
import { Dirs } from './helpers.js';

const FILLER = fileURLToPath(new URL('./fixtures/filler.ts', import.meta.url));

describe('LmdbStorage when the disk refuses a write', function () {
  this.timeout(60_000);
  const dirs = new Dirs();
  afterEach(() => dirs.cleanup());

  for (const mode of ['always', 'batch'] as FsyncMode[]) {
    it(`${mode}: flush() rejects with ERR_STORAGE, the process lives on, the flushed data stays`, async () => {
      const dir = dirs.make();
      const script = `ulimit -f 2048; exec "${process.execPath}" --import tsx "${FILLER}" "${dir}" ${mode}`;
      const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.stderr.resume(); // lmdb logs the I/O error itself
      const [code] = (await once(child, 'exit')) as [number | null];
      const lines = out.trim().split('\n');
      const flushed = lines.filter((l) => l.startsWith('flushed ')).map((l) => Number(l.slice(8)));
      expect(flushed.length, 'it wrote before the limit').to.be.greaterThan(10);
      expect(lines.slice(flushed.length)).to.deep.equal([
        `rejected ERR_STORAGE write ${join(dir, 'data.mdb')}: write failed, nothing more is written: Commit failed (see commitError for details)`,
        'alive, next flush ERR_STORAGE',
        'closed',
      ]);
      expect(code, 'exited by itself, nothing escaped').to.equal(0);

      const storage = dirs.storage({ dir, pairId: 'filler' });
      const { sequence, entries } = storage.load();
      const last = flushed[flushed.length - 1]!;
      expect(sequence).to.equal(last);
      expect(entries.map((e) => e.sequence).sort((a, b) => a - b)).to.deep.equal(flushed);
    });
  }
});
