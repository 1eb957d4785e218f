/**
 * twinstar benchmarks (issue 7). `npm run bench -- [options]`:
 *
 *   --quick          reduced set, 1 run per figure, short loads (the CI smoke test)
 *   --json FILE      also write every figure, every run and the machine as JSON
 *   --runs N         runs per figure (default 3, quick 1)
 *   --only LIST      comma-separated suites: ceiling,ack,curve,chp,fanout,snapshot,failover,durability,events,peers
 *   --peers          the peers suite (issue 18): twinstar beside redis-server and nats-server, where
 *                    installed; alone, or added to --only. A full run leaves it out unless asked;
 *                    --quick includes one short round of it
 *   --window N       acknowledged writes in flight for pipelined writers (default 2000)
 *   --profile DIR    run server processes under --cpu-prof, profiles written to DIR
 *   --node-arg FLAG  a node flag for every server process (repeatable), for A/B runs of V8 or
 *                    Node settings: --node-arg --max-semi-space-size=4
 *   --wait-idle S    first wait up to S seconds for the 1-minute load average to drop below 1
 *
 * Every figure runs on real server processes on 127.0.0.1 (a pair unless stated), or on raw
 * zeromq.js sockets for the ceilings. Exits non-zero if any expected figure is missing or NaN.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { killAll, liveChildren, sleep } from './lib/proc.js';
import { machine, Report, table } from './lib/report.js';
import type { Context } from './suites/context.js';
import { ceilings } from './suites/ceiling.js';
import { acked } from './suites/acked.js';
import { chp } from './suites/chp.js';
import { curve } from './suites/curve.js';
import { fanout } from './suites/fanout.js';
import { snapshot } from './suites/snapshot.js';
import { failover } from './suites/failover.js';
import { durability, durabilitySizes, MODES, SIGNALS } from './suites/durability.js';
import { events, eventFigures } from './suites/events.js';
import { peers, peerFigures } from './suites/peers.js';

const SUITES = [
  'ceiling',
  'ack',
  'curve',
  'chp',
  'fanout',
  'snapshot',
  'failover',
  'durability',
  'events',
  'peers',
] as const;
type Suite = (typeof SUITES)[number];

interface Args {
  quick: boolean;
  json: string | undefined;
  runs: number | undefined;
  only: Suite[];
  window: number;
  profile: string | undefined;
  /** extra node flags for every server process (`--node-arg`, repeatable) */
  nodeArgs: string[];
  waitIdle: number;
  peers: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: false,
    json: undefined,
    runs: undefined,
    only: [...SUITES],
    window: 2000,
    profile: undefined,
    nodeArgs: [],
    waitIdle: 0,
    peers: false,
  };
  let only = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--quick':
        args.quick = true;
        break;
      case '--json':
        args.json = next();
        break;
      case '--runs':
        args.runs = Number(next());
        if (!Number.isInteger(args.runs) || args.runs < 1)
          throw new Error('--runs must be a positive integer');
        break;
      case '--window':
        args.window = Number(next());
        if (!Number.isInteger(args.window) || args.window < 1)
          throw new Error('--window must be a positive integer');
        break;
      case '--only':
        args.only = next().split(',') as Suite[];
        only = true;
        for (const s of args.only)
          if (!SUITES.includes(s)) throw new Error(`unknown suite ${s}; known: ${SUITES.join(',')}`);
        break;
      case '--node-arg':
        args.nodeArgs.push(next());
        break;
      case '--wait-idle':
        args.waitIdle = Number(next());
        if (!(args.waitIdle >= 0)) throw new Error('--wait-idle must be a number of seconds');
        break;
      case '--peers':
        args.peers = true;
        break;
      case '--profile':
        args.profile = resolve(next());
        break;
      case '--help':
      case '-h':
        process.stdout.write(
          'npm run bench -- [--quick] [--json FILE] [--runs N] [--only ceiling,ack,curve,chp,fanout,snapshot,failover,durability,events,peers] [--peers] [--window N] [--profile DIR] [--node-arg FLAG]... [--wait-idle S]\n',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  // The peers suite needs other programs and minutes: a full run has it only when asked for.
  if (args.peers) args.only = only ? [...new Set([...args.only, 'peers' as const])] : ['peers'];
  else if (!only && !args.quick) args.only = args.only.filter((s) => s !== 'peers');
  return args;
}

/** The figure ids each suite must produce (in quick mode, without the 1M-key snapshot). */
function expected(suite: Suite, quick: boolean): string[] {
  switch (suite) {
    case 'ceiling':
      return ['ceiling.pubsub', 'ceiling.roundtrip'];
    case 'ack':
      return ['pair', 'degraded'].flatMap((n) =>
        ['await1', 'pipelined', 'await4'].map((k) => `ack.${n}.${k}`),
      );
    case 'curve':
      return ['plain', 'curve']
        .flatMap((n) => [`curve.${n}.await1`, `curve.${n}.pipelined`])
        .concat(['curve.cost']);
    case 'chp':
      return ['chp.rate', 'chp.loss'];
    case 'fanout':
      return [1, 10, 100]
        .flatMap((n) => [`fanout.${n}.rate`, `fanout.${n}.p50`, `fanout.${n}.p99`, `fanout.${n}.cpu`])
        .concat(['fanout.cpu.ratio'])
        .concat([1, 100].flatMap((n) => [`fanout.chp.${n}.cpu`, `fanout.chp.${n}.p99`]))
        .concat(['fanout.chp.cpu.ratio']);
    case 'snapshot':
      return (quick ? [100_000] : [100_000, 1_000_000])
        .map((n) => `snapshot.${n}.ms`)
        .concat(
          quick
            ? ['snapshot.100000.server.rss', 'snapshot.100000.client.rss']
            : ['snapshot.1000000.server.rss', 'snapshot.1000000.client.rss'],
        );
    case 'failover':
      return ['failover.median', 'failover.worst', 'failover.promotions'];
    case 'durability':
      return MODES.flatMap((m) => [`durability.ack.${m}.await1`, `durability.ack.${m}.pipelined`])
        .concat(
          durabilitySizes(quick).flatMap((n) =>
            SIGNALS.flatMap((s) =>
              ['write', 'snapshot', 'rss.vm', 'rss.anon', 'rss.file'].map(
                (k) => `durability.restart.${n}.${s}.${k}`,
              ),
            ),
          ),
        )
        .concat(
          ['memory', 'batch'].flatMap((m) =>
            ['vm', 'anon', 'file'].flatMap((k) =>
              quick
                ? [`durability.rss.${m}.${k}`]
                : [`durability.rss.${m}.${k}`, `durability.rss.${m}.settled.${k}`],
            ),
          ),
        );
    case 'events':
      return eventFigures();
    case 'peers':
      return peerFigures(quick);
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const log = (message: string) => process.stderr.write(`${message}\n`);
  if (args.waitIdle > 0) {
    const until = Date.now() + args.waitIdle * 1000;
    while (loadavg()[0]! >= 1 && Date.now() < until) await sleep(5000);
    log(`load average ${loadavg()[0]!.toFixed(2)} after waiting for an idle machine`);
  }
  const started = Date.now();
  const report = new Report();
  const m = machine();
  if (args.profile) mkdirSync(args.profile, { recursive: true });
  const ctx: Context = {
    quick: args.quick,
    runs: args.runs ?? (args.quick ? 1 : 3),
    report,
    ceilings: { pubSub: NaN, roundTrip: NaN },
    serverNodeArgs: [
      ...args.nodeArgs,
      ...(args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : []),
    ],
    window: args.window,
    log,
    secs: (full, quick) => (args.quick ? quick : full),
  };
  log(
    `twinstar bench (${args.quick ? 'quick' : 'full'}, ${ctx.runs} run(s) per figure) on ${m.cpu}, ${m.cores} cores, node ${m.node}`,
  );
  const suites: Record<Suite, (ctx: Context) => Promise<void>> = {
    ceiling: ceilings,
    ack: acked,
    curve,
    chp,
    fanout,
    snapshot,
    failover,
    durability,
    events,
    peers,
  };
  const errors: string[] = [];
  // The ceilings are what every other figure is divided by: always measure them first.
  // (The peers suite alone needs no ceiling.)
  const alone = args.only.length === 1 && args.only[0] === 'peers';
  const order = SUITES.filter((s) => (s === 'ceiling' && !alone) || args.only.includes(s));
  for (const name of order) {
    const t = Date.now();
    log(`== ${name}`);
    try {
      await suites[name](ctx);
    } catch (error) {
      errors.push(`${name}: ${(error as Error).stack ?? String(error)}`);
      log(`!! ${name} failed: ${(error as Error).stack ?? String(error)}`);
    }
    killAll(); // nothing a suite started survives it, even when it failed
    log(`   ${name} took ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const seconds = (Date.now() - started) / 1000;
  m.loadEnd = Math.round(loadavg()[0]! * 100) / 100;
  const want = order.flatMap((s) => expected(s, args.quick));
  const missing = report.missing(want);

  const out = table(report);
  process.stdout.write(
    `\ntwinstar benchmark, ${new Date().toISOString()}, ${args.quick ? 'quick' : 'full'} mode, ${ctx.runs} run(s) per figure (median shown), ${seconds.toFixed(0)} s\n` +
      `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB, ${m.os}, node ${m.node}, zeromq.js ${m.zeromq}; load average ${m.loadStart} at start, ${m.loadEnd} at end; commit ${m.commit}${args.nodeArgs.length > 0 ? `; server node flags ${args.nodeArgs.join(' ')}` : ''}\n\n${out}\n`,
  );
  if (report.notes.length > 0) process.stdout.write(`\n${report.notes.map((n) => `- ${n}`).join('\n')}\n`);
  if (args.json) {
    mkdirSync(dirname(resolve(args.json)), { recursive: true });
    writeFileSync(
      args.json,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          mode: args.quick ? 'quick' : 'full',
          runsPerFigure: ctx.runs,
          serverNodeArgs: ctx.serverNodeArgs,
          seconds,
          machine: m,
          ceilings: ctx.ceilings,
          figures: report.figures,
          notes: report.notes,
          errors,
          missing,
        },
        null,
        2,
      )}\n`,
    );
    process.stdout.write(`\nJSON written to ${args.json}\n`);
  }
  if (errors.length > 0) process.stdout.write(`\n${errors.length} suite(s) failed:\n${errors.join('\n')}\n`);
  if (missing.length > 0) {
    process.stdout.write(`\nmissing or NaN figures: ${missing.join(', ')}\n`);
    return 1;
  }
  return errors.length > 0 ? 1 : 0;
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

main().then(
  (code) => {
    killAll();
    if (liveChildren() > 0) process.stderr.write('warning: child processes still running\n');
    process.exit(code);
  },
  (error) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    killAll();
    process.exit(1);
  },
);
