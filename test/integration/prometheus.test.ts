/**
 * The pair as Prometheus sees it: two real server processes scraped every second by a real
 * Prometheus (Debian's, which CI installs) that loads the real deploy/prometheus/alerts.yml. The
 * active is SIGKILLed and a client's vote promotes the backup; everything is then checked through
 * Prometheus's query and alerts APIs, which is what an operator's dashboards and alerts see.
 */
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { connect, type Client } from '../../src/index.js';
import {
  pairOptions,
  pairPorts,
  requireTool,
  ServerProcess,
  waitFor,
  within,
  type PairPorts,
} from '../helpers/index.js';
import { PrometheusServer, type Alert, PROMETHEUS_BIN } from './prometheus-helpers.js';

const ALERTS_YML = fileURLToPath(new URL('../../deploy/prometheus/alerts.yml', import.meta.url));
const JOB = 'twinstar';
/** An alert whose `for` is at most this long must be seen firing; a longer one pending (or firing). */
const FIRING_WAIT_S = 10;

describe('Prometheus scraping a pair (real processes, real Prometheus)', function () {
  before(function () {
    requireTool(
      this,
      PROMETHEUS_BIN,
      ['--version'],
      "install Debian's prometheus package (apt-get install -y prometheus)",
    );
  });

  this.timeout(120_000);
  let ports: PairPorts;
  let procs: ServerProcess[] = [];
  const clients: Client[] = [];
  let prometheus: PrometheusServer | undefined;

  beforeEach(async () => {
    ports = await pairPorts();
  });

  afterEach(async () => {
    await Promise.all(
      clients.splice(0).map((c) => within(c.close(), 5000, 'closing a client').catch(() => undefined)),
    );
    await Promise.all(procs.map((p) => p.kill()));
    procs = [];
    await prometheus?.stop();
    prometheus = undefined;
  });

  async function startPair(): Promise<{ primary: ServerProcess; backup: ServerProcess }> {
    const options = pairOptions(ports);
    const primary = new ServerProcess(options.primary);
    const backup = new ServerProcess(options.backup);
    procs.push(primary, backup);
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 10_000, 'the passive to attach');
    return { primary, backup };
  }

  const readyz = async (p: ServerProcess) =>
    (await fetch(`${p.http}/readyz`, { signal: AbortSignal.timeout(2000) })).status;

  it('sees exactly one ACTIVE, follows a SIGKILL failover to the backup, and raises the node/peer-down alerts', async () => {
    const { primary, backup } = await startPair();
    const primaryInstance = `127.0.0.1:${ports.primary.http}`;
    const backupInstance = `127.0.0.1:${ports.backup.http}`;
    const started = Date.now();
    prometheus = await PrometheusServer.start({
      job: JOB,
      targets: [
        { address: primaryInstance, labels: { role: 'primary' } },
        { address: backupInstance, labels: { role: 'backup' } },
      ],
      ruleFiles: [ALERTS_YML],
      interval: '1s',
    });
    const prom = prometheus;
    const readyAfter = Date.now() - started;

    // The real alerts.yml is loaded (a rule_files entry is a glob: a wrong path would load nothing,
    // silently). The `for` of the two alerts awaited after the failover decides whether the test
    // waits for them to fire or only to be pending.
    const loaded = await prom.alertingRules();
    expect([...loaded.keys()]).to.include.members([
      'TwinstarNoActive',
      'TwinstarDualActive',
      'TwinstarPeerDown',
      'TwinstarNodeDown',
    ]);
    const states = (name: string): Alert['state'][] => {
      const seconds = loaded.get(name);
      expect(seconds, `the \`for\` of ${name}`).to.be.a('number');
      return seconds! <= FIRING_WAIT_S ? ['firing'] : ['pending', 'firing'];
    };
    const nodeDownStates = states('TwinstarNodeDown');
    const peerDownStates = states('TwinstarPeerDown');

    // Both targets scraped and up.
    const up = await waitFor(
      async () => {
        const samples = await prom.query(`up{job="${JOB}"}`);
        return samples.length === 2 && samples.every((s) => s.value === 1) ? samples : undefined;
      },
      15_000,
      'both twinstar targets to be up in Prometheus',
    ).catch(async (error: unknown) => {
      throw new Error(
        `${String(error)}\ntargets: ${JSON.stringify(await prom.targets().catch(() => 'unavailable'))}`,
      );
    });
    expect(up.map((s) => s.metric.instance).sort()).to.deep.equal([primaryInstance, backupInstance].sort());

    // Once a scrape of each node is in, exactly one of them is ACTIVE: the primary.
    const active = await waitFor(
      async () => {
        const samples = await prom.query(`twinstar_state{job="${JOB}", state="ACTIVE"}`);
        return samples.length === 2 ? samples : undefined;
      },
      15_000,
      'a twinstar_state sample from both nodes',
    );
    expect(await prom.scalar(`sum(twinstar_state{job="${JOB}", state="ACTIVE"})`)).to.equal(1);
    expect(Object.fromEntries(active.map((s) => [s.metric.instance, s.value]))).to.deep.equal({
      [primaryInstance]: 1,
      [backupInstance]: 0,
    });
    expect(
      await prom.scalar(`twinstar_state{job="${JOB}", instance="${backupInstance}", state="PASSIVE"}`),
    ).to.equal(1);
    const readyBefore = await Promise.all([primary, backup].map(readyz));
    expect(readyBefore, '/readyz of [primary, backup]').to.deep.equal([200, 503]);
    const promotionsBefore =
      (await prom.scalar(`sum(twinstar_promotions_total{instance="${backupInstance}"}) or vector(0)`)) ?? 0;
    expect(promotionsBefore).to.equal(0);
    // Nothing fires on a healthy pair. (TwinstarNoActive may be pending if the rules were
    // evaluated before the first scrape: no twinstar_state at all counts as no ACTIVE.)
    expect((await prom.alerts()).filter((a) => a.state === 'firing')).to.deep.equal([]);
    const healthyAfter = Date.now() - started;

    // SIGKILL the active; a client's vote promotes the backup.
    await primary.kill();
    const killedAt = Date.now();
    const c = await connect({ servers: [primary.endpoint, backup.endpoint], connectTimeoutMs: 15_000 });
    clients.push(c);
    expect(c.server).to.equal(backup.endpoint);
    const connectedAfter = Date.now() - killedAt;

    // Prometheus follows: the backup's instance is the one ACTIVE node, and it counted a promotion.
    await waitFor(
      async () =>
        (await prom.scalar(`twinstar_state{job="${JOB}", instance="${backupInstance}", state="ACTIVE"}`)) ===
        1,
      15_000,
      'Prometheus to see the backup ACTIVE',
    );
    await waitFor(
      async () =>
        ((await prom.scalar(`sum(twinstar_promotions_total{job="${JOB}", instance="${backupInstance}"})`)) ??
          0) >= 1,
      15_000,
      'Prometheus to see a promotion counted on the backup',
    );
    expect(
      await prom.query(
        `twinstar_promotions_total{job="${JOB}", instance="${backupInstance}", reason="client-vote"}`,
      ),
      'the promotion was by client vote',
    ).to.have.length(1);
    // The killed primary's target is down and its series went stale: it no longer counts as ACTIVE.
    await waitFor(
      async () => (await prom.scalar(`up{job="${JOB}", instance="${primaryInstance}"}`)) === 0,
      15_000,
      'Prometheus to see the primary down',
    );
    await waitFor(
      async () =>
        (await prom.query(`twinstar_state{job="${JOB}", instance="${primaryInstance}"}`)).length === 0,
      15_000,
      "the killed primary's series to go stale",
    );
    expect(await prom.scalar(`sum(twinstar_state{job="${JOB}", state="ACTIVE"})`)).to.equal(1);
    expect(await readyz(backup), '/readyz of the promoted backup').to.equal(200);
    const promotedAfter = Date.now() - killedAt;

    // The alerts: TwinstarNodeDown for the primary and TwinstarPeerDown for the backup. In
    // alerts.yml both have `for: 30s`, too long to wait for here: they are pending within a couple
    // of evaluations (1s each) and that is what is awaited; with a `for` of FIRING_WAIT_S or less
    // they would have to fire. Either way the real rules match the real metrics of a real failover.
    const findAlert = (alerts: Alert[], name: string, instance: string, wanted: Alert['state'][]) =>
      alerts.find(
        (a) => a.labels.alertname === name && a.labels.instance === instance && wanted.includes(a.state),
      );
    const [nodeDown, peerDown] = await waitFor(
      async () => {
        const alerts = await prom.alerts();
        const found = [
          findAlert(alerts, 'TwinstarNodeDown', primaryInstance, nodeDownStates),
          findAlert(alerts, 'TwinstarPeerDown', backupInstance, peerDownStates),
        ];
        return found[0] && found[1] ? ([found[0], found[1]] as const) : undefined;
      },
      15_000 + FIRING_WAIT_S * 1000,
      `TwinstarNodeDown (primary) ${nodeDownStates.join(' or ')} and TwinstarPeerDown (backup) ${peerDownStates.join(' or ')}`,
    ).catch(async (error: unknown) => {
      throw new Error(
        `${String(error)}\nalerts: ${JSON.stringify(await prom.alerts().catch(() => 'unavailable'))}`,
      );
    });
    expect(nodeDown.labels).to.include({ severity: 'warning', job: JOB, role: 'primary' });
    expect(peerDown.labels).to.include({ severity: 'warning', job: JOB, role: 'backup' });
    expect(nodeDown.annotations.runbook).to.equal('docs/operations.md#twinstarnodedown');
    expect(peerDown.annotations.runbook).to.equal('docs/operations.md#twinstarpeerdown');
    // The same through the ALERTS series the rule evaluation writes (committed just after the
    // in-memory alert state the alerts API reads, hence a short bounded wait).
    const expected = [`TwinstarNodeDown@${primaryInstance}`, `TwinstarPeerDown@${backupInstance}`].sort();
    let seen: string[] = [];
    await waitFor(
      async () => {
        const series = await prom.query(
          `ALERTS{alertname=~"TwinstarNodeDown|TwinstarPeerDown", alertstate=~"pending|firing"}`,
        );
        seen = series.map((s) => `${s.metric.alertname}@${s.metric.instance}`).sort();
        return JSON.stringify(seen) === JSON.stringify(expected);
      },
      5000,
      'the ALERTS series of both alerts',
    ).catch(() => undefined);
    expect(seen).to.deep.equal(expected);
    // No split brain was ever alerted on; the backup is still running.
    expect(await prom.query(`ALERTS{alertname="TwinstarDualActive"}`)).to.deep.equal([]);
    expect(
      await prom.query(`max_over_time(ALERTS{alertname="TwinstarDualActive", alertstate="firing"}[10m])`),
    ).to.deep.equal([]);
    expect(primary.exited && !backup.exited).to.equal(true);
    const alertedAfter = Date.now() - killedAt;

    if (process.env.TWINSTAR_TEST_TIMINGS) {
      console.log(
        `    prometheus ready ${readyAfter} ms, pair healthy in Prometheus ${healthyAfter} ms; after the kill: client connected ${connectedAfter} ms, ` +
          `promotion seen ${promotedAfter} ms, alerts pending ${alertedAfter} ms`,
      );
    }
  });
});
