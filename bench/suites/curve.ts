/**
 * 2b. The cost of CurveZMQ: acknowledged writes/s on the same pair with and without --curve
 * (every socket encrypted, the client's key checked per request). One client awaiting each write,
 * and one pipelined client; the figure that matters is the pipelined ratio, where per-message
 * crypto is not hidden behind round trips.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '../../src/index.js';
import { generateKeyPair, writeKeyPair } from '../../src/security/index.js';
import { awaitingWrites, pipelinedWrites, writer } from '../lib/load.js';
import { startPair } from '../lib/proc.js';
import type { Context } from './context.js';

const KEYS = 10_000;

export async function curve(ctx: Context): Promise<void> {
  const ms = ctx.secs(3, 0.5) * 1000;
  const dir = mkdtempSync(join(tmpdir(), 'twinstar-bench-curve-'));
  const primary = generateKeyPair();
  const backup = generateKeyPair();
  const client = generateKeyPair();
  writeKeyPair(join(dir, 'primary'), primary);
  writeKeyPair(join(dir, 'backup'), backup);
  writeFileSync(
    join(dir, 'clients.json'),
    JSON.stringify({ clients: [{ name: 'bench', publicKey: client.publicKey, read: ['*'], write: ['*'] }] }),
  );
  const secureArgs = (role: 'primary' | 'backup') => [
    '--curve',
    '--key-file',
    join(dir, `${role}.key_secret`),
    '--peer-key-file',
    join(dir, `${role === 'primary' ? 'backup' : 'primary'}.key`),
    '--clients-file',
    join(dir, 'clients.json'),
  ];
  const rates: Record<string, { await1: number[]; pipelined: number[] }> = {};
  try {
    for (const mode of ['plain', 'curve'] as const) {
      const pair = await startPair(ctx.serverNodeArgs, mode === 'curve' ? secureArgs : () => []);
      let c: Client | undefined;
      try {
        c = await writer(
          [pair.primary.endpoint, pair.backup.endpoint],
          '/curve/',
          mode === 'curve'
            ? { curve: { ...client, serverPublicKey: [primary.publicKey, backup.publicKey] } }
            : {},
        );
        const key = (_c: number, i: number) => `/curve/${i % KEYS}`;
        await awaitingWrites([c], ctx.quick ? 150 : 300, key); // warm-up
        const r: { await1: number[]; pipelined: number[] } = (rates[mode] = { await1: [], pipelined: [] });
        for (let run = 0; run < ctx.runs; run++) {
          const a = await awaitingWrites([c], ms, key);
          const p = await pipelinedWrites(c, {
            ms,
            window: ctx.window,
            max: 5_000_000,
            key: (i) => key(0, i),
          });
          for (const x of [a, p])
            if (x.failed > 0) throw new Error(`${x.failed} writes failed: ${x.firstError}`);
          r.await1.push(a.rate);
          r.pipelined.push(p.rate);
          ctx.log(
            `  ${mode} run ${run + 1}: 1 awaiting ${Math.round(a.rate)}/s, pipelined ${Math.round(p.rate)}/s`,
          );
        }
      } finally {
        await c?.close();
        await pair.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const section = '2b. Cost of CURVE: acknowledged writes/s on a pair, without and with --curve';
  const figures: Record<string, number> = {};
  for (const mode of ['plain', 'curve'] as const) {
    const label = mode === 'plain' ? 'without CURVE' : 'with CURVE (all sockets, peer link too)';
    figures[`${mode}.await1`] = ctx.report.add({
      id: `curve.${mode}.await1`,
      section,
      label: `1 client awaiting each write, ${label}`,
      unit: 'writes/s',
      runs: rates[mode]!.await1,
    }).value;
    figures[`${mode}.pipelined`] = ctx.report.add({
      id: `curve.${mode}.pipelined`,
      section,
      label: `1 client pipelined (${ctx.window} in flight), ${label}`,
      unit: 'writes/s',
      runs: rates[mode]!.pipelined,
    }).value;
  }
  const cost = 1 - figures['curve.pipelined']! / figures['plain.pipelined']!;
  ctx.report.add({
    id: 'curve.cost',
    section,
    label: 'pipelined writes/s lost to CURVE',
    unit: '%',
    runs: [cost * 100],
  });
}
