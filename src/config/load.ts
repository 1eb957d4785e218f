/**
 * Loading a configuration: flags over environment over a JSON file, validated against the schema,
 * then the role-dependent defaults and the checks that span several settings. Every bad value
 * becomes a ConfigError whose message is one line naming the setting.
 */
import convict from 'convict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { maxEntryBytes, type Limits } from '../wire/index.js';
import { ConfigError } from '../errors.js';
import type { ServerQuotas } from '../server/index.js';
import { schema } from './schema.js';
import type { EventConfig } from './events-schema.js';

export type Role = 'single' | 'primary' | 'backup';

// convict's Boolean takes any string but 'false' as true, so TWINSTAR_MEMORY=0 or an empty value
// would silently turn durable storage off: this format takes true/false/1/0 and refuses the rest.
convict.addFormat({
  name: 'strict-boolean',
  validate(value: unknown) {
    if (typeof value !== 'boolean') throw new Error('must be true or false');
  },
  coerce(value: unknown) {
    const text = String(value).trim().toLowerCase();
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    return value;
  },
});

/** Every setting; the server's quotas (snapshot rates, queues, stream caps) are named as it names them. */
export interface ServerConfig extends ServerQuotas, EventConfig {
  role: Role;
  name: string;
  host: string;
  port: number;
  heartbeatHost: string;
  heartbeatPort: number;
  peer: string;
  peerHeartbeat: string;
  heartbeatMs: number;
  failoverMs: number;
  httpHost: string;
  httpPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** resolved: data/NAME unless given */
  dataDir: string;
  memory: boolean;
  fsync: 'always' | 'batch' | 'off';
  pairId: string;
  replayLogSize: number;
  dedupeMs: number;
  dedupeSize: number;
  pendingMax: number;
  pendingMaxAgeMs: number;
  snapshotChunk: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  maxPropertiesBytes: number;
  maxProperties: number;
  minTtlMs: number;
  maxTtlMs: number;
  maxBatchEntries: number;
  maxBatchBytes: number;
  replayLogBytes: number;
  pendingMaxBytes: number;
  curve: boolean;
  keyFile: string;
  peerKeyFile: string;
  clientsFile: string;
  sessionLifetimeMs: number;
}

export const ROLE_DEFAULTS = {
  single: { port: 5556, heartbeatPort: 5003, peerPort: 5566, peerHeartbeatPort: 5004, httpPort: 9556 },
  primary: { port: 5556, heartbeatPort: 5003, peerPort: 5566, peerHeartbeatPort: 5004, httpPort: 9556 },
  backup: { port: 5566, heartbeatPort: 5004, peerPort: 5556, peerHeartbeatPort: 5003, httpPort: 9566 },
} as const;

export interface LoadOptions {
  /** command-line flags, e.g. ['--role', 'backup'] */
  args?: string[];
  /** environment variables (default: process.env) */
  env?: NodeJS.ProcessEnv;
  /** a JSON configuration file; also TWINSTAR_CONFIG */
  file?: string;
}

/**
 * Loads and validates the configuration. Any bad value throws a ConfigError whose message is one
 * line naming the setting; the CLI prints it and exits with code 2.
 */
export function loadConfig(options: LoadOptions = {}): ServerConfig {
  const env = options.env ?? process.env;
  const known = new Set(Object.values(schema).map((s) => `--${s.arg}`));
  for (const arg of options.args ?? []) {
    const flag = arg.split('=')[0]!;
    if (flag.startsWith('--') && !known.has(flag)) {
      throw new ConfigError(flag.slice(2), `invalid configuration: unknown option ${flag}`);
    }
  }
  const config = convict(schema, { args: options.args ?? [], env });
  const file = options.file ?? env.TWINSTAR_CONFIG;
  try {
    if (file) config.load(JSON.parse(readFileSync(file, 'utf8')));
    config.validate({ allowed: 'strict' });
  } catch (error) {
    throw toConfigError(error, file);
  }
  return resolveDefaults(config.getProperties() as unknown as ServerConfig);
}

function toConfigError(error: unknown, file: string | undefined): ConfigError {
  const first = String((error as Error).message ?? error).split('\n')[0]!;
  const named = /^([A-Za-z]+):/.exec(first) ?? /param '([A-Za-z]+)'/.exec(first);
  if (named) return new ConfigError(named[1]!, `invalid configuration: ${first}`);
  return new ConfigError('config', `invalid configuration${file ? ` in ${file}` : ''}: ${first}`);
}

export function resolveDefaults(raw: ServerConfig): ServerConfig {
  const defaults = ROLE_DEFAULTS[raw.role];
  const peer = raw.peer ?? `127.0.0.1:${defaults.peerPort}`;
  const peerHost = peer.slice(0, peer.lastIndexOf(':'));
  const resolved: ServerConfig = {
    ...raw,
    name: raw.name || raw.role,
    port: raw.port ?? defaults.port,
    heartbeatHost: raw.heartbeatHost || raw.host,
    heartbeatPort: raw.heartbeatPort ?? defaults.heartbeatPort,
    peer,
    peerHeartbeat: raw.peerHeartbeat ?? `${peerHost}:${defaults.peerHeartbeatPort}`,
    httpHost: raw.httpHost || raw.host,
    httpPort: raw.httpPort ?? defaults.httpPort,
  };
  // memory wins over a data dir (the image sets TWINSTAR_DATA_DIR; `--memory` must still work)
  resolved.dataDir = raw.memory ? '' : raw.dataDir || join('data', resolved.name);
  if (resolved.port > 65532)
    throw new ConfigError('port', 'invalid configuration: port: P+3 must be at most 65535');
  if (resolved.failoverMs < 2 * resolved.heartbeatMs) {
    throw new ConfigError(
      'failoverMs',
      `invalid configuration: failoverMs: ${resolved.failoverMs} must be at least twice heartbeatMs (${resolved.heartbeatMs})`,
    );
  }
  if (resolved.minTtlMs > resolved.maxTtlMs) {
    throw new ConfigError(
      'minTtlMs',
      `invalid configuration: minTtlMs: ${resolved.minTtlMs} is above maxTtlMs (${resolved.maxTtlMs})`,
    );
  }
  const largest = maxEntryBytes(limitsOf(resolved));
  if (resolved.maxBatchBytes < largest) {
    throw new ConfigError(
      'maxBatchBytes',
      `invalid configuration: maxBatchBytes: ${resolved.maxBatchBytes} is below the largest single write the other limits allow (${largest} bytes)`,
    );
  }
  if (resolved.curve) {
    const needed: [keyof ServerConfig, boolean][] = [
      ['keyFile', true],
      ['clientsFile', true],
      ['peerKeyFile', resolved.role !== 'single'],
    ];
    for (const [setting, required] of needed) {
      if (required && !resolved[setting])
        throw new ConfigError(setting, `invalid configuration: ${setting}: required when curve is on`);
    }
  }
  return resolved;
}

/** The message limits of a configuration, as the codec and the server take them. */
export function limitsOf(config: ServerConfig): Limits {
  return {
    maxKeyBytes: config.maxKeyBytes,
    maxValueBytes: config.maxValueBytes,
    maxPropertiesBytes: config.maxPropertiesBytes,
    maxProperties: config.maxProperties,
    minTtlSeconds: config.minTtlMs / 1000,
    maxTtlSeconds: config.maxTtlMs / 1000,
    maxBatchEntries: config.maxBatchEntries,
    maxBatchBytes: config.maxBatchBytes,
  };
}
