/**
 * Fan-out through twinstar's OWN client (issue 18): a pair, one process holding N watchers
 * (bench/watchers-child.js on the compiled client, each `client.on('update')` on the same
 * subtree) and a paced native writer in this process. Per round: p50/p99 write→watcher latency,
 * the watcher process's CPU per 1,000 deliveries and the active's CPU per update, both from
 * /proc/<pid>/stat over the paced phase plus the time the watchers take to catch up.
 *
 *   npm run build && node --import tsx bench/watchers.ts [--n 1,10,100] [--rate 200,1000]
 *       [--secs 3] [--rounds 3] [--prof DIR] [--variants base,current] [--idle]
 *
 * --prof: the watcher process runs with --cpu-prof, a sample every 100 µs (a delivery takes about
 * 20 µs: the default 1 ms would miss most). --variants: builds of the client compared in
 * the same run, taking turns round by round: `current` is dist/src, any other NAME a copy of an
 * earlier dist/src at dist/variants/NAME/src (e.g. `cp -r dist/src dist/variants/base/` before a
 * change). Each round starts a fresh watcher process: connect, 1 s of uncounted warm-up, measure.
 *
 * Bounded: every paced phase lasts --secs, and the catch-up wait at most 60 s.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pacedWrites, writer } from './lib/load.js';
import { cpuSeconds, killAll, nowMs, sleep, startPair, threadCpu, track, type Pair } from './lib/proc.js';
import { Histogram, median } from './lib/stats.js';

const CHILD = fileURLToPath(new URL('./watchers-child.js', import.meta.url));
const SUBTREE = '/w/';
const KEYS = 1000;

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}
const counts = arg('n', '1,10,100').split(',').map(Number);
const rates = arg('rate', '200,1000').split(',').map(Number);
const secs = Number(arg('secs', '3'));
const rounds = Number(arg('rounds', '3'));
const profDir = arg('prof', '');
/** builds of the client to compare: 'current' (dist/src) or NAME (dist/variants/NAME/src) */
const variants = arg('variants', 'current').split(',');
/** also measure the CPU of the connected watchers and the active with nothing written, for 3 s */
const idle = process.argv.includes('--idle');

class Watchers {
  readonly child: ChildProcess;
  private nextId = 1;
  private readonly calls = new Map<number, (msg: { result?: unknown; error?: string }) => void>();

  constructor(client: string | undefined) {
    const execArgv = profDir ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${profDir}`] : [];
    const env = client === undefined ? process.env : { ...process.env, WATCHERS_CLIENT: client };
    this.child = track(fork(CHILD, [], { execArgv, env, stdio: 'inherit' }));
    this.child.on('message', (msg: { id: number; result?: unknown; error?: string }) => {
      this.calls.get(msg.id)?.(msg);
      this.calls.delete(msg.id);
    });
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}, ms = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`watchers: ${cmd} timed out`)), ms);
      this.calls.set(id, (msg) => {
        clearTimeout(timer);
        if (msg.error !== undefined) reject(new Error(`watchers: ${msg.error}`));
        else resolve(msg.result as T);
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  async stop(): Promise<void> {
    const exited = once(this.child, 'exit');
    await this.call('stop', {}, 30_000).catch(() => this.child.kill('SIGKILL'));
    await Promise.race([exited, sleep(10_000)]);
  }
}

interface Stats {
  delivered: number;
  counts: number[];
  maxUs: number;
}

interface Round {
  p50: number;
  p99: number;
  clientMsPer1k: number;
  serverUsPerUpdate: number;
  catchUpMs: number;
  lost: number;
  /** the watcher process's CPU ms per 1,000 deliveries: JS thread, libzmq I/O threads, other */
  threads: string;
}

async function round(
  pair: Pair,
  watchers: Watchers,
  n: number,
  rate: number,
  count: boolean,
): Promise<Round> {
  const client = writerClient!;
  await watchers.call('reset');
  const cpu0 = cpuSeconds(watchers.child.pid!);
  const t0 = threadCpu(watchers.child.pid!);
  const srv0 = pair.primary.cpuSeconds();
  const seq0 = (await pair.primary.status()).sequence;
  const paced = await pacedWrites(client, rate, (count ? secs : 1) * 1000, (i) => `${SUBTREE}${i % KEYS}`);
  if (paced.failed > 0) throw new Error(`paced writes failed: ${paced.firstError}`);
  const wrote = nowMs();
  const expected = paced.done * n;
  let stats = await watchers.call<Stats>('stats');
  const deadline = nowMs() + 60_000;
  while (stats.delivered < expected && nowMs() < deadline) {
    await sleep(20);
    stats = await watchers.call<Stats>('stats');
  }
  const catchUpMs = nowMs() - wrote;
  const cpu = cpuSeconds(watchers.child.pid!) - cpu0;
  const t1 = threadCpu(watchers.child.pid!);
  const per1k = (sec: number) => ((sec * 1000) / (stats.delivered / 1000)).toFixed(1);
  const threads = `JS ${per1k(t1.main - t0.main)}, zmq I/O ${per1k(t1.zmqIo - t0.zmqIo)}, other ${per1k(t1.other - t0.other)}`;
  const seq1 = (await pair.primary.status()).sequence;
  const srv = pair.primary.cpuSeconds() - srv0;
  const hist = new Histogram(stats.counts);
  return {
    p50: hist.percentile(0.5) / 1000,
    p99: hist.percentile(0.99) / 1000,
    clientMsPer1k: (cpu * 1000) / (stats.delivered / 1000),
    serverUsPerUpdate: (srv / Math.max(1, seq1 - seq0)) * 1e6,
    catchUpMs,
    lost: expected - stats.delivered,
    threads,
  };
}

let writerClient: Awaited<ReturnType<typeof writer>> | undefined;

function clientPath(variant: string): string | undefined {
  if (variant === 'current') return undefined;
  return fileURLToPath(new URL(`../dist/variants/${variant}/src/index.js`, import.meta.url));
}

async function main(): Promise<void> {
  const load0 = loadavg().map((l) => l.toFixed(2));
  console.log(
    `watchers bench: n=${counts} rate=${rates} secs=${secs} rounds=${rounds} variants=${variants}; load ${load0.join(' ')}`,
  );
  const pair = await startPair();
  const servers = [pair.primary.endpoint, pair.backup.endpoint];
  writerClient = await writer(servers);
  const summary: string[] = [];
  try {
    for (const n of counts) {
      for (const rate of rates) {
        const results = new Map<string, Round[]>(variants.map((v) => [v, []]));
        // Variants take turns round by round, so that a busy minute of the machine falls on each.
        for (let r = 0; r < rounds; r++) {
          for (const variant of variants) {
            const watchers = new Watchers(clientPath(variant));
            try {
              const { connectMs } = await watchers.call<{ connectMs: number }>('start', {
                servers,
                subtree: SUBTREE,
                count: n,
              });
              if (idle && rate === rates[0]) {
                // What N quiet clients cost with nothing written: timers, HUGZ, the I/O thread.
                const cpu0 = cpuSeconds(watchers.child.pid!);
                const th0 = threadCpu(watchers.child.pid!);
                const srv0 = pair.primary.cpuSeconds();
                await sleep(3000);
                const th1 = threadCpu(watchers.child.pid!);
                const ms = (sec: number) => ((sec * 1000) / 3).toFixed(1);
                console.log(
                  `  ${variant} n=${n} idle: watchers ${ms(cpuSeconds(watchers.child.pid!) - cpu0)} ms CPU/s ` +
                    `(JS ${ms(th1.main - th0.main)}, zmq I/O ${ms(th1.zmqIo - th0.zmqIo)}, other ${ms(th1.other - th0.other)}), ` +
                    `server ${ms(pair.primary.cpuSeconds() - srv0)} ms CPU/s`,
                );
              }
              await round(pair, watchers, n, rate, false); // warm-up, uncounted
              await sleep(200);
              const x = await round(pair, watchers, n, rate, true);
              results.get(variant)!.push(x);
              console.log(
                `  ${variant} n=${n} rate=${rate} round ${r + 1}: connect ${connectMs.toFixed(0)} ms; p50 ${x.p50.toFixed(2)} ms p99 ${x.p99.toFixed(2)} ms; ` +
                  `watchers ${x.clientMsPer1k.toFixed(1)} ms CPU/1k deliveries (${x.threads}); server ${x.serverUsPerUpdate.toFixed(1)} µs/update; ` +
                  `caught up ${x.catchUpMs.toFixed(0)} ms after the last write; lost ${x.lost}; load ${loadavg()[0]!.toFixed(2)}`,
              );
            } finally {
              await watchers.stop();
            }
          }
        }
        for (const variant of variants) {
          const rs = results.get(variant)!;
          const m = (f: (r: Round) => number) => median(rs.map(f));
          summary.push(
            `| ${variant} | ${n} | ${rate} | ${m((r) => r.p50).toFixed(2)} | ${m((r) => r.p99).toFixed(1)} | ` +
              `${m((r) => r.clientMsPer1k).toFixed(1)} | ${m((r) => r.serverUsPerUpdate).toFixed(1)} | ${Math.max(...rs.map((r) => r.lost))} |`,
          );
        }
      }
    }
  } finally {
    await writerClient.close();
    await pair.stop();
  }
  console.log(
    '\n| client | watchers | updates/s | p50 ms | p99 ms | watcher CPU ms/1k deliveries | server µs/update | lost |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const line of summary) console.log(line);
  console.log(
    `load average: start ${load0.join(' ')}, end ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

process.on('exit', killAll);

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
