/**
 * `twinstar snapshot save|status|restore` with real processes and real files (issue 15: "snapshot
 * save, wipe, restore: digests equal"). A live node's map is saved through the CLI, the file is
 * checked by `status`, restored into a fresh data directory, and that directory, opened with
 * LmdbStorage as a node opens it, has the digest the live node's /digest reports (the same
 * digestOf). A damaged file and a non-empty directory are refused in one line with exit status 2.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../src/index.js';
import { digestOf } from '../../src/core/index.js';
import { ArrayView } from '../../src/kv/index.js';
import { decodeSnapshot } from '../../src/cli/snapshot-file.js';
import { LmdbStorage } from '../../src/storage/index.js';
import { BIN, digest, freePorts, startSingle, waitFor, type ServerProcess } from '../helpers/index.js';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (SIGKILL after `ms`). */
async function runCli(args: string[], ms = 30_000): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const show = (r: CliResult) => `exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${r.stderr}`;

/** A refusal: exit 2 and exactly one line, on stderr, that names `name` and matches `problem`. */
function expectRefusal(r: CliResult, name: string, problem: RegExp): void {
  expect(r.code, show(r)).to.equal(2);
  expect(r.stdout, show(r)).to.equal('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, show(r)).to.have.length(1);
  expect(lines[0]).to.contain(name).and.to.match(problem);
}

const KEYS = 300;

describe('twinstar snapshot (real processes, real files)', function () {
  this.timeout(120_000);

  let server: ServerProcess;
  let work: string;
  let file: string;
  let live: { sequence: number; keys: number; digest: string };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'twinstar-snapcli-'));
    file = join(work, 'backup.snap');
    const port = await freePorts(5);
    server = startSingle(port, port + 4);
    await server.ready('ACTIVE');
    // A map with history in it: overwritten and deleted keys (the sequence runs past the key
    // count), TTL deadlines, binary values, a key outside ASCII.
    const client = await connect({ servers: [server.endpoint], subtree: '/snap/' });
    try {
      const writes: Promise<number>[] = [];
      for (let i = 0; i < KEYS; i++) writes.push(client.set(`/snap/k${i}`, `value ${i}`));
      await Promise.all(writes);
      for (let i = 0; i < 20; i++) await client.set(`/snap/k${i}`, Buffer.from([0, 255, i, 10]));
      for (let i = 0; i < 10; i++) await client.set(`/snap/ttl${i}`, `t${i}`, { ttl: 3600 });
      for (let i = 20; i < 30; i++) await client.delete(`/snap/k${i}`);
      await client.set('/snap/ключ', 'значение');
    } finally {
      await client.close();
    }
    live = await digest(server.http);
    expect(live.keys).to.equal(KEYS - 10 + 10 + 1);
  });

  after(async () => {
    if (server && !server.exited) expect(await server.stop()).to.equal(0);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('save, status, wipe, restore: the restored data directory has the live node’s digest', async () => {
    const saved = await runCli(['snapshot', 'save', file, '--servers', server.endpoint]);
    expect(saved.code, show(saved)).to.equal(0);
    const bytes = statSync(file).size;
    expect(saved.stdout).to.match(
      new RegExp(
        `^Snapshot saved at .*backup\\.snap: ${live.keys} keys at sequence ${live.sequence} \\(term [0-9a-f]+\\), ${bytes} bytes\\n$`,
      ),
    );
    expect(readdirSync(work), 'no FILE.tmp left behind').to.deep.equal(['backup.snap']);

    const status = await runCli(['snapshot', 'status', file]);
    expect(status.code, show(status)).to.equal(0);
    expect(status.stdout)
      .to.contain(`${live.keys} keys at sequence ${live.sequence}`)
      .and.to.contain(`${bytes} bytes`);
    const json = await runCli(['snapshot', 'status', file, '--json']);
    expect(json.code, show(json)).to.equal(0);
    expect(JSON.parse(json.stdout)).to.deep.include({
      keys: live.keys,
      sequence: live.sequence,
      bytes,
      version: 1,
    });

    // wipe: the restore goes into a directory that has never held anything
    const dir = join(work, 'restored', 'node-a');
    const restored = await runCli(['snapshot', 'restore', file, '--data-dir', dir, '--pair-id', 'pair-snap']);
    expect(restored.code, show(restored)).to.equal(0);
    expect(restored.stdout).to.match(
      new RegExp(
        `^Restored ${live.keys} keys at sequence ${live.sequence} into .*node-a \\(pair pair-snap; a new history`,
      ),
    );

    const storage = LmdbStorage.open({
      dir,
      pairId: 'pair-snap',
      replayLogSize: 10,
      dedupeSize: 1000,
      dedupeMs: 30_000,
    });
    try {
      const loaded = storage.load();
      expect(storage.timeline.list(), 'a new history: no term').to.deep.equal([]);
      expect(storage.timeline.epoch).to.equal(0);
      expect(await digestOf(new ArrayView(loaded.entries), loaded.sequence)).to.deep.equal(live);
      expect(loaded.entries.filter((e) => e.expiresAt > Date.now())).to.have.length(10);
    } finally {
      await storage.close();
    }
  });

  it('a damaged, cut or foreign file: one line naming it and the problem, exit 2, for status and restore', async () => {
    const good = readFileSync(file);
    const flipped = Buffer.from(good);
    flipped[Math.floor(good.length / 2)]! ^= 0x01;
    const damaged = join(work, 'flipped.snap');
    writeFileSync(damaged, flipped);
    expectRefusal(await runCli(['snapshot', 'status', damaged]), damaged, /checksum mismatch/);

    const cut = join(work, 'cut.snap');
    writeFileSync(cut, good.subarray(0, good.length - 100));
    expectRefusal(await runCli(['snapshot', 'status', cut]), cut, /cut short/);

    const foreign = join(work, 'foreign.snap');
    writeFileSync(foreign, '{"not": "a snapshot"}\n');
    expectRefusal(await runCli(['snapshot', 'status', foreign]), foreign, /not a twinstar snapshot/);

    const dir = join(work, 'from-damaged');
    expectRefusal(
      await runCli(['snapshot', 'restore', damaged, '--data-dir', dir]),
      damaged,
      /checksum mismatch/,
    );
    expect(() => statSync(dir), 'nothing written for a damaged file').to.throw(/ENOENT/);
  });

  it('restore into a non-empty directory: one line naming it, exit 2, the directory untouched', async () => {
    const dir = join(work, 'occupied');
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep.txt'), 'mine');
    const r = await runCli(['snapshot', 'restore', file, '--data-dir', dir]);
    expectRefusal(r, dir, /not empty/);
    expect(readdirSync(dir)).to.deep.equal(['keep.txt']);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).to.equal('mine');
  });

  it('save while a writer keeps writing: the file is the map at exactly its sequence, no write torn or skipped', async () => {
    const target = join(work, 'busy.snap');
    const writer = await connect({ servers: [server.endpoint], subtree: '/busy/' });
    const acked = new Map<number, number>(); // write i -> its sequence
    let stop = false;
    const writing = (async () => {
      // Until the save is done, however fast the writer is (a bounded loop could end before it).
      for (let i = 0; !stop; i++) acked.set(i, await writer.set(`/busy/${i}`, String(i)));
    })();
    try {
      await waitFor(() => acked.size >= 50, 30_000, 'the writer to be under way');
      const saved = await runCli(['snapshot', 'save', target, '--servers', server.endpoint]);
      expect(saved.code, show(saved)).to.equal(0);
    } finally {
      stop = true;
      await writing;
      await writer.close();
    }
    const snapshot = decodeSnapshot(readFileSync(target));
    const busy = new Map(
      snapshot.entries.filter((e) => e.key.startsWith('/busy/')).map((e) => [Number(e.key.slice(6)), e]),
    );
    // Every write acknowledged at or below the snapshot's sequence is in it, with its own sequence
    // and value; none after it is.
    const expected = [...acked].filter(([, seq]) => seq <= snapshot.sequence).map(([i]) => i);
    expect([...busy.keys()].sort((a, b) => a - b)).to.deep.equal(expected);
    for (const i of expected) {
      expect(busy.get(i)!.sequence).to.equal(acked.get(i));
      expect(busy.get(i)!.body.toString()).to.equal(String(i));
    }
    expect(expected.length, 'writes made before the save are in it').to.be.at.least(50);
    const after = [...acked.values()].filter((seq) => seq > snapshot.sequence).length;
    expect(after, 'writes acknowledged after the snapshot point (the writer was busy)').to.be.above(0);
  });

  it('save with no server answering: exit 2 (as the client commands), no file written', async () => {
    const target = join(work, 'none.snap');
    const port = await freePorts(1);
    const r = await runCli([
      'snapshot',
      'save',
      target,
      '--servers',
      `tcp://127.0.0.1:${port}`,
      '--timeout',
      '500',
    ]);
    expect(r.code, show(r)).to.equal(2);
    expect(r.stderr).to.match(/^twinstar snapshot save: no active server/);
    expect(() => statSync(target)).to.throw(/ENOENT/);
  });
});
