/**
 * Random faults under load, with real processes: the soak of the pair (issue 3) and the
 * convergence of several failover-aware clients (issue 4). A seeded PRNG picks the faults; the
 * seed is printed so a failure can be replayed with TWINSTAR_CHAOS_SEED.
 */
import { expect } from 'chai';
import { connect, type Client, type Update } from '../../src/index.js';
import {
  digest,
  pairOptions,
  pairPorts,
  prng,
  ServerProcess,
  waitFor,
  within,
  type PairPorts,
} from '../helpers/index.js';

class Pair {
  readonly nodes: { primary: ServerProcess; backup: ServerProcess };
  constructor(readonly ports: PairPorts) {
    const o = pairOptions(ports);
    this.nodes = { primary: new ServerProcess(o.primary), backup: new ServerProcess(o.backup) };
  }

  get servers(): string[] {
    return [`tcp://127.0.0.1:${this.ports.primary.port}`, `tcp://127.0.0.1:${this.ports.backup.port}`];
  }

  readonly all: ServerProcess[] = [];
  restart(role: 'primary' | 'backup'): ServerProcess {
    this.all.push(this.nodes[role]);
    this.nodes[role] = new ServerProcess(pairOptions(this.ports)[role]);
    return this.nodes[role];
  }

  /** Exactly one ACTIVE, the other PASSIVE, synced and attached (not degraded). */
  async healthy(ms: number): Promise<{ active: 'primary' | 'backup' }> {
    let last = '';
    return waitFor(
      async () => {
        const [p, b] = await Promise.all([this.nodes.primary.status(), this.nodes.backup.status()]);
        last = JSON.stringify({ primary: p, backup: b });
        const states = `${p.state}/${b.state}`;
        if (states === 'ACTIVE/PASSIVE' && !p.degraded) return { active: 'primary' as const };
        if (states === 'PASSIVE/ACTIVE' && !b.degraded) return { active: 'backup' as const };
        return undefined;
      },
      ms,
      'a healthy pair',
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last status ${last}`);
    });
  }

  async close(): Promise<void> {
    for (const n of Object.values(this.nodes)) n.signal('SIGCONT');
    await Promise.all(Object.values(this.nodes).map((n) => n.kill()));
  }
}

interface Writer {
  readonly client: Client;
  readonly prefix: string;
  readonly acked: Map<string, string>;
  /** when each write was acknowledged, and whether the pair said it was degraded then */
  readonly ackInfo: Map<string, { at: number; seq: number; degraded: boolean }>;
  readonly delivered: number[];
  stop: boolean;
  done: Promise<void>;
  errors: Error[];
}

function startWriter(client: Client, prefix: string): Writer {
  const w: Writer = {
    client,
    prefix,
    acked: new Map(),
    ackInfo: new Map(),
    delivered: [],
    stop: false,
    done: Promise.resolve(),
    errors: [],
  };
  client.on('update', (u: Update) => {
    if (!u.resync) w.delivered.push(u.seq);
  });
  w.done = (async () => {
    for (let i = 0; !w.stop; i++) {
      const key = `${prefix}k${i}`;
      try {
        const seq = await client.set(key, `v${i}`);
        w.acked.set(key, `v${i}`);
        w.ackInfo.set(key, { at: Date.now(), seq, degraded: client.degraded });
      } catch (error) {
        // A failed write may or may not have landed: it is not counted as acknowledged, and the
        // writer stops (the test then fails on w.errors) rather than spin on a closed client.
        w.errors.push(error as Error);
        return;
      }
    }
  })();
  return w;
}

function strictlyIncreasing(seqs: number[]): boolean {
  for (let i = 1; i < seqs.length; i++) if (seqs[i]! <= seqs[i - 1]!) return false;
  return true;
}

describe('chaos: random faults under write load (real processes)', function () {
  this.timeout(300_000);
  let pair: Pair | undefined;
  const clients: Client[] = [];
  const seed = Number(process.env.TWINSTAR_CHAOS_SEED ?? Date.now() % 1_000_000);

  before(() => console.log(`      chaos seed ${seed} (replay with TWINSTAR_CHAOS_SEED=${seed})`));

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await pair?.close();
    pair = undefined;
  });

  async function writers(subtrees: string[]): Promise<Writer[]> {
    const out: Writer[] = [];
    for (const [i, subtree] of subtrees.entries()) {
      const client = await connect({
        servers: pair!.servers,
        subtree,
        writeTimeoutMs: 30_000,
        connectTimeoutMs: 15_000,
      });
      clients.push(client);
      out.push(startWriter(client, subtree === '' ? `/all${i}/` : subtree));
    }
    return out;
  }

  async function progress(ws: Writer[], more: number): Promise<void> {
    const target = ws.map((w) => w.acked.size + more);
    await waitFor(
      () => ws.every((w, i) => w.acked.size >= target[i]!),
      30_000,
      `every writer to get ${more} more acks`,
    );
  }

  async function finish(ws: Writer[]): Promise<void> {
    for (const w of ws) w.stop = true;
    await within(Promise.all(ws.map((w) => w.done)), 60_000, 'the writers to stop');
    for (const w of ws) expect(w.errors, `${w.prefix} write errors`).to.deep.equal([]);
  }

  it('soak: 20 random faults (kill, restart, freeze) of either node; then both dumps are identical and hold every acknowledged write', async () => {
    const random = prng(seed);
    pair = new Pair(await pairPorts());
    await pair.healthy(15_000);
    const ws = await writers(['/s0/', '/s1/', '/s2/']);
    const faults: string[] = [];
    for (let round = 0; round < 20; round++) {
      const { active } = await pair.healthy(30_000);
      const passive = active === 'primary' ? 'backup' : 'primary';
      const target = random() < 0.6 ? active : passive;
      const node = pair.nodes[target];
      if (random() < 0.5) {
        faults.push(`kill ${target}`);
        if (process.env.TWINSTAR_CHAOS_DEBUG)
          console.log(`      ${new Date().toISOString().slice(11)} kill ${target}`);
        await node.kill();
        if (target === active) await progress(ws, 20); // the clients have failed over
        await pair.restart(target).ready(undefined, 15_000);
      } else {
        faults.push(`freeze ${target}`);
        if (process.env.TWINSTAR_CHAOS_DEBUG)
          console.log(`      ${new Date().toISOString().slice(11)} freeze ${target}`);
        node.signal('SIGSTOP');
        if (target === active) await progress(ws, 20);
        else
          await waitFor(
            async () => (await pair!.nodes[active].status()).degraded,
            10_000,
            'the active to detach its frozen passive',
          );
        node.signal('SIGCONT');
      }
      await progress(ws, 10);
      if (process.env.TWINSTAR_CHAOS_DEBUG)
        console.log(`      round ${round}: ${faults.at(-1)}, acked ${ws.map((w) => w.acked.size)}`);
    }
    await pair.healthy(30_000);
    await finish(ws);
    const { primary, backup } = pair.nodes;
    await waitFor(
      async () => {
        const [a, b] = await Promise.all([digest(primary.http), digest(backup.http)]);
        return a.digest === b.digest;
      },
      15_000,
      'identical dumps',
    );
    const check = await connect({ servers: pair.servers, subtree: '' });
    clients.push(check);
    let total = 0;
    for (const w of ws) {
      for (const [key, value] of w.acked) {
        if (check.getString(key) !== value && process.env.TWINSTAR_CHAOS_DEBUG) {
          console.log('LOST', key, JSON.stringify(w.ackInfo.get(key)));
          for (const n of [...pair.all, pair.nodes.primary, pair.nodes.backup])
            for (const l of n.logLines)
              if (
                /dual|fenced|promoted|settled|->|lost|detach|attach|synced|stalled|unavailable|voting/.test(
                  String(l.msg),
                )
              )
                console.log(
                  `DBG ${String(l.time).slice(11)} ${String(l.node)} ${String(l.msg)} ${JSON.stringify({ ...l, msg: undefined, time: undefined, node: undefined, role: undefined, level: undefined }).slice(0, 300)}`,
                );
        }
        expect(check.getString(key), `${key} after ${faults.join(', ')}`).to.equal(value);
      }
      total += w.acked.size;
    }
    expect(total).to.be.greaterThan(20 * 30);
    expect((await digest(primary.http)).keys).to.equal(check.entries('').size);
  });

  it('clients converge: 3 clients write and watch while the active is SIGKILLed and restarted 10 times', async () => {
    const random = prng(seed + 1);
    pair = new Pair(await pairPorts());
    await pair.healthy(15_000);
    const ws = await writers(['/c0/', '/c1/', '']);
    let failovers = 0;
    const events: string[] = [];
    for (const [i, w] of ws.entries())
      w.client.on('failover', (f) => {
        failovers++;
        events.push(`${Date.now()} client ${i} failover ${f.from} -> ${f.to}`);
      });
    for (let round = 0; round < 10; round++) {
      const { active } = await pair.healthy(30_000);
      events.push(`${Date.now()} kill ${active}`);
      await pair.nodes[active].kill();
      await progress(ws, 10 + Math.floor(random() * 20));
      await pair.restart(active).ready('PASSIVE', 15_000);
    }
    await pair.healthy(30_000);
    await finish(ws);
    expect(failovers, events.join('\n')).to.be.at.least(3 * 10);
    // Let every replica catch up with the final sequence, then compare with the server's dump.
    const check = await connect({ servers: pair.servers, subtree: '' });
    clients.push(check);
    const finalSeq = check.sequence;
    for (const w of ws) {
      await waitFor(
        () => w.client.sequence >= finalSeq || w.client.subtree !== '',
        10_000,
        'the full-tree replica to catch up',
      );
      const server = check.entries(w.client.subtree);
      await waitFor(() => w.client.entries().size === server.size, 10_000, `${w.prefix} replica size`).catch(
        (error: Error) => {
          const mine = w.client.entries();
          const missing = [...server.keys()].filter((k) => !mine.has(k));
          const extra = [...mine.keys()].filter((k) => !server.has(k));
          throw new Error(
            `${error.message}: client seq ${w.client.sequence}, server seq ${finalSeq}, missing ${missing.slice(0, 10)} (${missing.length}), extra ${extra.slice(0, 10)} (${extra.length})`,
          );
        },
      );
      expect(new Map(w.client.entries()), `${w.prefix} replica equals the server's subtree`).to.deep.equal(
        new Map(server),
      );
      for (const [key, value] of w.acked) {
        expect(
          w.client.getString(key),
          `${key} ${JSON.stringify(w.ackInfo.get(key))} events ${JSON.stringify(events)}`,
        ).to.equal(value);
      }
      expect(strictlyIncreasing(w.delivered), `${w.prefix} delivered sequences strictly increase`).to.equal(
        true,
      );
    }
  });

  it('a client started while only the backup is up, and one started during a failover, both converge', async () => {
    pair = new Pair(await pairPorts());
    await pair.healthy(15_000);
    const seedClient = await connect({ servers: pair.servers, subtree: '/late/' });
    clients.push(seedClient);
    for (let i = 0; i < 100; i++) await seedClient.set(`/late/${i}`, `v${i}`);
    await seedClient.close();
    // Only the backup is up: the first client's vote promotes it.
    await pair.nodes.primary.kill();
    const alone = await connect({ servers: pair.servers, subtree: '/late/', connectTimeoutMs: 15_000 });
    clients.push(alone);
    expect(alone.server).to.equal(pair.servers[1]);
    expect(alone.entries().size).to.equal(100);
    await pair.restart('primary').ready('PASSIVE', 15_000);
    await pair.healthy(15_000);
    // A client that starts while the active has just died.
    await pair.nodes.backup.kill();
    const during = connect({ servers: pair.servers, subtree: '/late/', connectTimeoutMs: 15_000 });
    const w = await within(alone.set('/late/after', 'x'), 15_000, 'a write across the failover');
    const joined = await during;
    clients.push(joined);
    await waitFor(() => joined.getString('/late/after') === 'x', 10_000, 'the late client to see the write');
    expect(joined.entries().size).to.equal(101);
    expect(w).to.be.greaterThan(100);
  });
});
