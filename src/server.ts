/**
 * Starting and stopping one twinstar server process: configuration in, a running node with its
 * metrics endpoint out. The CLI and tests both come through here.
 */
import type { Server } from 'node:http';
import type { ServerConfig } from './config/index.js';
import { createLogger, type Logger } from './log/index.js';
import { createMetrics, startMetricsHttp } from './metrics/index.js';
import { Node } from './primary-backup/index.js';

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
  const node = (holder.node = new Node({ config, log: logger }));
  const registry = createMetrics(node);
  let http: (Server & { url: string }) | undefined;
  try {
    await node.start();
    http = await startMetricsHttp(node, registry, { host: config.httpHost, port: config.httpPort });
  } catch (error) {
    await node.close();
    throw error;
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
        logger.flush();
      })();
      return closing;
    },
  };
}
