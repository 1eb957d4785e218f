/**
 * A data directory LmdbStorage must refuse at open, each with a StorageError (ERR_STORAGE) whose
 * message is one line naming the file and the problem: flipped bytes in a record, a damaged
 * header, a truncated file, another format version, another pair's directory. Never an empty
 * start, never a crash (a truncated file read through the map would be SIGBUS).
 */
import { expect } from 'chai';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { StorageError } from '../../../src/errors.js';
import { LmdbStorage } from '../../../src/storage/index.js';
import { encodeJson } from '../../../src/storage/records.js';
import { BASE, Dirs, entry } from './helpers.js';

const MARKER = 'MARKER-0123456789-MARKER';

describe('LmdbStorage refuses a bad data directory', () => {
  const dirs = new Dirs();
  afterEach(() => dirs.cleanup());

  /** A closed data directory holding `count` entries, /k1 with MARKER in its body. */
  async function filled(count = 50, pairId = 'pair-a'): Promise<{ dir: string; file: string }> {
    const dir = dirs.make();
    const storage = LmdbStorage.open({ ...BASE, dir, fsync: 'always', pairId });
    storage.append(entry(1, '/k1', MARKER), 0);
    for (let s = 2; s <= count; s++) storage.append(entry(s, `/k${s}`, 'x'.repeat(100)), 0);
    await storage.close();
    return { dir, file: join(dir, 'data.mdb') };
  }

  function refusal(dir: string, pairId = 'pair-a'): StorageError {
    try {
      const storage = LmdbStorage.open({ ...BASE, dir, pairId });
      void storage.close();
    } catch (err) {
      expect(err).to.be.instanceOf(StorageError);
      const e = err as StorageError;
      expect(e.code).to.equal('ERR_STORAGE');
      expect(e.message, 'one line').to.not.match(/\n/);
      expect(e.message, 'names the file').to.include(join(dir, 'data.mdb'));
      return e;
    }
    return expect.fail('the directory was accepted');
  }

  it('opens the same directory fine when nothing is wrong with it (the control)', async () => {
    const { dir } = await filled();
    const storage = dirs.storage({ dir, pairId: 'pair-a' });
    expect(storage.load().entries).to.have.length(50);
  });

  it('flipped bytes in a stored value: corrupt, naming the key', async () => {
    const { dir, file } = await filled();
    const bytes = readFileSync(file);
    let at = bytes.indexOf(MARKER);
    expect(at, 'the marker is in the file').to.be.greaterThan(0);
    for (; at >= 0; at = bytes.indexOf(MARKER, at + 1)) bytes[at + 8]! ^= 0x20;
    writeFileSync(file, bytes);
    const err = refusal(dir);
    expect(err.reason).to.equal('corrupt');
    expect(err.message).to.include('"/k1"').and.include('checksum');
  });

  it('a damaged LMDB header: corrupt', async () => {
    const { dir, file } = await filled();
    const bytes = readFileSync(file);
    bytes[24]! ^= 0xff; // the magic number of meta page 0
    writeFileSync(file, bytes);
    const err = refusal(dir);
    expect(err.reason).to.equal('corrupt');
    expect(err.message).to.include('meta page');
  });

  it('a truncated file: truncated (and no SIGBUS from reading past its end)', async () => {
    const { dir, file } = await filled(3_000);
    const size = statSync(file).size;
    truncateSync(file, Math.floor(size / 2));
    const err = refusal(dir);
    expect(err.reason).to.equal('truncated');
    expect(err.message).to.include(`${Math.floor(size / 2)} bytes`);
  });

  it('a file cut down to a few bytes: truncated', async () => {
    const { dir, file } = await filled();
    truncateSync(file, 100);
    expect(refusal(dir).reason).to.equal('truncated');
  });

  it('another format version: version', async () => {
    const { dir } = await filled();
    const env = open({ path: dir, maxDbs: 4 });
    const meta = env.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
    meta.putSync('format', encodeJson('format', 99));
    await env.close();
    const err = refusal(dir);
    expect(err.reason).to.equal('version');
    expect(err.message).to.include('format version 99');
  });

  it("another pair's data directory: foreign-pair", async () => {
    const { dir } = await filled(5, 'pair-a');
    const err = refusal(dir, 'pair-b');
    expect(err.reason).to.equal('foreign-pair');
    expect(err.message).to.include('pair-a').and.include('pair-b');
  });

  it('a directory that cannot be made: open, not corrupt', () => {
    const file = join(dirs.make(), 'a-file');
    writeFileSync(file, 'not a directory');
    const dir = join(file, 'data');
    expect(() => LmdbStorage.open({ ...BASE, dir }))
      .to.throw(StorageError)
      .that.includes({ reason: 'open', code: 'ERR_STORAGE' })
      .and.has.property('message')
      .that.includes(join(dir, 'data.mdb'))
      .and.not.include('\n');
  });

  it('an lmdb file that twinstar did not write: corrupt', async () => {
    const dir = dirs.make();
    const env = open({ path: dir, maxDbs: 4 });
    const meta = env.openDB<Buffer, string>({ name: 'meta', encoding: 'binary' });
    meta.putSync('something', Buffer.from('else'));
    await env.close();
    expect(refusal(dir).reason).to.equal('corrupt');
  });
});
