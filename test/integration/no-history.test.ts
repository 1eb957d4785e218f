/**
 * Promises 1 and 2: no data, no vote. A passive that never finished syncing holds no history; if
 * the active dies then, promoting it would serve an empty map as the truth, every client would
 * resync to nothing, and every acknowledged write would be gone once the old active came back and
 * lost the dual-active meeting to the higher epoch. The stranded node must instead stay passive,
 * say why (`unavailable: 'no-history'` in /status, a gauge, 503 on /readyz), and turn clients away
 * quickly with ERR_UNAVAILABLE; the old active, once back, recovers the service with every key.
 * Only an operator, knowingly, may force it: `twinstar promote --force`.
 *
 * How the stranding is made deterministic: catching a snapshot in flight does not work. Even with
 * 200,000 keys (about 30 MB) the whole snapshot crosses loopback into the new backup's ZeroMQ
 * queue in about 100 ms; the backup then needs a second or more to apply it, but stopping the
 * active at that point changes nothing, the backup finishes from its own queue. So instead the new
 * backup's outgoing peer traffic is dropped (iptables, one way) from before it starts: it hears
 * the active and becomes PASSIVE, but its sync request never arrives, so no snapshot is ever sent.
 * We check the active heard nothing from it for a failover timeout, SIGSTOP the active, then lift
 * the rule. The backup is then exactly a passive whose sync has not completed (0 keys; on the
 * fixed server `history: 'incomplete'`), whatever the machine's speed. Needs root for iptables.
 *
 * SIGSTOP rather than SIGKILL: to the backup and to clients a stopped process is exactly a dead
 * one (silent), but with in-memory storage a SIGKILLed primary would restart empty and could not
 * show that the old active recovers the service with all its keys; SIGCONT brings it back intact.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'chai';
import { connect, type Client } from '../../src/index.js';
import {
  BIN,
  digest,
  metric,
  pairOptions,
  pairPorts,
  ServerProcess,
  waitFor,
  within,
  type PairPorts,
  requireTool,
} from '../helpers/index.js';
import { IPTABLES, drop, healAll, Violations } from '../helpers/faults.js';

const KEYS = 200_000;
const BATCH = 10_000;
const FAILOVER_MS = 500;
const CONNECT_TIMEOUT_MS = 20_000;

describe('no data, no vote: a passive that never synced is never promoted by clients (real processes)', function () {
  this.timeout(240_000);
  let ports: PairPorts;
  let procs: ServerProcess[] = [];
  const clients: Client[] = [];

  before(function () {
    // Cutting the peer link needs root and iptables; CI (root, .ci/run installs iptables) fails
    // the suite if they are missing, a developer's machine skips it and says why.
    requireTool(this, IPTABLES, ['-w', '5', '-S', 'INPUT'], 'run as root with iptables installed');
  });

  after(() => healAll());

  beforeEach(async () => {
    ports = await pairPorts();
  });

  afterEach(async () => {
    healAll();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const p of procs) p.signal('SIGCONT');
    await Promise.all(procs.map((p) => p.kill()));
    procs = [];
  });

  function start(role: 'primary' | 'backup'): ServerProcess {
    const p = new ServerProcess(pairOptions(ports, { heartbeatMs: 100, failoverMs: FAILOVER_MS })[role]);
    procs.push(p);
    return p;
  }

  const endpoint = (port: number) => `tcp://127.0.0.1:${port}`;
  const both = () => [endpoint(ports.primary.port), endpoint(ports.backup.port)];
  const status = async (p: ServerProcess) => await p.status();

  /**
   * A pair holding KEYS acknowledged keys whose backup was replaced and is stranded mid-snapshot:
   * the new backup is PASSIVE, has not completed its sync, and the primary is SIGSTOPped.
   */
  async function strand(): Promise<{
    primary: ServerProcess;
    backup: ServerProcess;
    writer: Client;
    lastAcked: number;
    /** what the stranded backup's /status says of its history (undefined before the fix) */
    history: string | undefined;
  }> {
    const primary = start('primary');
    const first = start('backup');
    await primary.ready('ACTIVE');
    await first.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 10_000, 'the passive to attach');
    const writer = await connect({
      servers: both(),
      subtree: '/big/',
      connectTimeoutMs: 15_000,
      writeTimeoutMs: 120_000,
    });
    clients.push(writer);
    const value = 'x'.repeat(100);
    let lastAcked = 0;
    for (let batch = 0; batch < KEYS / BATCH; batch++) {
      const seqs = await Promise.all(
        Array.from({ length: BATCH }, (_, i) => writer.set(`/big/${batch}/${i}`, value)),
      );
      lastAcked = Math.max(lastAcked, ...seqs);
    }
    expect(lastAcked).to.equal(KEYS);
    await first.kill();
    // The new backup's own peer traffic (its heartbeats and its sync request) is dropped, so it
    // hears the active and turns PASSIVE but its request for a snapshot never gets through.
    drop([{ port: ports.backup.heartbeat, dir: 'sport' }]);
    let backup: ServerProcess;
    try {
      backup = start('backup');
      await backup.ready('PASSIVE', 15_000);
      // The active has heard nothing from the new backup for a failover timeout: no request, so
      // no snapshot, ever reached it.
      await waitFor(
        async () => {
          const p = await primary.status();
          return p.degraded && p.peer!.lastHeardMs > FAILOVER_MS;
        },
        15_000,
        'the active to have heard nothing from the new backup',
      );
      primary.signal('SIGSTOP');
    } finally {
      healAll();
    }
    await waitFor(
      async () => (await backup.status()).peer!.lastHeardMs > FAILOVER_MS,
      30_000,
      'the backup to find its peer silent for a failover timeout',
    );
    const s = await status(backup);
    expect(s.state).to.equal('PASSIVE');
    expect(s.keys, 'the new backup never completed a sync').to.equal(0);
    return { primary, backup, writer, lastAcked, history: s.history };
  }

  /** `twinstar ARGS...`: exit code, stdout and stderr. */
  async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const [code] = (await within(once(child, 'exit'), 30_000, `twinstar ${args[0]}`)) as [number];
    return { code, out, err };
  }

  it('promises 1 and 2: with the active gone, a never-synced passive stays passive, turns clients away with ERR_UNAVAILABLE, and the old active recovers all keys', async () => {
    const { primary, backup, writer, lastAcked, history } = await strand();
    const v = new Violations();
    v.check(history === 'incomplete', `the stranded backup's /status says history=${history}`);

    // The old writer: its replica must never go back, and a write it makes now must not be
    // acknowledged with a sequence the pair already used.
    const writerSequences: number[] = [writer.sequence];
    const sampler = setInterval(() => writerSequences.push(writer.sequence), 20);
    const outage = writer.set('/big/during-outage', 'o').then(
      (seq) => ({ seq }),
      (error: { code?: string }) => ({ error }),
    );

    // A new client: rejected quickly, with the reason, instead of being served an empty map.
    const t0 = Date.now();
    const attempt = connect({ servers: both(), subtree: '/big/', connectTimeoutMs: CONNECT_TIMEOUT_MS }).then(
      (c) => {
        clients.push(c);
        return { client: c };
      },
      (error: { code?: string; message?: string }) => ({ error }),
    );
    const outcome = await within(attempt, CONNECT_TIMEOUT_MS + 5000, 'connect() to settle');
    const settledMs = Date.now() - t0;
    if ('client' in outcome) {
      v.check(
        false,
        `connect() succeeded, served by ${outcome.client.server} with ${outcome.client.entries().size} keys (sequence ${outcome.client.sequence})`,
      );
    } else {
      v.check(
        outcome.error.code === 'ERR_UNAVAILABLE',
        `connect() rejected with ${outcome.error.code}: ${outcome.error.message}`,
      );
      // "Quickly": it did not run into its connect timeout (a structural check, not a speed one).
      v.check(
        settledMs < CONNECT_TIMEOUT_MS / 2,
        `connect() took ${settledMs} ms of its ${CONNECT_TIMEOUT_MS}`,
      );
    }
    const s = await status(backup);
    v.check(s.state !== 'ACTIVE', `the never-synced backup became ACTIVE (epoch ${s.epoch}, ${s.keys} keys)`);
    v.check(s.unavailable === 'no-history', `its /status says unavailable=${JSON.stringify(s.unavailable)}`);
    const readyz = (await fetch(`${backup.http}/readyz`)).status;
    v.check(readyz === 503, `its /readyz answers ${readyz}`);
    const gauge = await metric(backup.http, 'twinstar_unavailable', { reason: 'no-history' });
    v.check(gauge === 1, `twinstar_unavailable{reason="no-history"} is ${gauge}`);
    v.check((await metric(backup.http, 'twinstar_promotions_total')) === 0, 'the backup counts a promotion');

    // The old active comes back: it is still the active and the service recovers every key.
    primary.signal('SIGCONT');
    let recovered: { keys: number; outageValue: string | undefined; server: string | undefined } | undefined;
    try {
      // Recovered: one node ACTIVE and attached, the other PASSIVE holding the complete history.
      // (Bounded generously: on SIGCONT the old active first answers every sync request clients
      // queued at it while it was stopped, each a 200,000-key snapshot.)
      await waitFor(
        async () => {
          const nodes = await Promise.all([status(primary), status(backup)]);
          const active = nodes.filter((x) => x.state === 'ACTIVE');
          const passive = nodes.filter((x) => x.state === 'PASSIVE');
          return (
            active.length === 1 &&
            active[0]!.degraded === false &&
            passive.length === 1 &&
            passive[0]!.history === 'complete'
          );
        },
        90_000,
        'one active serving again with a synced passive attached',
      );
      const [p, b] = await Promise.all([status(primary), status(backup)]);
      v.check(p.state === 'ACTIVE', `after SIGCONT the old active is ${p.state} (the backup is ${b.state})`);
      const fresh = await connect({ servers: both(), subtree: '/big/', connectTimeoutMs: 30_000 });
      clients.push(fresh);
      recovered = {
        keys: [...fresh.entries().keys()].filter((k) => k !== '/big/during-outage').length,
        outageValue: fresh.getString('/big/during-outage'),
        server: fresh.server,
      };
    } catch (error) {
      const now = await Promise.all([primary, backup].map((n) => status(n).catch(() => undefined)));
      const brief = now.map((x) =>
        x
          ? { state: x.state, epoch: x.epoch, keys: x.keys, degraded: x.degraded, fenced: x.fenced }
          : 'no answer',
      );
      v.check(false, `no recovery: ${String(error)} (primary, backup: ${JSON.stringify(brief)})`);
    }
    const outageResult = await within(outage, 130_000, 'the outage write to settle');
    clearInterval(sampler);
    if ('seq' in outageResult) {
      v.check(
        outageResult.seq > lastAcked,
        `the write made during the outage was acknowledged with sequence ${outageResult.seq}, already used (last acknowledged before: ${lastAcked})`,
      );
      v.check(recovered?.outageValue === 'o', 'the acknowledged outage write is missing after recovery');
    }
    const back = writerSequences.findIndex((seq, i) => i > 0 && seq < writerSequences[i - 1]!);
    v.check(
      back < 0,
      `the old writer's replica went back from sequence ${writerSequences[back - 1]} to ${writerSequences[back]}`,
    );
    v.check(
      recovered?.keys === KEYS,
      `after recovery a client sees ${recovered?.keys} of the ${KEYS} acknowledged keys (from ${recovered?.server})`,
    );
    if (recovered)
      v.check(recovered.server === primary.endpoint, `the recovered service is ${recovered.server}`);
    if (recovered?.server === primary.endpoint) {
      // The stranded backup finally completes its sync from the recovered active.
      try {
        await waitFor(
          async () => {
            const [a, b] = await Promise.all([digest(primary.http), digest(backup.http)]);
            return a.digest === b.digest && a.keys >= KEYS;
          },
          60_000,
          'the backup to hold the same state as the active',
        );
      } catch (error) {
        v.check(false, String(error));
      }
    }
    v.assertNone();
  });

  it('promise 1: the operator can knowingly force a never-synced passive to ACTIVE with `twinstar promote --force`', async () => {
    const { backup, history } = await strand();
    expect(history).to.equal('incomplete');
    const before = await status(backup);
    expect(before.state).to.equal('PASSIVE');
    const r = await cli(['promote', '--node', `http://127.0.0.1:${ports.backup.http}`, '--force']);
    expect(r.code, `twinstar promote exited ${r.code}: ${r.err.trim()}`).to.equal(0);
    await waitFor(
      async () => (await backup.status()).state === 'ACTIVE',
      10_000,
      'the forced node to be ACTIVE',
    );
    const after = await status(backup);
    expect(after.epoch).to.be.greaterThan(before.epoch);
    expect(after.unavailable).to.equal(null);
    expect(after.history).to.equal('complete');
    expect((await fetch(`${backup.http}/readyz`)).status).to.equal(200);
    expect(await metric(backup.http, 'twinstar_promotions_total', { reason: 'forced' })).to.equal(1);
  });
});
