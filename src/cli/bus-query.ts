/**
 * What `twinstar stream` and `twinstar group` share: asking a pair's nodes over HTTP which of them
 * is ACTIVE (their /status, as `twinstar status` does), reading one of the bus endpoints from
 * that node, and the plain-text tables and figures they print. The active's answer is the one
 * that counts: it is the node that delivers events and decides redeliveries (the passive mirrors
 * it, a step behind).
 *
 * `chooseActive()` and the formatting are pure, tested with plain data. Only Node built-ins here.
 */
import type { NodeStatus } from '../pair/index.js';
import { httpFetch } from './http.js';
import { DEFAULT_STATUS_NODES, normaliseNodeUrl, probeNode, type NodeProbe } from './status-command.js';

export const BUS_TIMEOUT_MS = 2000;

/** The node whose answer counts, or why there is none. */
export type ActiveChoice =
  { url: string; status: NodeStatus; warning?: string } | { error: string; url?: undefined };

/**
 * The ACTIVE node among the probes. Two actives (a split brain) give the one with the higher
 * epoch (the one that wins when they meet) and a warning. None gives an error naming each node.
 */
export function chooseActive(probes: readonly NodeProbe[]): ActiveChoice {
  const actives = probes.filter(
    (p): p is Extract<NodeProbe, { status: NodeStatus }> => 'status' in p && p.status.state === 'ACTIVE',
  );
  if (actives.length === 0) {
    const what = probes.map((p) => `${p.url}: ${'status' in p ? p.status.state : p.error}`);
    return { error: `no ACTIVE node answered (${what.join('; ') || 'no nodes to ask'})` };
  }
  const [best] = [...actives].sort((a, b) => b.status.epoch - a.status.epoch);
  const chosen = { url: best!.url, status: best!.status };
  if (actives.length === 1) return chosen;
  return {
    ...chosen,
    warning: `${actives.length} nodes are ACTIVE (split brain): showing ${where(chosen)}, the higher epoch`,
  };
}

/** `primary@127.0.0.1:9556` */
export function where(node: { url: string; status: NodeStatus }): string {
  let host = node.url;
  try {
    host = new URL(node.url).host;
  } catch {
    // keep the text as given
  }
  return `${node.status.name}@${host}`;
}

/** The `--nodes` option: the default pair when absent; throws TypeError on an unusable list. */
export function parseNodes(value: string | undefined): string[] {
  const list = value === undefined ? DEFAULT_STATUS_NODES : value.split(',').filter((s) => s.trim() !== '');
  if (list.length === 0) throw new TypeError('--nodes needs at least one URL');
  return list.map(normaliseNodeUrl);
}

export interface BusDeps {
  fetch?: typeof fetch;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  timeoutMs?: number;
}

/** The active node's answer to GET `path`: HTTP code and parsed JSON body. */
export type ActiveAnswer =
  | { node: { url: string; status: NodeStatus }; code: number; body: unknown; warning?: string }
  | { error: string };

/** Asks every node's /status, then `path` of the ACTIVE one. Never rejects. */
export async function askActive(
  urls: readonly string[],
  path: string,
  deps: BusDeps = {},
): Promise<ActiveAnswer> {
  const timeoutMs = deps.timeoutMs ?? BUS_TIMEOUT_MS;
  const probes = await Promise.all(urls.map((url) => probeNode(url, { fetch: deps.fetch, timeoutMs })));
  const choice = chooseActive(probes);
  if (choice.url === undefined) return { error: choice.error };
  const node = { url: choice.url, status: choice.status };
  const get = deps.fetch ?? httpFetch;
  try {
    const res = await get(`${choice.url}${path}`, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return {
        error: `${where(node)} answered ${path} with HTTP ${res.status} and no JSON (an older twinstar?)`,
      };
    }
    return { node, code: res.status, body, ...(choice.warning ? { warning: choice.warning } : {}) };
  } catch (error) {
    const reason =
      error instanceof Error && error.name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : String(error);
    return { error: `${where(node)} did not answer ${path}: ${reason}` };
  }
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function table(columns: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) =>
    rows.reduce((width, r) => Math.max(width, (r[i] ?? '').length), c.length),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...rows.map(line)].join('\n') + '\n';
}

/** `label: value` lines, the values aligned. */
export function fields(pairs: readonly (readonly [string, string])[], indent = '  '): string {
  const width = pairs.reduce((w, [label]) => Math.max(w, label.length + 1), 0);
  return pairs.map(([label, value]) => `${indent}${`${label}:`.padEnd(width)}  ${value}\n`).join('');
}

/** A duration in the largest whole unit: `30s`, `5m`, `1h`, `1500ms`. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms > 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms > 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Bytes for people: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = 'B';
  for (const next of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value.toFixed(1)} ${unit}`;
}

/** A count with thousands separators: `12,345`. */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  return n.toLocaleString('en-US');
}
