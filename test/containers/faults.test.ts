/**
 * Faults injected through Docker into a twinstar pair running as two `twinstar:local` containers,
 * with the failover-aware client on the host reaching them through published ports:
 *
 *   1. `docker kill` of the active primary under continuous acknowledged writes: the client fails
 *      over to the backup and no acknowledged write is lost; the primary, started again, rejoins as
 *      PASSIVE and syncs. The client-visible failover time is measured and printed.
 *   2. `docker pause` of the active past the failover timeout, then `unpause`: exactly one ACTIVE
 *      afterwards, the states converge, the client keeps working.
 *   3. A partition of the link between the servers only (`docker network disconnect`), while the
 *      client still reaches the primary: the backup must not promote (no client votes for it), the
 *      primary acknowledges every write (degraded), never two ACTIVE; healed, the pair is whole.
 *
 * Each test starts its own pair on its own networks:
 *
 *   - `client` (testcontainers `Network`, an ordinary bridge): the published client and HTTP ports.
 *     Docker publishes no ports for a container on an `internal` network only, so this one is not.
 *   - `peer` (`internal`, created with the docker CLI because testcontainers' `Network` has no
 *     internal option): peer heartbeats and replication (both travel on the heartbeat sockets),
 *     between the aliases `primary-peer` and `backup-peer`, which also have fixed addresses there.
 *     Cutting this network partitions the servers from each other without touching the clients'
 *     paths.
 *
 * How a node names its peer matters (TWINSTAR_PEER_HEARTBEAT): by DNS alias as docker-compose.ha.yml
 * does, or by address; the kill test runs both ways. Once a killed peer's name no longer resolves
 * (Docker's DNS takes 10 s to fail it on this offline host), libzmq resolves it again at every
 * reconnect, synchronously in its I/O thread. That once froze the surviving node's client sockets
 * for 10 s at a time; the peer link now has a ZeroMQ context of its own, and the alias test guards it.
 *
 * Host ports are fixed per test but picked at random among free ones: a node's snapshot port P,
 * publisher P+1, collector P+2 and update stream P+3 must be consecutive on the host as well (the
 * client derives P+1, P+2 and P+3 from P), and fixed bindings survive `docker start` of a killed
 * container unchanged. The node's HTTP port is P+4 on the host.
 *
 * Needs a Docker engine and the images (scripts/docker/start-engine.sh, build-images.sh).
 * Every wait is bounded; containers and networks are removed after each test, also on failure.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { GenericContainer, Network, Wait, type StartedNetwork } from 'testcontainers';
import { ClosedError, connect, type Client, type FailoverInfo } from '../../src/index.js';
import { createLogger } from '../../src/log/index.js';
import {
  configureTestcontainers,
  containerIp,
  containerLogs,
  docker,
  freeHostPortRange,
  httpJson,
  IMAGES,
  labelledDockerResources,
  poll,
  removeDockerResources,
  requireDocker,
} from './helpers.js';

configureTestcontainers();

/** Both nodes' timing (must match); the client's silence timeout follows the failover timeout. */
const HEARTBEAT_MS = 100;
/** TWINSTAR_TEST_FAILOVER_MS measures other timeouts (at least twice the heartbeat). */
const FAILOVER_MS = Number(process.env.TWINSTAR_TEST_FAILOVER_MS ?? 1000);
/** Ports inside every container (the primary's defaults; each container has its own address). */
const INNER = { port: 5556, heartbeat: 5003, http: 9556 } as const;
/** Label on every container and network this suite creates (value: the test's run id). */
const LABEL = 'twinstar.test.faults';

interface NodeStatus {
  name: string;
  role: string;
  state: 'PRIMARY' | 'BACKUP' | 'ACTIVE' | 'PASSIVE';
  epoch: number;
  sequence: number;
  keys: number;
  degraded: boolean;
  peer: { state: string; epoch: number; synced: boolean; up: boolean } | null;
}

interface Digest {
  sequence: number;
  keys: number;
  digest: string;
}

type Role = 'primary' | 'backup';

/** One node of the pair: its container and what the host sees of it. */
class PairNode {
  id = '';
  constructor(
    readonly role: Role,
    readonly name: string,
    /** host port of the snapshot socket (P); P+1 to P+3 follow; the HTTP port is P+4 */
    readonly hostPort: number,
  ) {}

  get endpoint(): string {
    return `tcp://127.0.0.1:${this.hostPort}`;
  }

  get http(): string {
    return `http://127.0.0.1:${this.hostPort + 4}`;
  }

  status(): Promise<NodeStatus> {
    return httpJson<NodeStatus>(`${this.http}/status`, 2000);
  }

  /** The status, or undefined when the node does not answer (killed, paused, starting). */
  tryStatus(timeoutMs = 1000): Promise<NodeStatus | undefined> {
    return httpJson<NodeStatus>(`${this.http}/status`, timeoutMs).catch(() => undefined);
  }

  digest(): Promise<Digest> {
    return httpJson<Digest>(`${this.http}/digest`, 5000);
  }
}

/** The server image with extra networks joined (aliases, fixed address) between creation and start. */
class TwinstarContainer extends GenericContainer {
  private readonly extraNetworks: { network: string; aliases: string[]; ip: string }[] = [];

  withExtraNetwork(network: string, ip: string, ...aliases: string[]): this {
    this.extraNetworks.push({ network, aliases, ip });
    return this;
  }

  protected override async containerCreated(containerId: string): Promise<void> {
    for (const { network, aliases, ip } of this.extraNetworks) {
      await docker([
        'network',
        'connect',
        '--ip',
        ip,
        ...aliases.flatMap((a) => ['--alias', a]),
        network,
        containerId,
      ]);
    }
  }
}

/**
 * How each node names its peer: by the Docker DNS alias (`backup-peer:5003`), as
 * docker-compose.ha.yml does, or by its fixed address on the peer network (no DNS involved).
 */
type PeerAddressing = 'name' | 'ip';

/** Everything one test creates, removed again by `cleanup()`. */
class PairFixture {
  readonly runId = `${process.pid}-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
  clientNetwork: StartedNetwork | undefined;
  peerNetwork = '';
  /** each node's fixed address on the peer network */
  readonly peerIps: Record<Role, string> = { primary: '', backup: '' };
  primary!: PairNode;
  backup!: PairNode;
  private readonly containerNames: string[] = [];
  private readonly networkNames: string[] = [];
  private readonly clients: Client[] = [];
  /** background loops (writers, status monitors) that must end with the test, also on failure */
  private readonly loops: { stop(): Promise<void> }[] = [];

  track<T extends { stop(): Promise<void> }>(loop: T): T {
    this.loops.push(loop);
    return loop;
  }

  /** Creates both networks and starts both nodes; resolves once both answer /healthz. */
  async start(peers: PeerAddressing): Promise<{ primary: PairNode; backup: PairNode }> {
    this.clientNetwork = await new Network().start();
    this.networkNames.push(this.clientNetwork.getName());
    await this.createPeerNetwork();
    [this.primary, this.backup] = await Promise.all([
      this.startNode('primary', peers),
      this.startNode('backup', peers),
    ]);
    return { primary: this.primary, backup: this.backup };
  }

  /**
   * The internal peer network, with a subnet of our choosing so that each node gets a fixed
   * address (kept across `docker start` and a disconnect/connect, as a real partition keeps it).
   * A random 10.x.y.0/24; another one if it overlaps a network that exists already.
   */
  private async createPeerNetwork(): Promise<void> {
    const name = `twinstar-faults-peer-${this.runId}`;
    for (let attempt = 1; ; attempt++) {
      const prefix = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
      const result = await docker(
        [
          'network',
          'create',
          '--internal',
          '--subnet',
          `${prefix}.0/24`,
          '--label',
          `${LABEL}=${this.runId}`,
          name,
        ],
        { allowFailure: true },
      );
      if (result.code === 0) {
        this.peerNetwork = name;
        this.networkNames.push(name);
        this.peerIps.primary = `${prefix}.10`;
        this.peerIps.backup = `${prefix}.11`;
        return;
      }
      if (attempt >= 10 || !/overlap/i.test(result.stderr)) {
        throw new Error(`docker network create ${name}: ${result.stderr.trim()}`);
      }
    }
  }

  /** Starts one node on free host ports; picks other ports if these were taken meanwhile. */
  private async startNode(role: Role, peers: PeerAddressing): Promise<PairNode> {
    const name = `twinstar-faults-${this.runId}-${role}`;
    this.containerNames.push(name);
    const other: Role = role === 'primary' ? 'backup' : 'primary';
    const peer = peers === 'name' ? `${other}-peer` : this.peerIps[other];
    for (let attempt = 1; ; attempt++) {
      const node = new PairNode(role, name, await freeHostPortRange(5));
      const container = new TwinstarContainer(IMAGES.app)
        .withName(name)
        .withLabels({ [LABEL]: this.runId })
        .withNetwork(this.clientNetwork!)
        .withExtraNetwork(this.peerNetwork, this.peerIps[role], `${role}-peer`)
        .withEnvironment({
          TWINSTAR_ROLE: role,
          TWINSTAR_NAME: role,
          TWINSTAR_PORT: String(INNER.port),
          TWINSTAR_HEARTBEAT_PORT: String(INNER.heartbeat),
          TWINSTAR_HTTP_PORT: String(INNER.http),
          TWINSTAR_PEER: `${peer}:${INNER.port}`,
          TWINSTAR_PEER_HEARTBEAT: `${peer}:${INNER.heartbeat}`,
          TWINSTAR_HEARTBEAT_MS: String(HEARTBEAT_MS),
          TWINSTAR_FAILOVER_MS: String(FAILOVER_MS),
          TWINSTAR_LOG_LEVEL: 'info',
        })
        .withExposedPorts(
          { container: INNER.port, host: node.hostPort },
          { container: INNER.port + 1, host: node.hostPort + 1 },
          { container: INNER.port + 2, host: node.hostPort + 2 },
          { container: INNER.port + 3, host: node.hostPort + 3 },
          { container: INNER.http, host: node.hostPort + 4 },
        )
        .withWaitStrategy(Wait.forHttp('/healthz', INNER.http).forStatusCode(200))
        .withStartupTimeout(60_000);
      try {
        node.id = (await container.start()).getId();
        return node;
      } catch (error) {
        // A port taken between our check and Docker's bind: remove the container and try again.
        await removeDockerResources([name], []);
        if (attempt >= 3 || !/port is already allocated|address already in use/i.test(String(error)))
          throw error;
      }
    }
  }

  /** A client on the host, closed by cleanup(). */
  async client(subtree: string, servers = [this.primary.endpoint, this.backup.endpoint]): Promise<Client> {
    const client = await connect({
      servers,
      subtree,
      serverTimeoutMs: FAILOVER_MS,
      connectTimeoutMs: 20_000,
      writeTimeoutMs: 20_000,
      // TWINSTAR_TEST_CLIENT_LOG=warn (or debug) shows the client's failovers on stderr.
      ...(process.env.TWINSTAR_TEST_CLIENT_LOG
        ? {
            log: createLogger({
              node: 'client',
              role: 'client',
              level: process.env.TWINSTAR_TEST_CLIENT_LOG as 'debug',
            }),
          }
        : {}),
    });
    this.clients.push(client);
    return client;
  }

  async logs(): Promise<string> {
    const parts = await Promise.all(
      this.containerNames.map(async (name) => `--- ${name} ---\n${await containerLogs(name, 80)}`),
    );
    return parts.join('\n');
  }

  /** Closes the clients and removes the containers and networks; fails if any remains. */
  async cleanup(): Promise<void> {
    // Stop the loops first (closing the clients fails the writes still waiting), then the rest.
    const loopsDone = Promise.all(this.loops.splice(0).map((loop) => loop.stop()));
    await Promise.all(this.clients.splice(0).map((c) => c.close()));
    await loopsDone;
    const errors = await removeDockerResources(this.containerNames, this.networkNames);
    const left = await labelledDockerResources(`${LABEL}=${this.runId}`);
    const clientNetworkLeft = this.clientNetwork
      ? (
          await docker(['network', 'ls', '-q', '--filter', `name=^${this.clientNetwork.getName()}$`])
        ).stdout.trim()
      : '';
    if (errors.length > 0 || left.containers.length + left.networks.length > 0 || clientNetworkLeft) {
      throw new Error(
        `cleanup left Docker resources: ${JSON.stringify({ errors, left, clientNetworkLeft })}`,
      );
    }
  }
}

/** Resolves once `active` is ACTIVE with an attached passive and `passive` is PASSIVE and synced. */
async function waitHealthyPair(active: PairNode, passive: PairNode, timeoutMs: number): Promise<void> {
  let last: [NodeStatus | undefined, NodeStatus | undefined] = [undefined, undefined];
  await poll(
    async () => {
      last = await Promise.all([active.tryStatus(), passive.tryStatus()]);
      const [a, p] = last;
      return a?.state === 'ACTIVE' && !a.degraded && p?.state === 'PASSIVE' && p.peer?.state === 'ACTIVE';
    },
    {
      timeoutMs,
      intervalMs: 100,
      what: `${active.role} ACTIVE (not degraded) and ${passive.role} PASSIVE`,
      describe: () => JSON.stringify(last),
    },
  );
}

/** Resolves with the digest once both nodes report the same /digest. */
async function waitDigestsEqual(a: PairNode, b: PairNode, timeoutMs: number): Promise<Digest> {
  let last: Digest[] = [];
  return poll(
    async () => {
      last = await Promise.all([a.digest(), b.digest()]);
      return last[0]!.digest === last[1]!.digest && last[0]!.sequence === last[1]!.sequence
        ? last[0]
        : undefined;
    },
    { timeoutMs, intervalMs: 200, what: 'equal /digest on both nodes', describe: () => JSON.stringify(last) },
  );
}

interface Ack {
  value: string;
  seq: number;
  /** when the client's set() resolved */
  at: number;
  /** the server in use when it resolved */
  server: string | undefined;
}

/**
 * Continuous acknowledged writes: `lanes` loops, each issuing one set() after the other, with a
 * little pacing so that the host's two CPUs are not all spent on the writer. Bounded in count and
 * time; stop() waits for the writes in flight.
 */
class Writer {
  readonly acked = new Map<string, Ack>();
  readonly failures: string[] = [];
  private stopping = false;
  private issued = 0;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly client: Client,
    private readonly prefix: string,
    private readonly lanes = 4,
    private readonly maxWrites = 60_000,
    private readonly maxMs = 120_000,
  ) {}

  start(): this {
    const deadline = Date.now() + this.maxMs;
    for (let lane = 0; lane < this.lanes; lane++) this.loops.push(this.loop(lane, deadline));
    return this;
  }

  private async loop(lane: number, deadline: number): Promise<void> {
    for (let n = 0; !this.stopping && Date.now() < deadline && this.issued < this.maxWrites; n++) {
      this.issued++;
      const key = `${this.prefix}w${lane}/${n}`;
      const value = `${lane}:${n}:${randomBytes(6).toString('hex')}`;
      try {
        const seq = await this.client.set(key, value);
        this.acked.set(key, { value, seq, at: Date.now(), server: this.client.server });
      } catch (error) {
        if (error instanceof ClosedError) return;
        this.failures.push(`${key}: ${String(error)}`);
      }
      await delay(2); // pacing, not synchronization
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  /** Acknowledgements that came from `server` after `after`, oldest first. */
  ackedOn(server: string, after: number): Ack[] {
    return [...this.acked.values()]
      .filter((a) => a.server === server && a.at > after)
      .sort((x, y) => x.at - y.at);
  }
}

/** Keys whose acknowledged value a client's replica does not hold. */
function missingAcked(acked: Map<string, Ack>, entries: Map<string, Buffer>): string[] {
  const missing: string[] = [];
  for (const [key, ack] of acked) {
    const value = entries.get(key)?.toString();
    if (value !== ack.value)
      missing.push(`${key}: acknowledged ${ack.value} (seq ${ack.seq}), found ${value}`);
  }
  return missing;
}

interface Sample {
  at: number;
  primary: string | undefined;
  backup: string | undefined;
  primaryDegraded: boolean | undefined;
}

/** Polls both nodes' /status (concurrently) every `intervalMs` until stopped; bounded in time. */
class StatusMonitor {
  readonly samples: Sample[] = [];
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly primary: PairNode,
    private readonly backup: PairNode,
    private readonly intervalMs = 100,
    private readonly maxMs = 180_000,
  ) {}

  start(): this {
    const deadline = Date.now() + this.maxMs;
    this.loop = (async () => {
      while (!this.stopping && Date.now() < deadline) {
        const [p, b] = await Promise.all([this.primary.tryStatus(), this.backup.tryStatus()]);
        this.samples.push({
          at: Date.now(),
          primary: p?.state,
          backup: b?.state,
          primaryDegraded: p?.degraded,
        });
        await delay(this.intervalMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  between(from: number, to: number): Sample[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to);
  }

  dualActive(): Sample[] {
    return this.samples.filter((s) => s.primary === 'ACTIVE' && s.backup === 'ACTIVE');
  }
}

/**
 * Test 1: `docker kill` of the active primary under continuous acknowledged writes. Resolves with
 * the client-visible failover time (kill issued to the first write acknowledged by the backup).
 */
async function killScenario(fixture: PairFixture, peers: PeerAddressing): Promise<number> {
  const { primary, backup } = await fixture.start(peers);
  await waitHealthyPair(primary, backup, 60_000);
  const client = await fixture.client('/kill/');
  expect(client.server).to.equal(primary.endpoint);
  const failovers: { at: number; info: FailoverInfo }[] = [];
  client.on('failover', (info) => failovers.push({ at: Date.now(), info }));

  const writer = fixture.track(new Writer(client, '/kill/')).start();
  await poll(() => writer.acked.size >= 300, {
    timeoutMs: 30_000,
    what: '300 acknowledged writes before the kill',
  });
  const beforeKill = writer.acked.size;

  const killAt = Date.now();
  await docker(['kill', primary.id]);
  const killReturned = Date.now();
  // The writes go on: they are acknowledged by the backup once the client has failed over to it.
  await poll(() => writer.ackedOn(backup.endpoint, killAt).length >= 300, {
    timeoutMs: 60_000,
    what: '300 writes acknowledged by the backup after the kill',
    describe: () =>
      `${writer.acked.size} acked, ${writer.failures.length} failed, client on ${client.server}`,
  });
  await writer.stop();
  expect(writer.failures, 'writes that failed instead of being acknowledged').to.deep.equal([]);

  const firstOnBackup = writer.ackedOn(backup.endpoint, killAt)[0]!;
  const lastOnPrimary = Math.max(
    ...[...writer.acked.values()].filter((a) => a.server === primary.endpoint).map((a) => a.at),
  );
  console.log(
    `      failover after docker kill (peers by ${peers}): first acknowledged write on the backup ${firstOnBackup.at - killAt} ms after ` +
      `the kill was issued (docker kill took ${killReturned - killAt} ms; 'failover' event after ` +
      `${failovers[0] ? failovers[0].at - killAt : NaN} ms; last ack from the primary ${lastOnPrimary - killAt} ms; ` +
      `${beforeKill} writes acknowledged before, ${writer.acked.size} in all)`,
  );
  expect(failovers.map((f) => f.info.to)).to.deep.equal([backup.endpoint]);
  expect(client.server).to.equal(backup.endpoint);
  expect((await backup.status()).state).to.equal('ACTIVE');

  // Every acknowledged write is on the backup: a fresh client loads its snapshot from it alone.
  const fresh = await fixture.client('/kill/', [backup.endpoint]);
  expect(missingAcked(writer.acked, fresh.entries())).to.deep.equal([]);
  // The writing client's own replica holds them too (updates may trail their acknowledgements).
  await poll(() => missingAcked(writer.acked, client.entries()).length === 0, {
    timeoutMs: 10_000,
    what: "the writing client's replica to hold every acknowledged write",
    describe: () => missingAcked(writer.acked, client.entries()).slice(0, 5).join('; '),
  });

  // The primary comes back (same container: same name, aliases and host ports) and rejoins as
  // PASSIVE behind the backup, which stays ACTIVE; it syncs the whole map.
  await docker(['start', primary.id]);
  await waitHealthyPair(backup, primary, 60_000);
  const synced = await waitDigestsEqual(backup, primary, 30_000);
  expect(synced.keys).to.be.at.least(writer.acked.size);
  expect((await primary.status()).role).to.equal('primary');

  // Replication goes on to the rejoined primary.
  for (let i = 0; i < 50; i++) await client.set(`/kill/after/${i}`, `a${i}`);
  expect(client.degraded).to.equal(false);
  await waitDigestsEqual(backup, primary, 30_000);
  expect((await primary.status()).state).to.equal('PASSIVE');
  expect((await backup.status()).state).to.equal('ACTIVE');
  return firstOnBackup.at - killAt;
}

/**
 * Removes what an earlier run of this suite left behind because its process died before its
 * cleanup ran (the run id on the label starts with that process's pid). Resources of runs whose
 * process still exists are left alone: they may belong to a run going on right now.
 */
async function removeStaleResources(): Promise<void> {
  const list = async (args: string[], nameField: string) =>
    (
      await docker([
        ...args,
        '--filter',
        `label=${LABEL}`,
        '--format',
        `{{${nameField}}}\t{{.Label "${LABEL}"}}`,
      ])
    ).stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t') as [string, string]);
  const alive = (runId: string) => {
    try {
      process.kill(Number(runId.split('-')[0]), 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  const stale = (rows: [string, string][]) => rows.filter(([, runId]) => !alive(runId)).map(([name]) => name);
  const containers = stale(await list(['ps', '-a'], '.Names'));
  const networks = stale(await list(['network', 'ls'], '.Name'));
  if (containers.length + networks.length > 0) {
    console.log(`      removing leftovers of earlier runs: ${[...containers, ...networks].join(', ')}`);
    await removeDockerResources(containers, networks);
  }
}

describe('faults injected through Docker into a twinstar pair of containers', function () {
  this.timeout(300_000);
  let fixture: PairFixture;

  before(async function () {
    await requireDocker([IMAGES.app]);
    if (!(FAILOVER_MS >= 2 * HEARTBEAT_MS))
      throw new Error(`TWINSTAR_TEST_FAILOVER_MS must be >= ${2 * HEARTBEAT_MS}`);
    await removeStaleResources();
  });

  beforeEach(() => {
    fixture = new PairFixture();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(await fixture.logs());
    await fixture.cleanup();
  });

  it('docker kill of the active primary under acknowledged writes (peers addressed by IP): no acknowledged write is lost; the restarted primary rejoins as PASSIVE and syncs', async () => {
    await killScenario(fixture, 'ip');
  });

  it('docker kill of the active primary, peers addressed by DNS name as in docker-compose.ha.yml', async () => {
    await killScenario(fixture, 'name');
  });

  it('docker pause of the active past the failover timeout, then unpause: exactly one ACTIVE, states converge, the client keeps working', async () => {
    const { primary, backup } = await fixture.start('name');
    await waitHealthyPair(primary, backup, 60_000);
    const client = await fixture.client('/pause/');
    const failovers: FailoverInfo[] = [];
    client.on('failover', (info) => failovers.push(info));
    const writer = fixture.track(new Writer(client, '/pause/', 2)).start();
    await poll(() => writer.acked.size >= 100, {
      timeoutMs: 30_000,
      what: '100 acknowledged writes before the pause',
    });

    const pausedAt = Date.now();
    await docker(['pause', primary.id]);
    // Frozen well past the failover timeout (2 s, or two timeouts if longer): the client votes for
    // the backup, which takes over.
    await poll(
      async () =>
        Date.now() - pausedAt >= Math.max(2000, 2 * FAILOVER_MS) &&
        writer.ackedOn(backup.endpoint, pausedAt).length >= 50 &&
        (await backup.tryStatus())?.state === 'ACTIVE',
      {
        timeoutMs: 60_000,
        what: 'the client to fail over to the backup while the primary is paused',
        describe: () =>
          `client on ${client.server}, ${writer.acked.size} acked, ${writer.failures.length} failed`,
      },
    );
    const firstOnBackup = writer.ackedOn(backup.endpoint, pausedAt)[0]!;
    const monitor = fixture.track(new StatusMonitor(primary, backup, 50)).start();
    const unpausedAt = Date.now();
    await docker(['unpause', primary.id]);

    // The woken primary still believes it is ACTIVE until it hears the backup's higher epoch; then
    // it must demote. Exactly one ACTIVE, within a bounded time.
    let last: (NodeStatus | undefined)[] = [];
    await poll(
      async () => {
        last = await Promise.all([primary.tryStatus(), backup.tryStatus()]);
        const states = last.map((s) => s?.state);
        return (
          states.filter((s) => s === 'ACTIVE').length === 1 &&
          states.filter((s) => s === 'PASSIVE').length === 1
        );
      },
      {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: 'exactly one ACTIVE after unpause',
        describe: () => JSON.stringify(last),
      },
    );
    const resolvedAt = Date.now();
    await writer.stop();
    await monitor.stop();
    const dual = monitor.dualActive();
    console.log(
      `      pause: first write acknowledged by the backup ${firstOnBackup.at - pausedAt} ms after docker pause; ` +
        `paused ${unpausedAt - pausedAt} ms; one ACTIVE ${resolvedAt - unpausedAt} ms after unpause ` +
        `(dual ACTIVE seen in ${dual.length} of ${monitor.samples.length} samples)`,
    );
    expect(last[1]?.state, 'the backup, promoted at a higher epoch, stays ACTIVE').to.equal('ACTIVE');
    expect(last[0]?.state).to.equal('PASSIVE');
    expect(writer.failures, 'writes that failed instead of being acknowledged').to.deep.equal([]);
    expect(failovers.map((f) => f.to)).to.deep.equal([backup.endpoint]);

    // The states converge: the demoted primary resyncs from the backup.
    await waitHealthyPair(backup, primary, 30_000);
    await waitDigestsEqual(backup, primary, 30_000);
    const fresh = await fixture.client('/pause/');
    expect(fresh.server).to.equal(backup.endpoint);
    expect(missingAcked(writer.acked, fresh.entries())).to.deep.equal([]);

    // The client keeps working: acknowledged writes it can read back, replicated to the primary.
    for (let i = 0; i < 20; i++) expect(await client.set(`/pause/after/${i}`, `p${i}`)).to.be.greaterThan(0);
    await poll(() => client.getString('/pause/after/19') === 'p19', {
      timeoutMs: 10_000,
      what: 'the client to read its write',
    });
    expect(client.getString('/pause/after/0')).to.equal('p0');
    expect(client.server).to.equal(backup.endpoint);
    expect(client.degraded).to.equal(false);
    await waitDigestsEqual(backup, primary, 30_000);
    const final = await Promise.all([primary.status(), backup.status()]);
    expect(final.map((s) => s.state)).to.deep.equal(['PASSIVE', 'ACTIVE']);
  });

  it('a partition between the servers while the client reaches the primary: the backup never promotes, the primary acknowledges every write (degraded), then the pair heals', async () => {
    const { primary, backup } = await fixture.start('name');
    await waitHealthyPair(primary, backup, 60_000);
    const client = await fixture.client('/part/');
    const failovers: FailoverInfo[] = [];
    client.on('failover', (info) => failovers.push(info));
    for (let i = 0; i < 50; i++) await client.set(`/part/before/${i}`, `b${i}`);
    await waitDigestsEqual(primary, backup, 30_000);

    const monitor = fixture.track(new StatusMonitor(primary, backup, 50)).start();
    const ipBefore = await containerIp(backup.id, fixture.peerNetwork);
    const cutAt = Date.now();
    await docker(['network', 'disconnect', fixture.peerNetwork, backup.id]);

    // For more than three failover timeouts, the client keeps writing to the primary: every write
    // is acknowledged, by the primary, and nobody fails over.
    const windowMs = 3 * FAILOVER_MS + 1500;
    const acked = new Map<string, Ack>();
    for (let n = 0; Date.now() - cutAt < windowMs; n++) {
      const key = `/part/during/${n}`;
      const value = `d${n}`;
      const seq = await client.set(key, value);
      expect(client.server, `write ${n} acknowledged by`).to.equal(primary.endpoint);
      acked.set(key, { value, seq, at: Date.now(), server: client.server });
    }
    const windowEnd = Date.now();
    const during = await Promise.all([primary.status(), backup.status()]);
    expect(during[0].state).to.equal('ACTIVE');
    expect(during[0].degraded, 'the primary reports that it runs without its passive').to.equal(true);
    expect(during[1].state, 'the backup must not promote: no client voted for it').to.equal('PASSIVE');
    expect(client.degraded, 'the client was told its writes are acknowledged by one node only').to.equal(
      true,
    );
    expect(failovers).to.deep.equal([]);
    expect(acked.size).to.be.greaterThan(10);
    const window = monitor.between(cutAt, windowEnd);
    expect(window.length).to.be.greaterThan(20);
    // (A sample is undefined where /status did not answer within its time limit.)
    expect(window.filter((s) => s.backup !== undefined).length).to.be.greaterThan(window.length / 2);
    expect(
      window.filter((s) => s.backup !== undefined && s.backup !== 'PASSIVE'),
      'backup not PASSIVE',
    ).to.deep.equal([]);
    expect(
      window.filter((s) => s.primary !== undefined && s.primary !== 'ACTIVE'),
      'primary not ACTIVE',
    ).to.deep.equal([]);
    const degradedSince = window.find((s) => s.primaryDegraded)?.at;

    // Heal: the backup rejoins the peer network under the same alias.
    const healAt = Date.now();
    await docker([
      'network',
      'connect',
      '--ip',
      ipBefore,
      '--alias',
      'backup-peer',
      fixture.peerNetwork,
      backup.id,
    ]);
    const ipAfter = await containerIp(backup.id, fixture.peerNetwork);
    await waitHealthyPair(primary, backup, 60_000);
    const healedAt = Date.now();
    await waitDigestsEqual(primary, backup, 30_000);
    await monitor.stop();
    console.log(
      `      partition: primary degraded ${degradedSince === undefined ? 'n/a' : degradedSince - cutAt} ms after the cut; ` +
        `${acked.size} writes acknowledged by the primary in ${windowEnd - cutAt} ms; healed ` +
        `${healedAt - healAt} ms after reconnecting (backup peer address ${ipBefore} -> ${ipAfter})`,
    );
    expect(monitor.dualActive(), 'samples with two ACTIVE nodes').to.deep.equal([]);
    expect(monitor.samples.filter((s) => s.backup === 'ACTIVE')).to.deep.equal([]);

    // Whole again: writes are acknowledged by both nodes, and every one of them is on both.
    const seq = await client.set('/part/after', 'healed');
    expect(seq).to.be.greaterThan(0);
    expect(client.degraded).to.equal(false);
    const digest = await waitDigestsEqual(primary, backup, 30_000);
    expect(digest.keys).to.equal(50 + acked.size + 1);
    const fresh = await fixture.client('/part/');
    expect(fresh.server).to.equal(primary.endpoint);
    expect(missingAcked(acked, fresh.entries())).to.deep.equal([]);
    expect(fresh.getString('/part/after')).to.equal('healed');
  });
});
