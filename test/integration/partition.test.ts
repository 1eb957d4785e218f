/**
 * Promises 2 and 3 against a real cut: the two server processes stop hearing each other (iptables
 * drops the peer link on loopback) while clients still reach both. Binary Star says the passive
 * may take over only when a client votes for it, and a client votes only when the active has gone
 * silent *for that client*. Here the active is alive and serving, so a client that merely connects
 * (or watches, or writes) must never promote the passive: no second active, no lost write.
 *
 * The nodes' /status is polled every 50 ms all through each episode; at no poll may two nodes be
 * ACTIVE. Needs root (iptables on `lo`); every rule is removed in a finally and an after-hook.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { connect, type Client } from '../../src/index.js';
import { encodeRequestId, Native } from '../../src/wire/index.js';
import {
  BIN,
  metric,
  pairOptions,
  pairPorts,
  ServerProcess,
  waitFor,
  within,
  type NodeStatus,
  type PairPorts,
  requireTool,
} from '../helpers/index.js';
import {
  IPTABLES,
  cutPorts,
  drop,
  healAll,
  PairMonitor,
  rulesInPlace,
  Violations,
} from '../helpers/faults.js';

/** The cut lasts this long past the moment both sides have declared each other dead. */
const CUT_HOLD_MS = 1000;
const FAILOVER_MS = 500; // the default; the pair is started with it explicitly

describe('peer link cut while clients reach both nodes (real processes, iptables)', function () {
  this.timeout(120_000);
  let ports: PairPorts;
  let procs: ServerProcess[] = [];
  const clients: Client[] = [];
  // Stopped in afterEach as well: a test that fails mid-episode must not leave one polling (its
  // timer would keep mocha from exiting).
  const monitors: PairMonitor[] = [];

  before(function () {
    // Cutting the peer link needs root and iptables; CI (root, .ci/run installs iptables) fails
    // the suite if they are missing, a developer's machine skips it and says why.
    requireTool(this, IPTABLES, ['-w', '5', '-S', 'INPUT'], 'run as root with iptables installed');
  });

  beforeEach(async () => {
    ports = await pairPorts();
  });

  afterEach(async () => {
    healAll();
    await Promise.all(monitors.splice(0).map((m) => m.stop()));
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(procs.map((p) => p.kill()));
    procs = [];
  });

  after(() => healAll());

  async function startPair(): Promise<{ primary: ServerProcess; backup: ServerProcess }> {
    const opts = pairOptions(ports, { heartbeatMs: 100, failoverMs: FAILOVER_MS });
    const primary = new ServerProcess(opts.primary);
    const backup = new ServerProcess(opts.backup);
    procs.push(primary, backup);
    // Both at once: a backup that exits (a port taken) fails this at once, naming why.
    await Promise.all([primary.ready('ACTIVE'), backup.ready('PASSIVE')]);
    await waitFor(
      async () => {
        const s = await primary.status();
        return s.degraded === false && s.peer?.synced === true;
      },
      10_000,
      'the passive to sync and attach',
    );
    return { primary, backup };
  }

  function monitor(primary: ServerProcess, backup: ServerProcess): PairMonitor {
    const m = new PairMonitor([primary, backup]);
    monitors.push(m);
    return m;
  }

  const endpoint = (port: number) => `tcp://127.0.0.1:${port}`;
  const both = () => [endpoint(ports.primary.port), endpoint(ports.backup.port)];

  async function client(servers: string[], subtree: string): Promise<Client> {
    const c = await connect({ servers, subtree, connectTimeoutMs: 15_000, writeTimeoutMs: 30_000 });
    clients.push(c);
    return c;
  }

  /** `twinstar set KEY VALUE --servers ...`: exit code and stdout. */
  async function cliSet(
    key: string,
    value: string,
    servers: string[],
  ): Promise<{ code: number; out: string }> {
    const child = spawn(
      process.execPath,
      [BIN, 'set', key, value, '--servers', servers.join(','), '--timeout', '10000'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.resume();
    const [code] = (await within(once(child, 'exit'), 20_000, 'twinstar set')) as [number];
    return { code, out: out.trim() };
  }

  /** Waits until `node` has heard nothing from its peer for longer than the failover timeout. */
  async function peerDeadFor(node: ServerProcess): Promise<void> {
    await waitFor(
      async () => (await node.status()).peer!.lastHeardMs > FAILOVER_MS,
      10_000,
      `${node.options.role} to miss its peer for a failover timeout`,
    );
  }

  /**
   * Watch-only clients (both servers listed) come and go for the cut's hold time, one after the
   * other, each staying connected for up to 100 ms. Each connect is another chance for a client that
   * treats connecting as a vote to promote the passive (whether one connect reaches the passive
   * before the active answers is a race). Returns a server other than the primary that any of
   * them synced from, if one did.
   */
  async function readersDuringCut(): Promise<string | undefined> {
    const until = Date.now() + CUT_HOLD_MS;
    let elsewhere: string | undefined;
    for (let i = 0; i < 10 && Date.now() < until; i++) {
      const reader = await client(both(), '/r/');
      if (reader.server !== endpoint(ports.primary.port)) elsewhere = reader.server;
      await hold(Math.min(100, Math.max(0, until - Date.now())));
      await reader.close();
    }
    return elsewhere;
  }

  /**
   * The control for "the passive was never promoted": client traffic does reach it during the
   * cut. A TPING (never a vote) to its client port is answered with its state.
   */
  async function passiveAnswersClients(): Promise<string> {
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(endpoint(ports.backup.port));
    try {
      await dealer.send([Buffer.from(Native.PING), encodeRequestId(1)]);
      const [tag, , state] = await within(dealer.receive(), 5000, 'the passive to answer a TPING');
      expect(tag!.toString()).to.equal(Native.PONG);
      return state!.toString();
    } finally {
      dealer.close();
    }
  }

  /** A bounded hold standing for the fault's duration (not a wait for an event). */
  const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /** The node that is ACTIVE now (the healed pair has exactly one). */
  async function finalActive(primary: ServerProcess, backup: ServerProcess): Promise<ServerProcess> {
    return (await primary.status()).state === 'ACTIVE' ? primary : backup;
  }

  /** Promise 3 over the whole episode: one active at every poll, the passive never promoted. */
  function checkPair(
    v: Violations,
    monitor: PairMonitor,
    epochBefore: number,
    backupNow: NodeStatus,
    backupPromotions: number,
  ): void {
    const dual = monitor.dualActive();
    v.check(dual === undefined, `two nodes ACTIVE at ${dual}`);
    const seen = monitor.seen(1);
    v.check(seen.answered > 10, `the backup answered only ${seen.answered} polls`);
    v.check(
      !seen.states.has('ACTIVE'),
      `the passive was ACTIVE during the episode (states seen: ${[...seen.states].join(',')})`,
    );
    const epochs = [...monitor.seen(0).epochs, ...seen.epochs, backupNow.epoch];
    v.check(
      Math.max(...epochs) === epochBefore,
      `the pair's epoch went from ${epochBefore} to ${Math.max(...epochs)} (the backup is now ${backupNow.state})`,
    );
    v.check(backupPromotions === 0, `the backup was promoted ${backupPromotions} time(s)`);
  }

  async function healthyAgain(primary: ServerProcess, backup: ServerProcess): Promise<void> {
    await waitFor(
      async () => {
        const [p, b] = await Promise.all([primary.status(), backup.status()]);
        const active = [p, b].filter((s) => s.state === 'ACTIVE');
        const theActive = active[0];
        return active.length === 1 && theActive!.degraded === false && theActive!.peer?.synced === true;
      },
      20_000,
      'the healed pair to have one active with its passive attached',
    );
  }

  it('promises 2 and 3: a watch-only client connecting during a two-way cut never promotes the passive; a write through the primary survives', async () => {
    const { primary, backup } = await startPair();
    const epochBefore = (await primary.status()).epoch;
    const pairMonitor = monitor(primary, backup);
    let during: { code: number; out: string };
    let watcherServer: string | undefined;
    try {
      cutPorts(ports.primary.heartbeat, ports.backup.heartbeat);
      expect(rulesInPlace()).to.equal(4);
      await Promise.all([peerDeadFor(primary), peerDeadFor(backup)]);
      expect(await passiveAnswersClients()).to.equal('PASSIVE', 'clients reach the passive during the cut');
      const watcher = await client(both(), '/r/');
      watcherServer = watcher.server;
      during = await cliSet('/r/during-cut', 'x', [endpoint(ports.primary.port)]);
      expect(during.code).to.equal(0, 'the write through the primary was acknowledged');
      expect(Number(during.out)).to.be.greaterThan(0);
      watcherServer = (await readersDuringCut()) ?? watcherServer;
    } finally {
      healAll();
    }
    await healthyAgain(primary, backup);
    await hold(500); // keep polling a little after healing: a late dual active would show here
    await pairMonitor.stop();
    const v = new Violations();
    checkPair(
      v,
      pairMonitor,
      epochBefore,
      await backup.status(),
      await metric(backup.http, 'twinstar_promotions_total'),
    );
    v.check((await primary.status()).state === 'ACTIVE', 'the primary is not the final active');
    const final = await finalActive(primary, backup);
    const check = await client([endpoint(final.options.port)], '/r/');
    v.check(
      check.getString('/r/during-cut') === 'x',
      `the acknowledged write /r/during-cut (seq ${during!.out}) is ${JSON.stringify(check.getString('/r/during-cut'))} on the final active (${final.options.role})`,
    );
    v.check(
      watcherServer === endpoint(ports.primary.port),
      `the watcher synced from ${watcherServer}, not the active`,
    );
    v.assertNone();
  });

  it('promises 2 and 3: four writers through a two-way cut and a connecting client lose no acknowledged write and reuse no sequence', async () => {
    const { primary, backup } = await startPair();
    const epochBefore = (await primary.status()).epoch;
    const writers = await Promise.all([0, 1, 2, 3].map((i) => client(both(), `/load/${i}/`)));
    // The last acknowledged value of each key, and each writer's acknowledged sequences.
    const acked = new Map<string, { value: string; seq: number }>();
    const ackSeqs: number[][] = [[], [], [], []];
    const ackCount = () => ackSeqs.reduce((n, seqs) => n + seqs.length, 0);
    let stop = false;
    // Each writer writes until the episode is over (a writer that ran out of writes first would
    // starve the "after healing" wait); its keys cycle, so the check below stays small.
    const KEYS_PER_WRITER = 2000;
    async function writeLoop(w: number): Promise<void> {
      for (let i = 0; !stop; i++) {
        const key = `/load/${w}/k${i % KEYS_PER_WRITER}`;
        const value = `v${w}.${i}`;
        const seq = await writers[w]!.set(key, value);
        acked.set(key, { value, seq });
        ackSeqs[w]!.push(seq);
      }
    }
    // A watcher of everything the writers do: the sequences it sees live must only go up.
    const watcher = await client(both(), '/load/');
    const live: number[] = [];
    const watcherSequences: number[] = [];
    watcher.on('update', (u) => {
      if (!u.resync) live.push(u.seq);
    });
    const sampler = setInterval(() => watcherSequences.push(watcher.sequence), 20);
    const pairMonitor = monitor(primary, backup);
    let readerElsewhere: string | undefined;
    const loops = [0, 1, 2, 3].map((w) => writeLoop(w));
    try {
      await waitFor(() => ackCount() >= 200, 20_000, 'writes before the cut');
      cutPorts(ports.primary.heartbeat, ports.backup.heartbeat);
      await Promise.all([peerDeadFor(primary), peerDeadFor(backup)]);
      expect(await passiveAnswersClients()).to.equal('PASSIVE', 'clients reach the passive during the cut');
      const ackedAtCut = ackCount();
      readerElsewhere = await readersDuringCut();
      await waitFor(() => ackCount() > ackedAtCut + 50, 20_000, 'writes acknowledged during the cut');
    } finally {
      healAll();
    }
    try {
      await healthyAgain(primary, backup);
      const healedAt = ackCount();
      await waitFor(() => ackCount() > healedAt + 50, 20_000, 'writes acknowledged after healing');
    } finally {
      stop = true;
      await within(Promise.all(loops), 60_000, 'the writers to finish');
      clearInterval(sampler);
    }
    await pairMonitor.stop();
    const v = new Violations();
    checkPair(
      v,
      pairMonitor,
      epochBefore,
      await backup.status(),
      await metric(backup.http, 'twinstar_promotions_total'),
    );
    v.check(readerElsewhere === undefined, `a reader synced from ${readerElsewhere}, not the active`);
    // No sequence was handed out twice, and each writer's acknowledgements only went up.
    const all = ackSeqs.flat();
    v.check(
      new Set(all).size === all.length,
      `${all.length - new Set(all).size} sequences acknowledged twice`,
    );
    ackSeqs.forEach((seqs, w) => {
      const back = seqs.findIndex((s, i) => i > 0 && s <= seqs[i - 1]!);
      v.check(back < 0, `writer ${w}: ack ${back} has sequence ${seqs[back]} after ${seqs[back - 1]}`);
    });
    const liveBack = live.findIndex((s, i) => i > 0 && s <= live[i - 1]!);
    v.check(liveBack < 0, `the watcher saw live sequence ${live[liveBack]} after ${live[liveBack - 1]}`);
    const sampleBack = watcherSequences.findIndex((s, i) => i > 0 && s < watcherSequences[i - 1]!);
    v.check(
      sampleBack < 0,
      `the watcher's replica went back from sequence ${watcherSequences[sampleBack - 1]} to ${watcherSequences[sampleBack]}`,
    );
    // Every acknowledged write is on the final active.
    const final = await finalActive(primary, backup);
    const check = await client([endpoint(final.options.port)], '/load/');
    const lost = [...acked].filter(([key, { value }]) => check.getString(key) !== value);
    v.check(
      lost.length === 0,
      `${lost.length} of ${acked.size} acknowledged writes lost on the final active (${final.options.role}), e.g. ${JSON.stringify(lost.slice(0, 3))}`,
    );
    v.assertNone();
  });

  it('promise 3: a one-way cut (the passive no longer hears the active) and a connecting client: no failover', async () => {
    const { primary, backup } = await startPair();
    const epochBefore = (await primary.status()).epoch;
    const pairMonitor = monitor(primary, backup);
    let readerServer: string | undefined;
    try {
      // The active's PUB is bound on its heartbeat port: dropping packets *from* that port stops
      // everything the active sends the passive; the passive's heartbeats (its own PUB) flow on.
      drop([{ port: ports.primary.heartbeat, dir: 'sport' }]);
      await peerDeadFor(backup);
      expect(await passiveAnswersClients()).to.equal('PASSIVE', 'clients reach the passive during the cut');
      expect((await primary.status()).peer!.lastHeardMs).to.be.below(
        FAILOVER_MS,
        'the active still hears the passive',
      );
      readerServer = (await readersDuringCut()) ?? endpoint(ports.primary.port);
    } finally {
      healAll();
    }
    await healthyAgain(primary, backup);
    await pairMonitor.stop();
    const v = new Violations();
    checkPair(
      v,
      pairMonitor,
      epochBefore,
      await backup.status(),
      await metric(backup.http, 'twinstar_promotions_total'),
    );
    v.check(
      readerServer === endpoint(ports.primary.port),
      `the reader synced from ${readerServer}, not the active`,
    );
    v.assertNone();
  });
});
