/**
 * The node's HTTP endpoints for Prometheus, load balancers and operators (listed in index.ts).
 * Read-only, except POST /promote from the node's own host.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Node } from '../pair/index.js';
import { groupView, groupViews, streamViews } from './bus.js';

export interface MetricsHttpOptions {
  host: string;
  /** 0 picks a free port */
  port: number;
}

/**
 * POST /promote?force=1: an operator promotes a node that refuses votes because it lacks the
 * complete history (docs/operations.md). It may serve lost state, so it takes `force=1`, and only
 * from the node's own host: the rest of this port is read-only.
 */
function promote(
  node: Node,
  req: IncomingMessage,
  send: (code: number, body: string, type?: string) => void,
): void {
  const remote = req.socket.remoteAddress ?? '';
  if (!isLoopback(remote)) return send(403, 'promote is accepted only from the loopback interface\n');
  const force = new URL(req.url ?? '/', 'http://x').searchParams.get('force');
  if (force !== '1' && force !== 'true')
    return send(400, 'add force=1: a forced promotion may serve a history without acknowledged writes\n');
  const result = node.forcePromote();
  const body = `${JSON.stringify(result.ok ? { state: node.state, epoch: result.epoch } : { error: result.reason })}\n`;
  send(result.ok ? 200 : 409, body, 'application/json');
}

type Send = (code: number, body: string, type?: string) => void;

function sendJson(send: Send, value: unknown, code = 200): void {
  send(code, `${JSON.stringify(value)}\n`, 'application/json');
}

/** GET /groups/<name>: one consumer group, 404 when there is none of that name. */
function oneGroup(node: Node, encoded: string, send: Send): void {
  let name: string;
  try {
    name = decodeURIComponent(encoded);
  } catch {
    return sendJson(send, { error: 'bad group name' }, 400);
  }
  const view = groupView(node.store.bus, name);
  if (view === undefined) return sendJson(send, { error: `no group named ${JSON.stringify(name)}` }, 404);
  sendJson(send, view);
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** Concurrent HTTP connections a node accepts; more are refused by the kernel's accept path. */
export const HTTP_MAX_CONNECTIONS = 64;
/** A request must arrive whole, and an idle connection closes, within this time. */
export const HTTP_TIMEOUT_MS = 5000;

/** The HTTP server for metrics and health. Resolves once listening. */
export async function startMetricsHttp(
  node: Node,
  registry: Registry,
  options: MetricsHttpOptions,
): Promise<Server & { url: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    if (path === '/promote' && req.method === 'POST') return promote(node, req, send);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    switch (path) {
      case '/metrics':
        registry.metrics().then(
          (text) => send(200, text, registry.contentType),
          (error) => send(500, `${String(error)}\n`),
        );
        return;
      case '/healthz':
        // Answering at all proves the event loop turns; the node's own timer must be on time too.
        return node.reactorHealthy() ? send(200, 'ok\n') : send(503, 'event loop stalled\n');
      case '/readyz':
        if (node.serving()) return send(200, 'active\n');
        return send(
          503,
          `${node.status().unavailable ?? (node.state === 'ACTIVE' ? 'fenced' : node.state.toLowerCase())}\n`,
        );
      case '/status':
        return send(200, `${JSON.stringify(node.status())}\n`, 'application/json');
      case '/digest':
        node.digest().then(
          (digest) => send(200, `${JSON.stringify(digest)}\n`, 'application/json'),
          (error) => send(500, `${String(error)}\n`),
        );
        return;
      case '/streams':
        return sendJson(send, streamViews(node.store.bus));
      case '/groups':
        return sendJson(send, groupViews(node.store.bus));
      default: {
        if (path.startsWith('/groups/')) return oneGroup(node, path.slice('/groups/'.length), send);
        return send(
          404,
          'not found: try /metrics, /healthz, /readyz, /status, /digest, /streams, /groups or /groups/NAME\n',
        );
      }
    }
  });
  // Anyone who reaches this port may call it: bound what they can hold. Prometheus and a few
  // operators need a handful of connections; slow or idle ones are closed.
  server.maxConnections = HTTP_MAX_CONNECTIONS;
  server.headersTimeout = HTTP_TIMEOUT_MS;
  server.requestTimeout = HTTP_TIMEOUT_MS;
  server.keepAliveTimeout = HTTP_TIMEOUT_MS / 2;
  server.setTimeout(HTTP_TIMEOUT_MS, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return Object.assign(server, { url: `http://${options.host}:${port}` });
}
