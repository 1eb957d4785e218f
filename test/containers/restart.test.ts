/**
 * docker-compose.ha.yml survives an operator's `docker-compose restart` of BOTH nodes (issue 15):
 * every acknowledged key comes back with its value and its sequence, sequence numbers keep rising
 * past the old maximum, and Prometheus scrapes the two new processes (not stale samples of the old
 * ones) and sees the pair whole again.
 *
 * The nodes keep their state in the named volumes primary-data and backup-data (/data in the
 * image). With TWINSTAR_MEMORY=true added to both nodes' environment this test fails (all 200 keys
 * missing), and without the restart it fails on Prometheus's start times: both checked by hand
 * when it was written.
 *
 * Needs a Docker engine and the images (scripts/docker/start-engine.sh, build-images.sh). Uses the
 * compose file's fixed host ports, like compose.test.ts (mocha runs the files one after the other).
 */
import { expect } from 'chai';
import { connect, type Client } from '../../src/index.js';
import { ComposeProject, httpJson, httpStatus, poll, requireComposeHost, uniqueProject } from './helpers.js';

const NODES = {
  primary: { http: 'http://127.0.0.1:9556', client: 'tcp://127.0.0.1:5556' },
  backup: { http: 'http://127.0.0.1:9566', client: 'tcp://127.0.0.1:5566' },
} as const;
const SERVERS = [NODES.primary.client, NODES.backup.client];
const PROMETHEUS = 'http://127.0.0.1:9090';
const PUBLISHED_PORTS = [5556, 5557, 5558, 5559, 9556, 5566, 5567, 5568, 5569, 9566, 9090];
/** prometheus.yml's targets for the two nodes */
const INSTANCES = ['primary:9556', 'backup:9556'];
const KEYS = 200;
const PREFIX = '/restart-test/';

type Sample = { metric: Record<string, string>; value: [number, string] };
interface PromVector {
  status: string;
  data: { resultType: string; result: Sample[] };
}

/** One instant query: the value per instance of the twinstar job (prometheus.yml's targets). */
async function perInstance(query: string): Promise<Map<string, number>> {
  const url = `${PROMETHEUS}/api/v1/query?${new URLSearchParams({ query })}`;
  const answer = await httpJson<PromVector>(url);
  if (answer.status !== 'success') throw new Error(`${query}: ${JSON.stringify(answer)}`);
  return new Map(answer.data.result.map((s) => [s.metric.instance ?? '', Number(s.value[1])]));
}

/** Which node answers 200 on /readyz, once exactly one does and the other answers 503. */
async function waitOneActive(timeoutMs: number): Promise<'primary' | 'backup'> {
  let seen: number[] = [];
  return poll(
    async () => {
      seen = [
        await httpStatus(`${NODES.primary.http}/readyz`),
        await httpStatus(`${NODES.backup.http}/readyz`),
      ];
      if (seen[0] === 200 && seen[1] === 503) return 'primary' as const;
      if (seen[0] === 503 && seen[1] === 200) return 'backup' as const;
      return undefined;
    },
    {
      timeoutMs,
      what: 'exactly one node to answer 200 on /readyz and the other 503',
      describe: () => `primary ${seen[0]}, backup ${seen[1]}`,
    },
  );
}

describe('docker-compose.ha.yml: `docker-compose restart primary backup`', function () {
  this.timeout(300_000);
  const compose = new ComposeProject(uniqueProject('twinstarrs'), undefined, {
    TWINSTAR_PUBLISH_HOST: '127.0.0.1',
  });
  let started = false;
  const clients: Client[] = [];

  before(async function () {
    await requireComposeHost(PUBLISHED_PORTS);
    started = true;
    await compose.up();
  });

  afterEach(async function () {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    if (this.currentTest?.state === 'failed' && started) {
      console.error(`--- docker-compose logs (project ${compose.project}) ---\n${await compose.logs(60)}`);
    }
  });

  after(async function () {
    if (started) await compose.down();
  });

  it('keeps every acknowledged key, keeps sequences rising, and Prometheus sees both new processes', async () => {
    await waitOneActive(90_000);

    // Acknowledged writes through the failover-aware client, all in flight at once.
    const writer = await connect({ servers: SERVERS, subtree: PREFIX, connectTimeoutMs: 20_000 });
    clients.push(writer);
    const written = new Map<string, { value: string; seq: number }>();
    const keys = Array.from({ length: KEYS }, (_, i) => `${PREFIX}k${String(i).padStart(4, '0')}`);
    const seqs = await Promise.all(keys.map((key) => writer.set(key, `value of ${key}`)));
    keys.forEach((key, i) => written.set(key, { value: `value of ${key}`, seq: seqs[i]! }));
    expect(new Set(seqs).size, 'each write has its own sequence').to.equal(KEYS);
    const lastAcked = Math.max(...seqs);
    await writer.close();
    clients.splice(0);

    // Prometheus scrapes both processes before the restart; their start times identify them.
    let before = new Map<string, number>();
    await poll(
      async () => {
        const up = await perInstance('up{job="twinstar"}');
        before = await perInstance('twinstar_process_start_time_seconds{job="twinstar"}');
        return INSTANCES.every((i) => up.get(i) === 1 && before.has(i));
      },
      { timeoutMs: 60_000, intervalMs: 1000, what: 'Prometheus to scrape both nodes before the restart' },
    );

    const restartedAt = Date.now() / 1000;
    await compose.compose(['restart', '--timeout', '10', 'primary', 'backup'], { timeoutMs: 120_000 });
    const active = await waitOneActive(90_000);

    // A new client loads the whole subtree from the active: every key, with its value and the
    // sequence it was acknowledged with (the same write, not a replacement).
    const reader = await connect({ servers: SERVERS, subtree: PREFIX, connectTimeoutMs: 20_000 });
    clients.push(reader);
    expect(reader.server).to.equal(NODES[active].client);
    const entries = new Map(reader.view().entries.map((e) => [e.key, e]));
    const missing = keys.filter((k) => !entries.has(k));
    expect(
      missing.length,
      `keys lost by the restart, of ${KEYS} (first: ${missing.slice(0, 3).join(', ')})`,
    ).to.equal(0);
    for (const [key, { value, seq }] of written) {
      expect(entries.get(key)!.body.toString(), key).to.equal(value);
      expect(entries.get(key)!.sequence, key).to.equal(seq);
    }
    expect(entries.size).to.equal(KEYS);
    expect(reader.sequence).to.be.at.least(lastAcked);
    const next = await reader.set(`${PREFIX}after-restart`, 'new');
    expect(next, 'a write after the restart gets a sequence above every earlier one').to.be.greaterThan(
      lastAcked,
    );

    // Prometheus: both targets up, in samples scraped after the restart from the new processes,
    // one node ACTIVE, and both at (at least) the new write's sequence: the pair is whole again.
    let seen: Record<string, unknown> = {};
    await poll(
      async () => {
        const [up, scrapedAt, startedAt, activeCount, sequence] = await Promise.all([
          perInstance('up{job="twinstar"}'),
          perInstance('timestamp(up{job="twinstar"})'),
          perInstance('twinstar_process_start_time_seconds{job="twinstar"}'),
          perInstance('sum(twinstar_state{job="twinstar", state="ACTIVE"})'),
          perInstance('twinstar_sequence{job="twinstar"}'),
        ]);
        seen = {
          up: [...up],
          scrapedAt: [...scrapedAt],
          startedAt: [...startedAt],
          activeCount: [...activeCount],
          sequence: [...sequence],
        };
        return (
          INSTANCES.every(
            (i) =>
              up.get(i) === 1 &&
              scrapedAt.get(i)! > restartedAt &&
              startedAt.get(i)! > before.get(i)! &&
              sequence.get(i)! >= next,
          ) && activeCount.get('') === 1
        );
      },
      {
        timeoutMs: 90_000,
        intervalMs: 1000,
        what: 'Prometheus to scrape both restarted nodes (up, new start times, one ACTIVE, both at the new sequence)',
        describe: () => JSON.stringify({ restartedAt, before: [...before], ...seen }),
      },
    );
  });
});
