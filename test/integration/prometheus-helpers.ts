/**
 * A real Prometheus server for integration tests: started on loopback on a free port with a
 * generated configuration in a temporary directory (removed again by `stop`), scraping the given
 * targets every second and evaluating the given rule files every second.
 *
 * The binary is Debian's `prometheus` (or $PROMETHEUS), which CI installs. Its absence is a
 * failure, not a skip, like promtool's in test/unit/prometheus-rules.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, waitFor } from '../helpers/index.js';

export const PROMETHEUS_BIN = process.env.PROMETHEUS ?? 'prometheus';
const INSTALL_HINT = "install Debian's prometheus package (apt-get install -y prometheus)";

export interface ScrapeTarget {
  /** host:port of a node's HTTP server */
  address: string;
  labels?: Record<string, string>;
}

export interface PrometheusOptions {
  job: string;
  targets: ScrapeTarget[];
  /** absolute paths of rule files to load */
  ruleFiles?: string[];
  /** both the scrape and the evaluation interval; default 1s */
  interval?: string;
  /** bound on the wait for /-/ready; default 30 s */
  readyMs?: number;
}

export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'inactive' | 'pending' | 'firing';
  activeAt?: string;
  value?: string;
}

/** The prometheus.yml for `options` (YAML is a superset of JSON, so JSON it is). */
export function prometheusConfig(options: PrometheusOptions): string {
  const interval = options.interval ?? '1s';
  return `${JSON.stringify(
    {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: [
        {
          job_name: options.job,
          metrics_path: '/metrics',
          static_configs: options.targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
        },
      ],
    },
    null,
    2,
  )}\n`;
}

export class PrometheusServer {
  private child: ChildProcess | undefined;
  private output = '';
  private readonly dirs: string[] = [];
  url = '';

  private constructor(private readonly options: PrometheusOptions) {}

  /** Starts Prometheus and resolves once /-/ready answers 200 (retrying if its port was taken). */
  static async start(options: PrometheusOptions): Promise<PrometheusServer> {
    const server = new PrometheusServer(options);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await server.launch();
          return server;
        } catch (error) {
          // Another process may grab the free port between our probe and Prometheus's bind.
          if (attempt >= 3 || !/address already in use/i.test(server.output)) throw error;
          await server.stop();
        }
      }
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  private async launch(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'twinstar-prom-'));
    this.dirs.push(dir);
    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, prometheusConfig(this.options));
    const port = await freePorts(1);
    this.url = `http://127.0.0.1:${port}`;
    this.output = '';
    const child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir },
    );
    this.child = child;
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        this.output += chunk;
        if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
      });
    }
    // waitFor keeps polling through errors; a process that failed to start or died will not come
    // back, so that ends the wait at once.
    let onDeath: (() => void) | undefined;
    let dead = false;
    const died = new Promise<never>((_, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(error.code === 'ENOENT' ? new Error(`${PROMETHEUS_BIN} not found: ${INSTALL_HINT}`) : error);
        dead = true;
      };
      const onExit = (code: number | null, signal: string | null) =>
        // let the output drain before quoting it; reject before the poll may see `dead`
        setImmediate(() => {
          reject(new Error(`prometheus exited (${code ?? signal}) before it was ready:\n${this.tail()}`));
          dead = true;
        });
      child.once('error', onError);
      child.once('exit', onExit);
      onDeath = () => {
        child.off('error', onError);
        child.off('exit', onExit);
      };
    });
    const readyMs = this.options.readyMs ?? 30_000;
    try {
      await Promise.race([
        died,
        waitFor(
          // once dead, end the poll (the race has already been lost to `died`)
          async () =>
            dead ||
            (await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1000) })).status === 200,
          readyMs,
          `prometheus at ${this.url} to be ready`,
        ).catch((error: unknown) => {
          throw new Error(`${String(error)}\n--- prometheus output ---\n${this.tail()}`);
        }),
      ]);
    } finally {
      onDeath?.();
      died.catch(() => undefined);
    }
  }

  get exited(): boolean {
    return this.child === undefined || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The last lines Prometheus logged, for failure messages. */
  tail(lines = 30): string {
    return this.output.trimEnd().split('\n').slice(-lines).join('\n');
  }

  private async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const url = new URL(path, this.url);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success')
      throw new Error(`${url.pathname} failed: ${body.errorType ?? ''} ${body.error ?? res.status}`);
    return body.data;
  }

  /** An instant query; only vector results are accepted. */
  async query(expr: string): Promise<Sample[]> {
    const data = await this.api<{
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    }>('/api/v1/query', { query: expr });
    if (data.resultType !== 'vector')
      throw new Error(`expected a vector from ${expr}, got ${data.resultType}`);
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** The single value of `expr`, or undefined if it returned no sample; throws on several. */
  async scalar(expr: string): Promise<number | undefined> {
    const samples = await this.query(expr);
    if (samples.length > 1)
      throw new Error(`${expr} returned ${samples.length} samples: ${JSON.stringify(samples)}`);
    return samples[0]?.value;
  }

  async alerts(): Promise<Alert[]> {
    return (await this.api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts;
  }

  /** The alerting rules loaded, by name, with their `for` in seconds. */
  async alertingRules(): Promise<Map<string, number>> {
    const data = await this.api<{ groups: { rules: { type: string; name: string; duration: number }[] }[] }>(
      '/api/v1/rules',
      {
        type: 'alert',
      },
    );
    return new Map(
      data.groups.flatMap((g) =>
        g.rules.filter((r) => r.type === 'alerting').map((r) => [r.name, r.duration] as const),
      ),
    );
  }

  async targets(): Promise<{ labels: Record<string, string>; health: string; lastError: string }[]> {
    return (
      await this.api<{
        activeTargets: { labels: Record<string, string>; health: string; lastError: string }[];
      }>('/api/v1/targets')
    ).activeTargets;
  }

  /** SIGTERM (SIGKILL after `ms`), wait for the exit, remove the temporary directories. */
  async stop(ms = 5000): Promise<void> {
    const child = this.child;
    if (child && child.pid !== undefined && !this.exited) {
      const done = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      await done;
      clearTimeout(timer);
    }
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}
