/**
 * The ports of the two nodes `twinstar pair` runs on one host. Pure: the command line (and the
 * environment) in, both nodes' server flags out, so the layout is unit-tested and documented in
 * one place.
 *
 * Without port flags the pair uses the well-known defaults (5556/5566, heartbeats 5003/5004,
 * HTTP 9556/9566). With `--port N` it uses the block N..N+15, which keeps a second pair on the
 * same host clear of the first:
 *   primary  snapshot N     publisher N+1   collector N+2   updates N+3   heartbeat N+4   http N+5
 *   backup   snapshot N+10  publisher N+11  collector N+12  updates N+13  heartbeat N+14  http N+15
 * `--heartbeat-port H` puts the heartbeats on H and H+1 instead, `--http-port M` the HTTP servers
 * on M and M+10 (0: a free port each).
 *
 * Each node keeps its durable state in a folder of its own: `data/primary` and `data/backup` by
 * default (the server's default, data/NAME); `--data-dir D` (or TWINSTAR_DATA_DIR) puts them in
 * D/primary and D/backup, never one folder for both.
 */
import { join } from 'node:path';
import { ROLE_DEFAULTS } from '../config/index.js';

export class PairUsageError extends Error {}

export interface NodePorts {
  readonly port: number;
  readonly heartbeatPort: number;
  readonly httpPort: number;
}

export interface PairLayout {
  readonly primary: NodePorts;
  readonly backup: NodePorts;
  /** the address the nodes' client sockets bind to */
  readonly host: string;
  /** the host each node's peer connection uses */
  readonly peerHost: string;
  readonly peerHeartbeatHost: string;
  /** the folder holding each node's data folder, if given (`--data-dir`) */
  readonly dataDir?: string;
  /** the flags every node gets as given (port flags removed) */
  readonly rest: string[];
}

/** Flags `pair` sets for each node itself. */
const PER_NODE = ['--role', '--name', '--peer', '--peer-heartbeat'];
const PORT_FLAGS = {
  '--port': 'TWINSTAR_PORT',
  '--heartbeat-port': 'TWINSTAR_HEARTBEAT_PORT',
  '--http-port': 'TWINSTAR_HTTP_PORT',
} as const;
type PortFlag = keyof typeof PORT_FLAGS;

const WILDCARD = new Set(['0.0.0.0', '*', '::', '[::]']);

export function pairLayout(args: readonly string[], env: NodeJS.ProcessEnv = {}): PairLayout {
  const given: Partial<Record<PortFlag, string>> = {};
  const hosts: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    if (PER_NODE.includes(flag))
      throw new PairUsageError(`${flag} is set by pair for each node; run two \`twinstar server\` instead`);
    if (flag in PORT_FLAGS || flag === '--host' || flag === '--heartbeat-host' || flag === '--data-dir') {
      const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new PairUsageError(`${flag} needs a value`);
      if (flag === '--data-dir') {
        hosts[flag] = value;
        continue;
      }
      if (flag in PORT_FLAGS) {
        given[flag as PortFlag] = value;
        continue;
      }
      hosts[flag] = value;
      rest.push(flag, value);
      continue;
    }
    rest.push(arg);
  }
  const read = (flag: PortFlag, min: number): number | undefined => {
    const text = given[flag] ?? env[PORT_FLAGS[flag]];
    if (text === undefined || text === '') return undefined;
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(n >= min && n <= 65535))
      throw new PairUsageError(`${flag} takes a port number (${min}-65535), not ${JSON.stringify(text)}`);
    return n;
  };
  const port = read('--port', 1);
  const heartbeat = read('--heartbeat-port', 1);
  const http = read('--http-port', 0);
  const p = ROLE_DEFAULTS.primary;
  const b = ROLE_DEFAULTS.backup;
  const base = port ?? p.port;
  const primary: NodePorts = {
    port: base,
    heartbeatPort: heartbeat ?? (port === undefined ? p.heartbeatPort : port + 4),
    httpPort: http ?? (port === undefined ? p.httpPort : port + 5),
  };
  const backup: NodePorts = {
    port: port === undefined ? b.port : port + 10,
    heartbeatPort: heartbeat !== undefined ? heartbeat + 1 : port === undefined ? b.heartbeatPort : port + 14,
    httpPort: http === 0 ? 0 : http !== undefined ? http + 10 : port === undefined ? b.httpPort : port + 15,
  };
  const used = new Map<number, string>();
  for (const [role, n] of [
    ['primary', primary],
    ['backup', backup],
  ] as const) {
    for (const [what, value] of [
      ['snapshot', n.port],
      ['publisher', n.port + 1],
      ['collector', n.port + 2],
      ['update stream', n.port + 3],
      ['heartbeat', n.heartbeatPort],
      ['http', n.httpPort],
    ] as const) {
      if (value === 0) continue;
      if (value > 65535)
        throw new PairUsageError(`the ${role}'s ${what} port would be ${value}, above 65535`);
      const other = used.get(value);
      if (other)
        throw new PairUsageError(`port ${value} would be both the ${other} and the ${role}'s ${what} port`);
      used.set(value, `${role}'s ${what}`);
    }
  }
  const loopback = (host: string | undefined) => (!host || WILDCARD.has(host) ? '127.0.0.1' : host);
  const host = hosts['--host'] ?? env.TWINSTAR_HOST ?? '127.0.0.1';
  const peerHost = loopback(host);
  const dataDir = hosts['--data-dir'] ?? (env.TWINSTAR_DATA_DIR || undefined);
  return {
    host,
    ...(dataDir === undefined ? {} : { dataDir }),
    primary,
    backup,
    peerHost,
    peerHeartbeatHost:
      (hosts['--heartbeat-host'] ?? env.TWINSTAR_HEARTBEAT_HOST)
        ? loopback(hosts['--heartbeat-host'] ?? env.TWINSTAR_HEARTBEAT_HOST)
        : peerHost,
    rest,
  };
}

/** The `twinstar server` flags for one node of the layout. */
export function nodeArgs(layout: PairLayout, role: 'primary' | 'backup'): string[] {
  const self = layout[role];
  const peer = layout[role === 'primary' ? 'backup' : 'primary'];
  return [
    '--role',
    role,
    '--port',
    String(self.port),
    '--heartbeat-port',
    String(self.heartbeatPort),
    '--http-port',
    String(self.httpPort),
    '--peer',
    `${layout.peerHost}:${peer.port}`,
    '--peer-heartbeat',
    `${layout.peerHeartbeatHost}:${peer.heartbeatPort}`,
    ...(layout.dataDir === undefined ? [] : ['--data-dir', join(layout.dataDir, role)]),
    ...layout.rest,
  ];
}
