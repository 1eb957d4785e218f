/**
 * A real child process appends to an LmdbStorage and reports each sequence once its flush()
 * resolved; it is SIGKILLed mid-stream. After a reopen every reported sequence must be there: an
 * acknowledged write survives the process dying at any point.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { FsyncMode } from '../../../src/storage/index.js';
import { Dirs } from './helpers.js';

const APPENDER = fileURLToPath(new URL('./fixtures/appender.ts', import.meta.url));

describe('LmdbStorage after a SIGKILL', function () {
  this.timeout(60_000);
  const dirs = new Dirs();
  afterEach(() => dirs.cleanup());

  for (const mode of ['always', 'batch'] as FsyncMode[]) {
    it(`${mode}: holds every sequence whose flush() had resolved`, async () => {
      const dir = dirs.make();
      const child = spawn(process.execPath, ['--import', 'tsx', APPENDER, dir, mode], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = once(child, 'exit');
      const reported: number[] = [];
      let buffered = '';
      await new Promise<void>((resolve, reject) => {
        child.on('exit', () => reject(new Error('the appender exited before it was killed')));
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          buffered += chunk;
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const line of lines) reported.push(Number(line));
          if (reported.length >= 300) {
            child.kill('SIGKILL'); // mid-stream: it is appending and flushing all the time
            resolve();
          }
        });
      });
      const [code, signal] = await exited;
      expect(signal, `exit code ${String(code)}`).to.equal('SIGKILL');
      const storage = dirs.storage({ dir, pairId: 'crash-test' });
      const { sequence, entries } = storage.load();
      const held = new Map(entries.map((e) => [e.key, e.sequence]));
      const last = reported[reported.length - 1]!;
      expect(sequence).to.be.at.least(last);
      const missing = [];
      for (let s = 1; s <= last; s++) if (held.get(`/k${s}`) !== s) missing.push(s);
      expect(missing, 'every change up to the last reported sequence').to.deep.equal([]);
      expect(held.size, 'nothing beyond the stored sequence').to.equal(sequence);
    });
  }
});
