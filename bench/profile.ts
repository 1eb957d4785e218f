/**
 * Where the server's time goes. `node --import tsx bench/profile.ts SCENARIO [--seconds N] [--keys N]` starts
 * a pair under `node --cpu-prof`, drives one load for a while, stops the servers cleanly (so the
 * profiles are written) and prints the hottest functions of the active and the passive.
 * `node --import tsx bench/profile.ts analyze FILE.cpuprofile` prints one existing profile.
 *
 *   ack-await      one native client awaiting each write
 *   ack-pipelined  one native client with 2000 writes in flight
 *   fanout-1       a native writer at 10k updates/s, 1 subscriber
 *   fanout-100     the same with 100 subscribers
 *   snapshot       100k keys (--keys N) loaded, then late joiners one after another
 *
 * Run `npm run build` first (the servers run from dist/).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pacedWrites, pipelinedWrites, awaitingWrites, writer, value } from './lib/load.js';
import { killAll, startPair, waitFor, sleep } from './lib/proc.js';
import { Worker, joinOnce } from './lib/worker-client.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

function frameName(f: CallFrame): string {
  const url = f.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|dist|src)\//, '$1/');
  const fn = f.functionName || '(anonymous)';
  return url ? `${fn} ${url}:${f.lineNumber + 1}` : fn;
}

/** Self and inclusive time per function, in ms, from a V8 .cpuprofile. */
export function analyze(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the following interval to it.
    const dt = (deltas[i + 1] ?? 0) / 1000;
    selfMs.set(samples[i]!, (selfMs.get(samples[i]!) ?? 0) + dt);
  }
  const total = (profile.endTime - profile.startTime) / 1000;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  let program = 0;
  const walk = (id: number, stack: Set<string>): number => {
    const node = byId.get(id)!;
    const name = frameName(node.callFrame);
    const own = selfMs.get(id) ?? 0;
    if (name === '(idle)') idle += own;
    else if (name === '(garbage collector)') gc += own;
    else if (name === '(program)') program += own;
    self.set(name, (self.get(name) ?? 0) + own);
    let sum = own;
    const fresh = !stack.has(name);
    if (fresh) stack.add(name);
    for (const child of node.children ?? []) sum += walk(child, stack);
    if (fresh) {
      stack.delete(name);
      incl.set(name, (incl.get(name) ?? 0) + sum);
    }
    return sum;
  };
  const root = profile.nodes[0]!;
  walk(root.id, new Set());
  const busy = total - idle;
  const pct = (ms: number) => `${((ms / busy) * 100).toFixed(1).padStart(5)}%`;
  const lines: string[] = [];
  lines.push(
    `${file}\n  wall ${total.toFixed(0)} ms, busy (not idle) ${busy.toFixed(0)} ms = ${((busy / total) * 100).toFixed(0)}% of one core; ` +
      `GC ${gc.toFixed(0)} ms (${pct(gc).trim()} of busy), (program) ${program.toFixed(0)} ms (${pct(program).trim()})`,
  );
  const skip = new Set(['(root)', '(idle)', '(program)', '(garbage collector)']);
  lines.push('  self time (% of busy):');
  for (const [name, ms] of [...self]
    .filter(([n]) => !skip.has(n))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    lines.push(`    ${pct(ms)} ${ms.toFixed(0).padStart(6)} ms  ${name}`);
  }
  lines.push('  inclusive time (% of busy):');
  for (const [name, ms] of [...incl]
    .filter(([n]) => !skip.has(n))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    lines.push(`    ${pct(ms)} ${ms.toFixed(0).padStart(6)} ms  ${name}`);
  }
  return lines.join('\n');
}

async function scenario(name: string, seconds: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'twinstar-prof-'));
  const pair = await startPair(['--cpu-prof', '--cpu-prof-dir', dir]);
  const pids = { active: pair.primary.pid, passive: pair.backup.pid };
  const servers = [pair.primary.endpoint, pair.backup.endpoint];
  const ms = seconds * 1000;
  try {
    const client = await writer(servers, '/prof/');
    const key = (i: number) => `/prof/${i % 10_000}`;
    switch (name) {
      case 'ack-await': {
        const r = await awaitingWrites([client], ms, (_c, i) => key(i));
        process.stdout.write(`${Math.round(r.rate)} acknowledged writes/s, one awaiting client\n`);
        break;
      }
      case 'ack-pipelined': {
        const r = await pipelinedWrites(client, { ms, window: 2000, max: 1e8, key });
        process.stdout.write(`${Math.round(r.rate)} acknowledged writes/s, pipelined\n`);
        break;
      }
      case 'fanout-1':
      case 'fanout-100': {
        const subs = name === 'fanout-1' ? 1 : 100;
        const worker = new Worker();
        await worker.call('sub.start', {
          endpoint: pair.primary.publisher,
          count: subs,
          prefixes: ['/prof/'],
          kind: 'zmtp',
          stamped: true,
        });
        await waitFor(
          async () => {
            await client.set('/prof/probe', value(false));
            return Math.min(...(await worker.subStats()).counts) > 0;
          },
          15_000,
          'subscribers',
        );
        const r = await pacedWrites(client, 10_000, ms, key);
        process.stdout.write(`${Math.round(r.rate)} updates/s to ${subs} subscribers\n`);
        await worker.close();
        break;
      }
      case 'snapshot': {
        await pipelinedWrites(client, { ms: 300_000, window: 2000, max: keys, key: (i) => `/snap/${i}` });
        const deadline = Date.now() + ms;
        let n = 0;
        const joinerDir = join(dir, 'joiner');
        while (Date.now() < deadline && n < 50) {
          const r = await joinOnce({ servers, subtree: '/snap/', timeoutMs: 60_000 }, [
            '--cpu-prof',
            '--cpu-prof-dir',
            joinerDir,
          ]);
          process.stdout.write(`join ${++n}: ${r.keys} keys in ${r.ms.toFixed(0)} ms\n`);
        }
        await sleep(500);
        const first = readdirSync(joinerDir).sort()[0];
        if (first)
          process.stdout.write(`\n== late joiner (client), first join\n${analyze(join(joinerDir, first))}\n`);
        break;
      }
      default:
        throw new Error(`unknown scenario ${name}`);
    }
    await client.close();
    await sleep(200);
  } finally {
    await pair.stop();
  }
  for (const [role, pid] of Object.entries(pids)) {
    const file = readdirSync(dir).find((f) => f.includes(`.${pid}.`));
    process.stdout.write(
      `\n== ${role} (pid ${pid})\n${file ? analyze(join(dir, file)) : 'no profile written'}\n`,
    );
  }
}

const [cmd, arg] = process.argv.slice(2);
const secondsAt = process.argv.indexOf('--seconds');
const seconds = secondsAt > 0 ? Number(process.argv[secondsAt + 1]) : 10;
const keysAt = process.argv.indexOf('--keys');
const keys = keysAt > 0 ? Number(process.argv[keysAt + 1]) : 100_000;
const main =
  cmd === 'analyze'
    ? async () => void process.stdout.write(`${analyze(arg!, 40)}\n`)
    : () => scenario(cmd ?? '', seconds);
process.on('exit', killAll);
main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    killAll();
    process.exit(1);
  },
);
