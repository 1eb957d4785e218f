/**
 * docker-compose.ha.yml as an operator runs it: both nodes come up healthy, exactly one of them is
 * ACTIVE, Prometheus scrapes both, and `down -v` leaves nothing of the project behind.
 *
 * Needs a Docker engine and the images (scripts/docker/start-engine.sh, build-images.sh). The
 * compose file publishes fixed host ports on 127.0.0.1 (5556-5559, 5566-5569, 9556, 9566, 9090),
 * so this suite fails early, naming the port, if something else (`npm start`?) holds one.
 */
import { expect } from 'chai';
import { connect, type Client } from '../../src/index.js';
import {
  ComposeProject,
  containerHealth,
  httpJson,
  httpStatus,
  poll,
  requireComposeHost,
  uniqueProject,
  waitHealthy,
} from './helpers.js';

const NODES = {
  primary: { http: 'http://127.0.0.1:9556', clientPorts: [5556, 5557, 5558, 5559] },
  backup: { http: 'http://127.0.0.1:9566', clientPorts: [5566, 5567, 5568, 5569] },
} as const;
const PROMETHEUS = 'http://127.0.0.1:9090';
const PUBLISHED_PORTS = [...NODES.primary.clientPorts, 9556, ...NODES.backup.clientPorts, 9566, 9090];

interface PromVector {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe('docker-compose.ha.yml (primary, backup, Prometheus)', function () {
  this.timeout(300_000);
  // Published on loopback whatever the caller's environment says: tests reach only 127.0.0.1.
  const compose = new ComposeProject(uniqueProject('twinstarha'), undefined, {
    TWINSTAR_PUBLISH_HOST: '127.0.0.1',
  });
  const ids: Record<'primary' | 'backup' | 'prometheus', string> = {
    primary: '',
    backup: '',
    prometheus: '',
  };
  let started = false;

  before(async function () {
    await requireComposeHost(PUBLISHED_PORTS);
    started = true;
    await compose.up();
    for (const service of ['primary', 'backup', 'prometheus'] as const)
      ids[service] = await compose.containerId(service);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && started) {
      console.error(`--- docker-compose logs (project ${compose.project}) ---\n${await compose.logs(40)}`);
    }
  });

  after(async function () {
    if (started) await compose.down();
  });

  it('runs both nodes until their health checks pass', async () => {
    await waitHealthy([ids.primary, ids.backup], 90_000);
    expect(await containerHealth(ids.primary)).to.equal('healthy');
    expect(await containerHealth(ids.backup)).to.equal('healthy');
  });

  it('makes exactly one node ACTIVE: one /readyz answers 200, the other 503', async () => {
    const statuses = await poll(
      async () => {
        const s = {
          primary: await httpStatus(`${NODES.primary.http}/readyz`),
          backup: await httpStatus(`${NODES.backup.http}/readyz`),
        };
        const values = Object.values(s);
        const oneActive =
          values.filter((v) => v === 200).length === 1 && values.every((v) => v === 200 || v === 503);
        return oneActive ? s : undefined;
      },
      { timeoutMs: 60_000, what: 'exactly one node to answer 200 on /readyz and the other 503' },
    );
    expect(Object.values(statuses).filter((v) => v === 200)).to.have.length(1);
    // Both nodes answer their health endpoint through the published ports as well.
    expect(await httpStatus(`${NODES.primary.http}/healthz`)).to.equal(200);
    expect(await httpStatus(`${NODES.backup.http}/healthz`)).to.equal(200);
  });

  it('lets Prometheus scrape both nodes (up{job="twinstar"} is 1 for primary:9556 and backup:9556)', async () => {
    await waitHealthy([ids.prometheus], 60_000);
    const query = new URLSearchParams({ query: 'up{job="twinstar"}' });
    let last: PromVector | undefined;
    await poll(
      async () => {
        last = await httpJson<PromVector>(`${PROMETHEUS}/api/v1/query?${query}`);
        const up = last.data.result.filter((r) => r.value[1] === '1').map((r) => r.metric.instance);
        return last.data.result.length === 2 && up.includes('primary:9556') && up.includes('backup:9556');
      },
      {
        timeoutMs: 90_000,
        intervalMs: 1000,
        what: 'Prometheus to report both twinstar targets up',
        describe: () => JSON.stringify(last?.data.result),
      },
    );
    expect(last!.status).to.equal('success');
  });

  it('serves a client on the host through the published ports: it writes (acknowledged) and reads back', async () => {
    const servers = [
      `tcp://127.0.0.1:${NODES.primary.clientPorts[0]}`,
      `tcp://127.0.0.1:${NODES.backup.clientPorts[0]}`,
    ];
    const active = (await httpStatus(`${NODES.primary.http}/readyz`)) === 200 ? servers[0] : servers[1];
    const key = `/compose-test/${compose.project}`;
    const clients: Client[] = [];
    try {
      const writer = await connect({ servers, subtree: '/compose-test/', connectTimeoutMs: 20_000 });
      clients.push(writer);
      expect(writer.server).to.equal(active);
      expect(await writer.set(key, 'hello from the host')).to.be.greaterThan(0);
      await poll(() => writer.getString(key) === 'hello from the host', {
        timeoutMs: 10_000,
        what: 'the writing client to read its own write',
      });
      // A second client loads it from the pair's snapshot.
      const reader = await connect({ servers, subtree: '/compose-test/', connectTimeoutMs: 20_000 });
      clients.push(reader);
      expect(reader.server).to.equal(active);
      expect(reader.getString(key)).to.equal('hello from the host');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('`docker-compose down -v` removes every container, network and volume of the project', async () => {
    const before = await compose.resources();
    expect(before.containers).to.have.length(3);
    expect(before.networks).to.have.length(1);
    // The nodes' data dirs and Prometheus's store, each named after the project.
    expect(before.volumes.map((v) => v.replace(/^.*_/, '')).sort()).to.deep.equal([
      'backup-data',
      'primary-data',
      'prometheus-data',
    ]);
    await compose.down();
    expect(await compose.resources()).to.deep.equal({ containers: [], networks: [], volumes: [] });
  });
});
