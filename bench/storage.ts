/**
 * What LmdbStorage (src/storage/lmdb.ts) costs beside MemoryStorage: time and RSS to append N
 * entries (100-byte values, a write uuid each) in turns of 1,000 with a flush() per turn, the time
 * to reopen and load() them, and one awaiting writer's flushed writes/s in each fsync mode. Each
 * case runs in its own process so its RSS is its own.
 *   node --import tsx bench/storage.ts             (all cases: 100k and 1M entries)
 *   node --import tsx bench/storage.ts 100000      (one size)
 * Data goes to a temporary directory that is removed afterwards.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryStorage, type Storage } from '../src/core/index.js';
import type { Entry } from '../src/kv/kvmap.js';
import { LmdbStorage, type FsyncMode } from '../src/storage/index.js';

const OPTIONS = { replayLogSize: 100_000, dedupeSize: 3_000_000, dedupeMs: 30_000 };
const BODY = Buffer.alloc(100, 120);
const TURN = 1_000;
const MB = 1024 * 1024;

function entry(sequence: number): Entry {
  const uuid = Buffer.alloc(16);
  uuid.writeUInt32BE(0xbe0c0000, 0);
  uuid.writeUInt32BE(sequence, 12);
  return {
    key: `/bench/key/${sequence}`,
    sequence,
    uuid: uuid.toString('latin1'),
    properties: '',
    body: BODY,
    expiresAt: 0,
  };
}

const rss = (): number => process.memoryUsage().rss / MB;

/** RSS split into anonymous memory (heap, native) and mapped file pages (lmdb's map), in MB. */
function rssParts(): { anon: number; file: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { anon: Math.round(kb('RssAnon') / 1024), file: Math.round(kb('RssFile') / 1024) };
}

/** One case, in this process: prints one JSON line. */
async function runCase(kind: 'memory' | FsyncMode, count: number, dir: string): Promise<void> {
  const open = (): Storage & { close?: () => Promise<void> } =>
    kind === 'memory' ? new MemoryStorage(OPTIONS) : LmdbStorage.open({ ...OPTIONS, dir, fsync: kind });
  const before = rss();
  let storage = open();
  storage.load();
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  for (let s = 1; s <= count;) {
    for (const end = Math.min(count, s + TURN - 1); s <= end; s++) storage.append(entry(s), Date.now());
    await storage.flush();
  }
  const appendMs = performance.now() - started;
  const appendCpu = process.cpuUsage(cpu0);
  const afterAppend = rss();
  const afterAppendParts = rssParts();
  let oneWriter = 0;
  const writerStarted = performance.now();
  for (let s = count + 1; s <= count + 2_000 && performance.now() - writerStarted < 5_000; s++) {
    storage.append(entry(s), Date.now());
    await storage.flush();
    oneWriter++;
  }
  const writerMs = performance.now() - writerStarted;
  let loadMs = 0;
  let loaded = 0;
  let fileMb = 0;
  let rssAfterLoad = 0;
  let loadCpuMs = 0;
  let status = { anon: 0, file: 0 };
  if (storage.close) {
    await storage.close();
    fileMb = statSync(join(dir, 'data.mdb')).size / MB;
    const reopened = performance.now();
    const loadCpu0 = process.cpuUsage();
    storage = open();
    loaded = storage.load().entries.length;
    loadMs = performance.now() - reopened;
    const loadCpu = process.cpuUsage(loadCpu0);
    loadCpuMs = (loadCpu.user + loadCpu.system) / 1000;
    rssAfterLoad = rss();
    status = rssParts();
    await storage.close!();
  }
  const result = {
    kind,
    count,
    appendMs: Math.round(appendMs),
    appendCpuMs: Math.round((appendCpu.user + appendCpu.system) / 1000),
    rssAfterAppendParts: afterAppendParts,
    appendPerSec: Math.round(count / (appendMs / 1000)),
    rssBeforeMb: Math.round(before),
    rssAfterAppendMb: Math.round(afterAppend),
    oneWriterPerSec: Math.round(oneWriter / (writerMs / 1000)),
    loadMs: Math.round(loadMs),
    loadCpuMs: Math.round(loadCpuMs),
    rssAfterLoadParts: status,
    loaded,
    rssAfterLoadMb: Math.round(rssAfterLoad),
    fileMb: Math.round(fileMb),
  };
  console.log(JSON.stringify(result));
}

const self = fileURLToPath(import.meta.url);
const [first, second, third] = process.argv.slice(2);
if (first === 'case') {
  await runCase(second as 'memory' | FsyncMode, Number(third), process.argv[5]!);
} else {
  const sizes = first ? [Number(first)] : [100_000, 1_000_000];
  console.log(
    'kind     entries  append ms (cpu)  appends/s  RSS MB start > after (anon+file)  1 writer/s  load ms (cpu)  RSS after load (anon+file)  file MB',
  );
  for (const count of sizes) {
    for (const kind of ['memory', 'off', 'batch', 'always']) {
      const dir = mkdtempSync(join(tmpdir(), 'twinstar-bench-storage-'));
      try {
        const run = spawnSync(process.execPath, ['--import', 'tsx', self, 'case', kind, String(count), dir], {
          encoding: 'utf8',
          timeout: 600_000,
        });
        const line = run.stdout.trim().split('\n').pop() ?? '';
        if (run.status !== 0 || !line.startsWith('{')) {
          console.log(`${kind} ${count}: failed (${run.status}) ${run.stderr.trim().split('\n')[0] ?? ''}`);
          continue;
        }
        const r = JSON.parse(line) as Record<string, unknown>;
        const parts = (p: unknown) => {
          const { anon, file } = p as { anon: number; file: number };
          return `${anon}+${file}`;
        };
        console.log(
          [
            String(r.kind).padEnd(8),
            String(r.count).padStart(8),
            `${r.appendMs} (${r.appendCpuMs})`.padStart(16),
            String(r.appendPerSec).padStart(10),
            `${r.rssBeforeMb} > ${r.rssAfterAppendMb} (${parts(r.rssAfterAppendParts)})`.padStart(34),
            String(r.oneWriterPerSec).padStart(11),
            `${r.loadMs} (${r.loadCpuMs})`.padStart(14),
            `${r.rssAfterLoadMb} (${parts(r.rssAfterLoadParts)})`.padStart(27),
            String(r.fileMb).padStart(8),
          ].join(' '),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}
