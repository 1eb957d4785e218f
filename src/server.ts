/**
 * Starting and stopping one twinstar server process: configuration in, a running node with its
 * metrics endpoint out. The CLI and tests both come through here.
 */
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { ServerConfig } from './config/index.js';
import { ConfigError, StorageError } from './errors.js';
import type { MemoryStorageOptions } from './core/index.js';
import { LmdbStorage } from './storage/index.js';
import { createLogger, type Logger } from './log/index.js';
import { createMetrics, startMetricsHttp, type SecurityEvents } from './metrics/index.js';
import { Node } from './pair/index.js';
import { AccessFile, Guard, readKeyFile } from './security/index.js';

export interface RunningServer {
  readonly node: Node;
  readonly log: Logger;
  /** base URL of the metrics/health endpoint, if enabled */
  readonly httpUrl: string;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, log?: Logger): Promise<RunningServer> {
  // The logger reads the node's state for every line, and the node needs the logger: a holder
  // breaks the cycle.
  const holder: { node?: Node } = {};
  const logger =
    log ??
    createLogger({
      node: config.name,
      role: config.role,
      level: config.logLevel,
      state: () => holder.node?.state ?? 'STARTING',
    });
  const security = config.curve ? loadSecurity(config) : undefined;
  const node = (holder.node = newNode(config, logger, security));
  const registry = createMetrics(node, security);
  let http: (Server & { url: string }) | undefined;
  const reload = () => security?.allowList.reload();
  if (security) {
    const { allowList } = security;
    allowList.on('reloaded', (previous, next) => {
      const revoked = previous.revokedIn(next);
      logger.warn({ clients: next.size, revoked: revoked.length }, 'allow-list reloaded');
      if (revoked.length > 0)
        node.server
          .revoke()
          .catch((error: unknown) => logger.error({ err: error }, 'revoking access failed'));
    });
    allowList.on('reloadFailed', (error) =>
      logger.error({ err: error.message }, 'allow-list reload failed; the previous list stays in force'),
    );
    allowList.watch();
    process.on('SIGHUP', reload);
  }
  try {
    await node.start();
    http = await startMetricsHttp(node, registry, { host: config.httpHost, port: config.httpPort });
  } catch (error) {
    await node.close();
    security?.allowList.close();
    process.off('SIGHUP', reload);
    throw bindError(error, config) ?? error;
  }
  logger.info({ http: http.url }, 'metrics and health endpoints listening');
  const running = node;
  let closing: Promise<void> | undefined;
  return {
    node: running,
    log: logger,
    httpUrl: http.url,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
        await running.close();
        security?.allowList.close();
        process.off('SIGHUP', reload);
        logger.flush();
      })();
      return closing;
    },
  };
}

/**
 * The node, over lmdb on its data dir unless `memory`. A data dir that is refused (damaged, cut
 * short, another format version, another pair) stops start-up with a ConfigError carrying the
 * StorageError's one line (exit code 2): never an empty start by accident.
 */
function newNode(config: ServerConfig, log: Logger, security: SecurityEvents | undefined): Node {
  if (config.memory) log.info('storage: in memory only (--memory), nothing survives a restart');
  const openStorage = config.memory
    ? undefined
    : (options: MemoryStorageOptions) => {
        mkdirSync(config.dataDir, { recursive: true });
        const storage = LmdbStorage.open({
          ...options,
          dir: config.dataDir,
          fsync: config.fsync,
          ...(config.pairId ? { pairId: config.pairId } : {}),
        });
        log.info(
          {
            dataDir: config.dataDir,
            fsync: config.fsync,
            pairId: storage.pairId,
            sequence: storage.sequence,
          },
          'storage opened',
        );
        return storage;
      };
  try {
    return new Node({ config, log, guard: security?.guard, openStorage });
  } catch (error) {
    if (error instanceof StorageError) throw new ConfigError('dataDir', error.message, { cause: error });
    if (isFsError(error)) {
      const message = `${config.dataDir}: cannot create the data directory: ${(error as Error).message}`;
      throw new ConfigError('dataDir', message, { cause: error });
    }
    throw error;
  }
}

function isFsError(error: unknown): boolean {
  return typeof (error as { syscall?: unknown })?.syscall === 'string';
}

const BIND_REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this host',
  EACCES: 'permission denied',
};

/**
 * A socket that could not bind becomes a ConfigError whose one-line message names the endpoint,
 * e.g. "cannot bind tcp://127.0.0.1:5556: address already in use" (exit code 2 from the CLI).
 * ZeroMQ's errors carry the endpoint as `address`; Node's HTTP server's carry `address` and `port`.
 */
export function bindError(error: unknown, config: ServerConfig): ConfigError | undefined {
  const e = error as {
    code?: unknown;
    address?: unknown;
    port?: unknown;
    syscall?: unknown;
    message?: unknown;
  };
  if (typeof e?.address !== 'string' || typeof e.code !== 'string') return undefined;
  const http = e.syscall === 'listen' && typeof e.port === 'number';
  const endpoint = http ? `http://${e.address}:${e.port as number}` : e.address;
  if (!http && !/^[a-z]+:\/\//.test(endpoint)) return undefined;
  const reason = BIND_REASONS[e.code] ?? String(e.message).toLowerCase();
  const port = Number(/:(\d+)$/.exec(endpoint)?.[1]);
  const setting = http ? 'httpPort' : port === config.heartbeatPort ? 'heartbeatPort' : 'port';
  return new ConfigError(setting, `cannot bind ${endpoint}: ${reason}`, { cause: error });
}

/**
 * The keys and allow-list a secure server needs. Any missing or malformed file stops start-up
 * with a ConfigError naming the setting (exit code 2 from the CLI).
 */
function loadSecurity(config: ServerConfig): SecurityEvents {
  const load = <T>(setting: keyof ServerConfig, read: () => T): T => {
    try {
      return read();
    } catch (error) {
      throw new ConfigError(setting, `invalid configuration: ${setting}: ${(error as Error).message}`);
    }
  };
  const keys = load('keyFile', () => readKeyFile(config.keyFile, true));
  const peerPublicKey =
    config.role === 'single'
      ? undefined
      : load('peerKeyFile', () => readKeyFile(config.peerKeyFile).publicKey);
  const allowList = load('clientsFile', () => new AccessFile(config.clientsFile));
  const guard = new Guard({
    keys,
    peerPublicKey,
    access: () => allowList.current,
    sessionLifetimeMs: config.sessionLifetimeMs,
  });
  return { guard, allowList };
}
