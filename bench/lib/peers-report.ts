/**
 * The figures of the peers suite (suites/peers.ts): the shape of its plan, the per-round records
 * its rounds fill (Runs, FanRun), how each system is driven (HOW, for the labels), and
 * reportPeers(), which turns the rounds into the 10a-10d figures: one row per system, each peer's
 * row with the ratio twinstar ÷ that peer, and the targets on twinstar's rows (connect < 10 ms,
 * 100 watchers < 1 s, p99 < 50 ms at 1,000/s, watcher CPU ≤ Redis pub/sub, nothing lost, awaited
 * writes ≥ Redis SET + WAIT, a snapshot ≤ Redis SCAN + MGET).
 */
import type { System, PeerSystem } from './peer-systems.js';
import type { Figure } from './report.js';
import type { Context } from '../suites/context.js';

/** What one run of the suite does: its sizes, rates and durations (plan() in suites/peers.ts). */
export interface Plan {
  watchers: number;
  rates: number[];
  pacedMs: number;
  connects: number;
  awaitMs: number;
  keys: number;
}

const HOW: Record<System, { watch: string; write: string; snapshot: string }> = {
  twinstar: {
    watch: "connect() + on('update')",
    write: 'set(), pair',
    snapshot: 'connect() on the subtree',
  },
  redis: { watch: 'SUBSCRIBE (pub/sub)', write: 'SET + WAIT 1 0, 1 replica', snapshot: 'SCAN + MGET ×1,000' },
  nats: { watch: 'kv.watch()', write: 'kv.put(), R1', snapshot: 'kv.watch() of all keys' },
};

export interface FanRun {
  p50: number;
  p99: number;
  clientCpu: number;
  serverCpu: number;
  lost: number;
  /** watcher connections lost during the phase */
  disconnects: number;
  achieved: number;
  failed: number;
}

export interface Runs {
  connect: number[];
  start: number[];
  fan: Record<number, FanRun[]>;
  await: number[];
  snapshot: number[];
}

/** Adds the suite's figures for `systems` (those measured to the end) to the report. */
export function reportPeers(
  ctx: Context,
  p: Plan,
  systems: PeerSystem[],
  runs: Map<System, Runs>,
  raw: { zmq: number[]; net: number[] },
): void {
  const n = p.watchers;
  const quickNote = ctx.quick ? ` (quick: ${n} watchers)` : '';
  const redis = systems.find((s) => s.system === 'redis');
  /**
   * One row per system; each peer's row carries twinstar ÷ that peer. `better` says which way is
   * better, in the label.
   */
  const rows = (
    section: string,
    id: string,
    what: string,
    unit: string,
    better: 'lower' | 'higher',
    values: (r: Runs) => number[],
    how: (s: System) => string,
    aggregate: Figure['aggregate'] = 'median',
    detail?: (r: Runs) => Record<string, unknown>,
  ): Map<System, Figure> => {
    const out = new Map<System, Figure>();
    for (const s of systems) {
      const r = runs.get(s.system)!;
      out.set(
        s.system,
        ctx.report.add({
          id: `peers.${s.system}.${id}`,
          section,
          label: `${what} (${better} is better): ${s.name}, ${how(s.system)}`,
          unit,
          runs: values(r),
          aggregate,
          ...(detail ? { detail: detail(r) } : {}),
        }),
      );
    }
    const mine = out.get('twinstar')!;
    for (const s of aggregate === 'max' ? [] : systems) {
      if (s.system === 'twinstar') continue;
      const f = out.get(s.system)!;
      f.ratioTo = `twinstar ÷ ${s.system === 'redis' ? 'Redis' : 'NATS'}`;
      f.ratio = mine.value / f.value;
    }
    return out;
  };
  const target = (f: Figure | undefined, text: string, met: boolean) => {
    if (f) f.target = { text, met };
  };

  const connect = `10a. Peers: connect a watcher (loopback, healthy servers)${quickNote}`;
  const c = rows(
    connect,
    'connect',
    `one watcher ready, median of ${p.connects}`,
    'ms',
    'lower',
    (r) => r.connect,
    (s) => HOW[s].watch,
  );
  target(c.get('twinstar'), '< 10 ms', c.get('twinstar')!.value < 10);
  const st = rows(
    connect,
    'start',
    `${n} watchers started at once, all ready`,
    'ms',
    'lower',
    (r) => r.start,
    (s) => HOW[s].watch,
  );
  target(
    st.get('twinstar'),
    `< 1 s${ctx.quick ? ` for 100 (quick: ${n} only)` : ''}`,
    st.get('twinstar')!.value < 1000,
  );

  for (const rate of p.rates) {
    const section = `10b. Peers: fan-out to ${n} watchers in one process, ${rate.toLocaleString('en-US')} updates/s, 100-byte values`;
    const fan = (r: Runs) => r.fan[rate]!;
    const detail = (r: Runs) => ({
      achievedRate: fan(r).map((f) => Math.round(f.achieved)),
      failedWrites: fan(r).map((f) => f.failed),
      lost: fan(r).map((f) => f.lost),
      disconnects: fan(r).map((f) => f.disconnects),
    });
    rows(
      section,
      `fan.${rate}.p50`,
      'p50 write→watcher',
      'ms',
      'lower',
      (r) => fan(r).map((f) => f.p50),
      (s) => HOW[s].watch,
    );
    const p99 = rows(
      section,
      `fan.${rate}.p99`,
      'p99 write→watcher',
      'ms',
      'lower',
      (r) => fan(r).map((f) => f.p99),
      (s) => HOW[s].watch,
      'median',
      detail,
    );
    if (rate === 1000) target(p99.get('twinstar'), '< 50 ms', p99.get('twinstar')!.value < 50);
    const cpu = rows(
      section,
      `fan.${rate}.clientcpu`,
      'watcher-process CPU per 1,000 deliveries',
      'ms',
      'lower',
      (r) => fan(r).map((f) => f.clientCpu),
      (s) => HOW[s].watch,
    );
    if (redis)
      target(cpu.get('twinstar'), '≤ Redis pub/sub', cpu.get('twinstar')!.value <= cpu.get('redis')!.value);
    rows(
      section,
      `fan.${rate}.servercpu`,
      'server CPU (every server process) per 1,000 deliveries',
      'ms',
      'lower',
      (r) => fan(r).map((f) => f.serverCpu),
      (s) => HOW[s].write.replace(/^.*?, /, ''),
    );
    const lost = rows(
      section,
      `fan.${rate}.lost`,
      'deliveries lost',
      'count',
      'lower',
      (r) => fan(r).map((f) => f.lost),
      (s) => HOW[s].watch,
      'max',
    );
    for (const f of lost.values()) f.target = { text: '0', met: f.value === 0 };
  }

  const writes = '10c. Peers: one writer awaiting each acknowledged write, 100-byte values';
  const a = rows(
    writes,
    'await',
    'writes/s',
    'writes/s',
    'higher',
    (r) => r.await,
    (s) => HOW[s].write,
  );
  if (redis) {
    const ratio = a.get('twinstar')!.value / a.get('redis')!.value;
    target(a.get('twinstar'), '≥ 1.0× Redis SET + WAIT', ratio >= 1);
  }
  // What zeromq.js itself allows: a replicated twinstar write crosses four one-way hops (client,
  // active, passive, active, client), three when the passive answers (issue 18), each costing at
  // least half a raw round trip; and a plain TCP socket's round trip, for scale.
  ctx.report.add({
    id: 'peers.zmq.roundtrip',
    section: writes,
    label:
      'raw zeromq.js round trips/s: DEALER → ROUTER echo → DEALER, one in flight, nothing done per message',
    unit: 'rt/s',
    runs: raw.zmq,
  });
  const ceilings = ([4, 3] as const).map((hops) => {
    const f = ctx.report.add({
      id: `peers.zmq.hops${hops}`,
      section: writes,
      label: `the most awaited writes/s ${hops} zeromq.js hops allow, no work done: raw round trips × 2 ÷ ${hops}`,
      unit: 'writes/s',
      runs: raw.zmq.map((r) => (r * 2) / hops),
    });
    if (redis) {
      f.ratioTo = 'ceiling ÷ Redis';
      f.ratio = f.value / a.get('redis')!.value;
    }
    return f;
  });
  ctx.report.add({
    id: 'peers.net.roundtrip',
    section: writes,
    label: 'raw round trips/s over a plain Node TCP socket, same echo process, for scale',
    unit: 'rt/s',
    runs: raw.net,
  });
  const mine = a.get('twinstar')!;
  mine.ratioTo = 'twinstar ÷ the 3-hop ceiling';
  mine.ratio = mine.value / ceilings[1]!.value;

  const label = p.keys >= 1000 ? `${p.keys / 1000}k` : String(p.keys);
  const snap = `10d. Peers: ${label} keys of 100-byte values to a new reader`;
  const sn = rows(
    snap,
    'snapshot',
    'time from connecting to holding every value',
    'ms',
    'lower',
    (r) => r.snapshot,
    (s) => HOW[s].snapshot,
  );
  if (redis)
    target(sn.get('twinstar'), '≤ Redis SCAN + MGET', sn.get('twinstar')!.value <= sn.get('redis')!.value);
}
