/**
 * The Prometheus configuration and alert rules in deploy/prometheus, checked by promtool: the rules
 * parse, both scrape configs (and the rule files they name, resolved relative to each config)
 * are valid, and the promtool unit tests in alerts.test.yml pass. Also checks, by reading the
 * files, that every alert has a firing and a non-firing case and a runbook entry.
 *
 * promtool comes from Debian's `prometheus` package, which CI installs. Under CI its absence is a
 * failure; on a developer's machine without it the suite is skipped with the install hint.
 */
import { requireTool } from '../helpers/index.js';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const INSTALL_HINT =
  "install Debian's prometheus package (apt-get install -y prometheus), which provides promtool";

interface Run {
  code: number;
  output: string;
}

function promtool(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(PROMTOOL, args, { cwd: ROOT, timeout: 15_000 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`${PROMTOOL} not found: ${INSTALL_HINT}`));
      } else if (error && error.killed) {
        reject(new Error(`${PROMTOOL} ${args.join(' ')} timed out\n${output}`));
      } else {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output });
      }
    });
  });
}

async function expectSuccess(...args: string[]): Promise<string> {
  const { code, output } = await promtool(...args);
  expect(code, `promtool ${args.join(' ')} failed:\n${output}`).to.equal(0);
  return output;
}

const read = (path: string) => readFileSync(new URL(path, new URL('../../', import.meta.url)), 'utf8');

interface Dashboard {
  templating: { list: { name: string; type: string }[] };
  annotations: { list: { expr?: string }[] };
  panels: {
    type: string;
    title: string;
    datasource?: { uid?: string };
    targets?: { expr: string; datasource?: { uid?: string } }[];
  }[];
}

function dashboardQueries(): string[] {
  const dashboard = JSON.parse(read('deploy/grafana/twinstar-dashboard.json')) as Dashboard;
  return [
    ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)),
    ...dashboard.annotations.list.flatMap((annotation) => (annotation.expr ? [annotation.expr] : [])),
  ];
}

const ALERTS = [
  'TwinstarNoActive',
  'TwinstarDualActive',
  'TwinstarPeerDown',
  'TwinstarDegraded',
  'TwinstarReplicationLagHigh',
  'TwinstarMalformedTrafficRising',
  'TwinstarFlapping',
  'TwinstarNodeDown',
  'TwinstarAuthFailuresRising',
  'TwinstarDedupeEvictedEarly',
  'TwinstarSlowSubscribers',
  'TwinstarStorageFailed',
  'TwinstarFileDescriptorsNearLimit',
  'TwinstarGroupLagGrowing',
  'TwinstarGroupDeadLetters',
];

describe('deploy/prometheus', function () {
  before(function () {
    requireTool(this, PROMTOOL, ['--version'], INSTALL_HINT);
  });

  describe('promtool', () => {
    before(async () => {
      // One clear failure up front instead of one ENOENT per test.
      const { code, output } = await promtool('--version');
      expect(code, `${PROMTOOL} --version failed (${INSTALL_HINT}):\n${output}`).to.equal(0);
    });

    it('alerts.yml passes promtool check rules', async () => {
      const output = await expectSuccess('check', 'rules', 'deploy/prometheus/alerts.yml');
      expect(output).to.include(`${ALERTS.length} rules found`);
    });

    for (const config of ['prometheus.yml', 'prometheus.local.yml']) {
      it(`${config} passes promtool check config (with its rule files)`, async () => {
        const output = await expectSuccess('check', 'config', `deploy/prometheus/${config}`);
        // check config resolves rule_files relative to the config file and checks them too
        expect(output).to.include('1 rule files found');
        expect(output).to.include(`${ALERTS.length} rules found`);
      });
    }

    it('alerts.test.yml passes promtool test rules', async () => {
      await expectSuccess('test', 'rules', 'deploy/prometheus/alerts.test.yml');
    });

    it('every query of the Grafana dashboard is valid PromQL', async () => {
      // promtool has no "parse this expression" command, so the queries become recording rules.
      const queries = dashboardQueries().map((expr) =>
        expr
          .replaceAll('$job', 'twinstar')
          .replaceAll('$instance', '.+')
          .replaceAll('$__rate_interval', '1m')
          .replaceAll('$__range', '1h'),
      );
      expect(queries).to.have.length.above(10);
      const rules = [
        'groups:',
        '  - name: dashboard',
        '    rules:',
        ...queries.flatMap((expr, i) => [
          `      - record: dashboard_query_${i}`,
          `        expr: ${JSON.stringify(expr)}`,
        ]),
      ].join('\n');
      const dir = mkdtempSync(join(tmpdir(), 'twinstar-dashboard-'));
      try {
        const file = join(dir, 'dashboard-queries.yml');
        writeFileSync(file, `${rules}\n`);
        const output = await expectSuccess('check', 'rules', file);
        expect(output).to.include(`${queries.length} rules found`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('defines exactly the documented alerts, each with severity, summary and runbook', () => {
    const rules = read('deploy/prometheus/alerts.yml');
    const names = [...rules.matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]);
    expect(names).to.have.members(ALERTS);
    // Split the file at each rule and look inside it.
    const blocks = rules.split(/^\s*- alert: /m).slice(1);
    for (const block of blocks) {
      const name = block.split('\n')[0];
      expect(block, name).to.match(/^\s+severity: (critical|warning|info)$/m);
      expect(block, name).to.match(/^\s+summary: \S/m);
      expect(block, name).to.include(`runbook: 'docs/operations.md#${name?.toLowerCase()}'`);
    }
  });

  it('has a firing and a non-firing unit test for every alert', () => {
    const tests = read('deploy/prometheus/alerts.test.yml');
    for (const name of ALERTS) {
      expect(tests, `${name} never tested as not firing`).to.match(
        new RegExp(`alertname: ${name}, exp_alerts: \\[\\]`),
      );
      expect(tests, `${name} never tested as firing`).to.match(
        new RegExp(`alertname: ${name}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`),
      );
    }
  });

  it('has a Grafana dashboard whose panels all use the ${DS_PROMETHEUS} data source variable', () => {
    const dashboard = JSON.parse(read('deploy/grafana/twinstar-dashboard.json')) as Dashboard;
    const variables = dashboard.templating.list.map((v) => `${v.name}:${v.type}`);
    expect(variables).to.include('DS_PROMETHEUS:datasource');
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).to.equal('${DS_PROMETHEUS}');
      for (const target of panel.targets ?? [])
        expect(target.datasource?.uid, panel.title).to.equal('${DS_PROMETHEUS}');
    }
  });

  it('has a runbook entry in docs/operations.md for every alert', () => {
    const docs = read('docs/operations.md');
    for (const name of ALERTS) expect(docs, name).to.match(new RegExp(`^### ${name}$`, 'm'));
  });
});
