/**
 * 2. Acknowledged writes/s through the native client: one client awaiting each write, one
 * pipelined client (up to `window` set() promises in flight) and 4 clients each awaiting its
 * writes; on a pair (acknowledged once the passive has applied the write) and on a primary with
 * no backup (degraded: acknowledged by the active alone).
 */
import type { Client } from '../../src/index.js';
import { awaitingWrites, pipelinedWrites, WARM_UP_MS, WARM_UP_WRITES, writer } from '../lib/load.js';
import { startLonePrimary, startPair, type ServerNode } from '../lib/proc.js';
import { PS, RT, type Context } from './context.js';

const KEYS = 10_000;

interface Setup {
  name: 'pair' | 'degraded';
  label: string;
  servers: string[];
  active: ServerNode;
  stop(): Promise<void>;
}

async function setups(ctx: Context, name: Setup['name']): Promise<Setup> {
  if (name === 'pair') {
    const pair = await startPair(ctx.serverNodeArgs);
    return {
      name,
      label: 'pair, passive connected (replicated)',
      servers: [pair.primary.endpoint, pair.backup.endpoint],
      active: pair.primary,
      stop: pair.stop,
    };
  }
  const node = await startLonePrimary(ctx.serverNodeArgs);
  return {
    name,
    label: 'primary alone (degraded)',
    servers: [node.endpoint],
    active: node,
    stop: async () => {
      await node.stop();
    },
  };
}

export async function acked(ctx: Context): Promise<void> {
  const ms = ctx.secs(3, 0.5) * 1000;
  for (const name of ['pair', 'degraded'] as const) {
    const setup = await setups(ctx, name);
    const clients: Client[] = [];
    try {
      for (let i = 0; i < 4; i++) clients.push(await writer(setup.servers));
      if (name === 'degraded') {
        const s = await setup.active.status();
        if (s.state !== 'ACTIVE' || !s.degraded)
          throw new Error(`lone primary is ${s.state}, degraded=${s.degraded}`);
      }
      const key = (c: number, i: number) => `/ack/${c}/${i % KEYS}`;
      // Warm up every path (JIT, sockets) before measuring (lib/load.ts, WARM_UP_WRITES).
      await awaitingWrites(clients, WARM_UP_MS, key, WARM_UP_WRITES / clients.length);
      await pipelinedWrites(clients[0]!, {
        ms: ctx.quick ? 150 : 300,
        window: ctx.window,
        max: 1e6,
        key: (i) => key(0, i),
      });

      const one: number[] = [];
      const piped: number[] = [];
      const four: number[] = [];
      const failures: string[] = [];
      for (let run = 0; run < ctx.runs; run++) {
        const a = await awaitingWrites([clients[0]!], ms, key);
        one.push(a.rate);
        const p = await pipelinedWrites(clients[0]!, {
          ms,
          window: ctx.window,
          max: 5_000_000,
          key: (i) => key(0, i),
        });
        piped.push(p.rate);
        const f = await awaitingWrites(clients, ms, key);
        four.push(f.rate);
        for (const r of [a, p, f]) if (r.failed > 0) failures.push(`${r.failed} failed: ${r.firstError}`);
        ctx.log(
          `  ${name} run ${run + 1}: 1 awaiting ${Math.round(a.rate)}/s, pipelined ${Math.round(p.rate)}/s, 4 awaiting ${Math.round(f.rate)}/s`,
        );
      }
      if (failures.length > 0) throw new Error(`writes failed: ${failures.join('; ')}`);
      const section = `2. Acknowledged writes/s: ${setup.label}`;
      const rt = ctx.ceilings.roundTrip;
      const ps = ctx.ceilings.pubSub;
      const a = ctx.report.add({
        id: `ack.${name}.await1`,
        section,
        label: '1 client, awaiting each write',
        unit: 'writes/s',
        runs: one,
        ratioTo: RT,
      });
      a.ratio = a.value / rt;
      const p = ctx.report.add({
        id: `ack.${name}.pipelined`,
        section,
        label: `1 client, pipelined (${ctx.window} in flight)`,
        unit: 'writes/s',
        runs: piped,
        ratioTo: PS,
      });
      p.ratio = p.value / ps;
      const f = ctx.report.add({
        id: `ack.${name}.await4`,
        section,
        label: '4 clients, each awaiting each write',
        unit: 'writes/s',
        runs: four,
        ratioTo: RT,
      });
      f.ratio = f.value / rt;
      if (name === 'pair') {
        a.target = { text: '≥ 0.5× round trip', met: a.ratio >= 0.5 };
        p.target = { text: '≥ 1× PUB→SUB', met: p.ratio >= 1 };
      }
    } finally {
      for (const c of clients) await c.close();
      await setup.stop();
    }
  }
}
