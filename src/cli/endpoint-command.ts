/**
 * `twinstar endpoint health` and `twinstar endpoint status`, as etcdctl's: one answer per server,
 * `-w simple|table|json`. The servers are the client's (`--servers`, TWINSTAR_SERVERS, default the
 * local pair); each one's HTTP address is learnt from the `http=` its HUGZ advertise
 * (discover-http.ts), or given with `--nodes`. health asks /healthz and exits 1 if any endpoint is
 * unhealthy; status asks /status and exits 1 if any endpoint did not answer. The renderers are pure.
 */
import type { NodeStatus } from '../pair/index.js';
import { httpFetch } from './http.js';
import { KeyError } from '../security/index.js';
import { parseCommandLine, parseMillis, UsageError } from './args.js';
import { DEFAULT_SERVERS, EXIT } from './client-commands.js';
import { discoverHttp, splitEndpoint, type Discovered } from './discover-http.js';
import { normaliseNodeUrl, probeNode } from './status-command.js';
import { renderTable, writeOutOf, type WriteOut } from './table.js';

const DEFAULT_TIMEOUT_MS = 5000;

export const ENDPOINT_HELP = `Usage: twinstar endpoint health [options]
       twinstar endpoint status [options]

health  asks each server's /healthz (is its process responsive?); exits 1 if any is unhealthy
status  each server's role, state, sequence, term, keys and peer, from its /status

The servers are the client's; each one's HTTP port is found from the HUGZ it publishes
(its http= property), so only the snapshot endpoints are needed.
  --servers LIST     comma-separated snapshot endpoints (env TWINSTAR_SERVERS;
                     default ${DEFAULT_SERVERS})
  --nodes URL,URL    ask these HTTP addresses instead (no discovery)
  -w, --write-out F  simple (default), table or json
  --timeout MS       for each step: hearing a HUGZ, an HTTP answer (default ${DEFAULT_TIMEOUT_MS})
  --key-file FILE, --server-key FILES   CURVE keys, as for the client commands
  -h, --help         this text

Exit status: 0 all answered (and, for health, are healthy), 1 otherwise, 128 bad usage.
`;

const OPTIONS = {
  servers: { type: 'string', takes: 'comma-separated tcp://HOST:PORT endpoints' },
  nodes: { type: 'string', takes: 'comma-separated HTTP addresses' },
  'write-out': { type: 'string', short: 'w', takes: 'simple, table or json' },
  timeout: { type: 'string', takes: 'a number of milliseconds' },
  'key-file': { type: 'string', takes: 'a file name' },
  'server-key': { type: 'string', takes: 'file names, comma-separated' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface Health {
  endpoint: string;
  http?: string;
  health: boolean;
  /** milliseconds the /healthz answer took */
  took?: number;
  error?: string;
}

export interface EndpointStatus {
  endpoint: string;
  http?: string;
  status?: NodeStatus;
  error?: string;
}

const took = (ms: number | undefined) => (ms === undefined ? '-' : `${ms.toFixed(1)}ms`);

/** health's output: the text for stdout and the lines for stderr (simple: the unhealthy ones). */
export function renderHealth(results: readonly Health[], w: WriteOut): { out: string; err: string } {
  if (w === 'json') return { out: `${JSON.stringify(results)}\n`, err: '' };
  if (w === 'table') {
    const rows = results.map((r) => [
      r.endpoint,
      r.http ?? '-',
      String(r.health),
      took(r.took),
      r.error ?? '',
    ]);
    return { out: renderTable(['ENDPOINT', 'HTTP', 'HEALTH', 'TOOK', 'ERROR'], rows, ['TOOK']), err: '' };
  }
  let out = '';
  let err = '';
  for (const r of results) {
    if (r.health) out += `${r.endpoint} is healthy: ${r.http} answered /healthz: took = ${took(r.took)}\n`;
    else err += `${r.endpoint} is unhealthy: ${r.error ?? 'no answer'}\n`;
  }
  return { out, err };
}

const COLUMNS = [
  'ENDPOINT',
  'HTTP',
  'NAME',
  'ROLE',
  'STATE',
  'SEQUENCE',
  'TERM',
  'KEYS',
  'PEER',
  'VERSION',
  'ERRORS',
];

function statusCells(r: EndpointStatus): string[] {
  const s = r.status;
  if (!s) return [r.endpoint, r.http ?? '-', '-', '-', '-', '-', '-', '-', '-', '-', r.error ?? ''];
  const peer = s.peer ? `${s.peer.name} ${s.peer.state}${s.peer.up ? '' : ' (down)'}` : '-';
  const version = (s as NodeStatus & { version?: unknown }).version;
  const errors = [
    s.unavailable,
    s.fenced ? 'fenced' : null,
    s.peerRefused && `peer refused: ${s.peerRefused}`,
  ];
  return [
    r.endpoint,
    r.http ?? '-',
    s.name,
    s.role,
    s.state,
    String(s.sequence),
    s.term,
    String(s.keys),
    peer,
    typeof version === 'string' ? version : '-',
    errors.filter((e): e is string => typeof e === 'string' && e !== '').join('; '),
  ];
}

/** status's output (the failed endpoints also go to stderr in simple form, as etcdctl's). */
export function renderStatus(results: readonly EndpointStatus[], w: WriteOut): { out: string; err: string } {
  if (w === 'json') return { out: `${JSON.stringify(results)}\n`, err: '' };
  if (w === 'table')
    return { out: renderTable(COLUMNS, results.map(statusCells), ['SEQUENCE', 'KEYS']), err: '' };
  let out = '';
  let err = '';
  for (const r of results) {
    if (r.status) out += `${statusCells(r).slice(0, 10).join(', ')}\n`;
    else err += `failed to get the status of ${r.endpoint}: ${r.error ?? 'no answer'}\n`;
  }
  return { out, err };
}

async function health(target: Discovered, timeoutMs: number): Promise<Health> {
  if ('error' in target) return { endpoint: target.endpoint, health: false, error: target.error };
  const start = performance.now();
  try {
    const res = await httpFetch(`${target.http}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.text()).trim();
    const ms = Math.round((performance.now() - start) * 10) / 10;
    if (res.ok) return { endpoint: target.endpoint, http: target.http, health: true, took: ms };
    return { ...target, health: false, took: ms, error: `/healthz: HTTP ${res.status} ${body}`.trim() };
  } catch (error) {
    const cause = (error as Error & { cause?: { code?: string } }).cause?.code;
    const name = (error as Error).name;
    const why =
      name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (cause ?? (error as Error).message);
    return { endpoint: target.endpoint, http: target.http, health: false, error: `/healthz: ${why}` };
  }
}

async function status(target: Discovered, timeoutMs: number): Promise<EndpointStatus> {
  if ('error' in target) return target;
  const probe = await probeNode(target.http, { timeoutMs });
  return 'status' in probe
    ? { ...target, status: probe.status }
    : { ...target, error: `/status: ${probe.error}` };
}

const list = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (values.help) {
    process.stdout.write(ENDPOINT_HELP);
    return EXIT.OK;
  }
  const [sub, ...rest] = positionals;
  if (sub !== 'health' && sub !== 'status')
    throw new UsageError(
      sub === undefined ? 'endpoint takes health or status' : `unknown endpoint command ${sub}`,
    );
  if (rest.length > 0) throw new UsageError(`endpoint ${sub} takes no arguments`);
  const w = writeOutOf(values['write-out'], 'simple');
  const timeoutMs =
    values.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseMillis('--timeout', String(values.timeout));
  let targets: Discovered[];
  if (values.nodes !== undefined) {
    if (values.servers !== undefined) throw new UsageError('--nodes and --servers do not go together');
    const urls = list(String(values.nodes));
    if (urls.length === 0) throw new UsageError('--nodes needs at least one address');
    targets = urls.map((raw) => {
      try {
        const http = normaliseNodeUrl(raw);
        return { endpoint: http, http };
      } catch {
        throw new UsageError(`--nodes: ${JSON.stringify(raw)} is not an HTTP address`);
      }
    });
  } else {
    const servers = list(String(values.servers ?? process.env.TWINSTAR_SERVERS ?? DEFAULT_SERVERS));
    if (servers.length === 0) throw new UsageError('--servers needs at least one endpoint');
    for (const s of servers)
      if (!splitEndpoint(s))
        throw new UsageError(`server endpoint ${JSON.stringify(s)} is not tcp://HOST:PORT`);
    const keyFile = (values['key-file'] as string | undefined) ?? process.env.TWINSTAR_KEY_FILE;
    const serverKey = (values['server-key'] as string | undefined) ?? process.env.TWINSTAR_SERVER_KEY;
    if ((keyFile === undefined) !== (serverKey === undefined))
      throw new UsageError('--key-file and --server-key go together');
    targets = await discoverHttp(servers, {
      timeoutMs,
      ...(keyFile && serverKey ? { keyFile, serverKeyFiles: list(serverKey) } : {}),
    });
  }
  if (sub === 'health') {
    const results = await Promise.all(targets.map((t) => health(t, timeoutMs)));
    const { out, err } = renderHealth(results, w);
    process.stdout.write(out);
    process.stderr.write(err);
    const bad = results.filter((r) => !r.health).length;
    if (bad === 0) return EXIT.OK;
    process.stderr.write(`twinstar endpoint: unhealthy: ${bad} of ${results.length} endpoints\n`);
    return EXIT.FAILED;
  }
  const results = await Promise.all(targets.map((t) => status(t, timeoutMs)));
  const { out, err } = renderStatus(results, w);
  process.stdout.write(out);
  process.stderr.write(err);
  return results.every((r) => r.status) ? EXIT.OK : EXIT.FAILED;
}

export async function endpointCommand(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`twinstar endpoint: ${error.message} (see twinstar endpoint --help)\n`);
      return EXIT.USAGE;
    }
    // A key file that cannot be read is the caller's mistake, as with the client commands.
    if (error instanceof KeyError) {
      process.stderr.write(`twinstar endpoint: ${error.message}\n`);
      return EXIT.USAGE;
    }
    throw error;
  }
}
