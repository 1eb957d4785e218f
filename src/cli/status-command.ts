/**
 * `twinstar status`: asks each node of a pair for its `/status` (in parallel, 2 s each), prints
 * one table row per node and a verdict, and exits 0 only when the pair is healthy, so scripts and
 * humans share one definition of "healthy" with the alert rules in deploy/prometheus/alerts.yml:
 * exactly one node ACTIVE, and that node hears its peer.
 *
 * The verdict is the pure `judgePair()`, kept apart from the HTTP so it can be tested with plain
 * data. Only Node built-ins here: the command must start fast and never load the server's sockets.
 */
import { parseArgs } from 'node:util';
import type { NodeStatus } from '../pair/index.js';
import { httpFetch } from './http.js';

export const DEFAULT_STATUS_NODES = ['http://127.0.0.1:9556', 'http://127.0.0.1:9566'];
export const STATUS_TIMEOUT_MS = 2000;

/** The options of every command that asks the nodes' HTTP endpoints: status, stream, group. */
export const NODE_QUERY_OPTIONS = {
  nodes: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const STATUS_HELP = `Usage: twinstar status [--nodes URL,URL] [--json]

Shows both nodes of a pair from their HTTP /status endpoints and says whether
the pair is healthy: exactly one node ACTIVE, and that node hears its peer.

Options:
  --nodes URL,URL   the nodes' metrics/health HTTP addresses
                    (default ${DEFAULT_STATUS_NODES.join(',')})
  --json            print the statuses and the verdict as one JSON object
  -h, --help        show this help

Exit status: 0 healthy, 1 unhealthy (no active, two actives, the active's peer
down, a node unreachable), 2 bad usage.
`;

/** What asking one node produced: its status, or why there is none. */
export type NodeProbe = { url: string; status: NodeStatus } | { url: string; error: string };

export interface Verdict {
  healthy: boolean;
  /** one line for people */
  summary: string;
  /** what makes the pair unhealthy (empty when healthy) */
  problems: string[];
  /** worth knowing, but the pair serves clients with a standby */
  warnings: string[];
}

const label = (probe: NodeProbe) => ('status' in probe ? probe.status.name : probe.url);

/** The pair's health from what its nodes said about themselves. Pure. */
export function judgePair(probes: readonly NodeProbe[]): Verdict {
  const problems: string[] = [];
  const warnings: string[] = [];
  // What the pair looks like, when there is something good to say: "primary is ACTIVE, ...".
  let headline = '';
  const up = probes.filter((p): p is Extract<NodeProbe, { status: NodeStatus }> => 'status' in p);
  const actives = up.filter((p) => p.status.state === 'ACTIVE');
  if (probes.length === 0) {
    problems.push('no nodes to ask');
  } else if (up.length === 0) {
    problems.push('no node answered');
  } else if (actives.length === 0) {
    problems.push('no node is ACTIVE: clients get no service');
  } else if (actives.length > 1) {
    problems.push(`${actives.length} nodes are ACTIVE (${actives.map(label).join(', ')}): split brain`);
  } else {
    const active = actives[0]!.status;
    const peer = active.peer;
    headline = `${active.name} is ACTIVE`;
    if (active.role === 'single') {
      warnings.push(`${active.name} runs alone (role single): there is no standby`);
    } else if (!peer || !peer.up) {
      const why = active.peerRefused
        ? `refused: ${active.peerRefused}`
        : peer
          ? `last heard ${formatAge(peer.lastHeardMs)} ago`
          : 'never heard';
      problems.push(`the active ${active.name} cannot hear its peer (${why})`);
    } else {
      headline += `, ${peer.name} is ${peer.state}`;
      if (peer.state === 'ACTIVE') {
        problems.push(`the active ${active.name} sees its peer ${peer.name} as ACTIVE too: split brain`);
      } else if (peer.state !== 'PASSIVE') {
        warnings.push(`the peer ${peer.name} is still ${peer.state}`);
      } else if (!peer.synced) {
        warnings.push(`the passive ${peer.name} is still syncing`);
      }
    }
    if (active.degraded)
      warnings.push(`${active.name} is degraded: writes are acknowledged without a passive`);
  }
  for (const probe of probes) {
    if ('error' in probe) problems.push(`${probe.url} is unreachable (${probe.error})`);
  }
  for (const { status } of up) {
    if (status.peerRefused && status.state !== 'ACTIVE') {
      warnings.push(`${status.name} refuses its peer: ${status.peerRefused}`);
    }
  }
  const healthy = problems.length === 0;
  const parts = [headline, ...problems, ...warnings].filter((part) => part !== '');
  return {
    healthy,
    summary: `${healthy ? 'HEALTHY' : 'UNHEALTHY'}: ${parts.join('; ')}`,
    problems,
    warnings,
  };
}

/** `1234` -> `1.2s`; sub-second ages in milliseconds. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

const COLUMNS = [
  'NODE',
  'ROLE',
  'STATE',
  'EPOCH',
  'SEQUENCE',
  'KEYS',
  'PEER',
  'PEER HEARD',
  'LAG',
  'DEGRADED',
  'PID',
];

/** The table people read: one row per node, DOWN for those that did not answer. */
export function formatTable(probes: readonly NodeProbe[]): string {
  const rows = probes.map((probe) => {
    const where = hostOf(probe.url);
    if ('error' in probe) return [where, '-', 'DOWN', '-', '-', '-', '-', '-', '-', '-', '-'];
    const s = probe.status;
    return [
      s.name === where ? where : `${s.name}@${where}`,
      s.role,
      s.state,
      String(s.epoch),
      String(s.sequence),
      String(s.keys),
      s.peer ? `${s.peer.state}${s.peer.up ? '' : ' (down)'}` : '-',
      s.peer ? formatAge(s.peer.lastHeardMs) : '-',
      String(s.replicationLag),
      s.degraded ? 'yes' : 'no',
      String(s.pid),
    ];
  });
  const widths = COLUMNS.map((c, i) => rows.reduce((width, r) => Math.max(width, r[i]!.length), c.length));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(COLUMNS), ...rows.map(line)].join('\n') + '\n';
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** `host:port` or `http://host:port/` -> `http://host:port`; throws on anything else. */
export function normaliseNodeUrl(raw: string): string {
  const text = raw.trim();
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`not an http URL: ${raw}`);
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

export interface StatusDeps {
  fetch?: typeof fetch;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  timeoutMs?: number;
}

/** GET `<url>/status`; never rejects: failures come back as `{ url, error }`. */
export async function probeNode(
  url: string,
  options: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<NodeProbe> {
  const get = options.fetch ?? httpFetch;
  const timeoutMs = options.timeoutMs ?? STATUS_TIMEOUT_MS;
  try {
    const res = await get(`${url}/status`, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (!res.ok) {
      await res.body?.cancel();
      return { url, error: `HTTP ${res.status}` };
    }
    const body: unknown = await res.json();
    if (!isNodeStatus(body)) return { url, error: 'answer is not a twinstar /status' };
    return { url, status: body };
  } catch (error) {
    return { url, error: describeFetchError(error, timeoutMs) };
  }
}

function isNodeStatus(value: unknown): value is NodeStatus {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.state === 'string' && typeof v.name === 'string' && typeof v.sequence === 'number' && 'peer' in v
  );
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError')
      return `no answer within ${timeoutMs} ms`;
    // undici reports "fetch failed" and puts the socket error (ECONNREFUSED, ...) in `cause`
    const cause = error.cause as (Error & { code?: string }) | undefined;
    if (cause?.code) return cause.code;
    if (cause?.message) return cause.message;
    return error.message;
  }
  return String(error);
}

export async function statusCommand(args: string[], deps: StatusDeps = {}): Promise<number> {
  const stdout = deps.stdout ?? ((text: string) => void process.stdout.write(text));
  const stderr = deps.stderr ?? ((text: string) => void process.stderr.write(text));
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: NODE_QUERY_OPTIONS,
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    stderr(`twinstar status: ${(error as Error).message}\n\n${STATUS_HELP}`);
    return 2;
  }
  if (values.help) {
    stdout(STATUS_HELP);
    return 0;
  }
  let urls: string[];
  try {
    const list =
      values.nodes === undefined
        ? DEFAULT_STATUS_NODES
        : values.nodes.split(',').filter((s) => s.trim() !== '');
    if (list.length === 0) throw new TypeError('--nodes needs at least one URL');
    urls = list.map(normaliseNodeUrl);
  } catch (error) {
    stderr(`twinstar status: invalid --nodes: ${(error as Error).message}\n\n${STATUS_HELP}`);
    return 2;
  }

  const probes = await Promise.all(
    urls.map((url) => probeNode(url, { fetch: deps.fetch, timeoutMs: deps.timeoutMs })),
  );
  const verdict = judgePair(probes);
  if (values.json) {
    stdout(`${JSON.stringify({ ...verdict, nodes: probes }, null, 2)}\n`);
  } else {
    stdout(`${formatTable(probes)}\n${verdict.summary}\n`);
  }
  return verdict.healthy ? 0 : 1;
}
