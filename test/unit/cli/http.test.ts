/**
 * The CLI's HTTP client (src/cli/http.ts): fetch's answers and failures over node:http, and the
 * reason it exists, a node whose HTTP port is one Node's fetch refuses (10080, 6665, ...).
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpFetch } from '../../../src/cli/http.js';
import { probeNode } from '../../../src/cli/status-command.js';
import { FETCH_BAD_PORTS } from '../../support/ports.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler, port = 0): Promise<Server | undefined> {
  const server = createServer(handler);
  server.listen(port, '127.0.0.1');
  const [event] = await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(() => ['error']),
  ]);
  return event === 'error' ? undefined : server;
}
const portOf = (server: Server) => (server.address() as AddressInfo).port;
const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
const failure = (p: Promise<unknown>) =>
  p.then(
    () => expect.fail('resolved'),
    (error: Error & { cause?: Error & { code?: string } }) => error,
  );

describe('httpFetch: the CLI reaches a node on any port', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close));
  });
  async function start(handler: Handler, port = 0): Promise<Server | undefined> {
    const server = await serve(handler, port);
    if (server) servers.push(server);
    return server;
  }

  it('answers as fetch does: status, headers both ways, method, body', async () => {
    const server = (await start((req, res) => {
      res.setHeader('x-seen', `${req.method} ${req.url} ${req.headers.accept}`);
      res.statusCode = req.url === '/missing' ? 404 : 200;
      res.end(JSON.stringify({ ok: req.url !== '/missing' }));
    }))!;
    const base = `http://127.0.0.1:${portOf(server)}`;
    const got = await httpFetch(`${base}/status`, { headers: { accept: 'application/json' } });
    expect([got.status, got.ok, got.headers.get('x-seen')]).to.deep.equal([
      200,
      true,
      'GET /status application/json',
    ]);
    expect(await got.json()).to.deep.equal({ ok: true });
    const posted = await httpFetch(new URL('/promote?force=1', base), { method: 'POST' });
    expect(posted.headers.get('x-seen')).to.equal('POST /promote?force=1 undefined');
    const binary = await failure(httpFetch(base, { method: 'POST', body: new Uint8Array(1) }));
    expect(binary.message).to.equal('httpFetch sends a string body only');
    const missing = await httpFetch(`${base}/missing`);
    expect([missing.status, missing.ok, await missing.text()]).to.deep.equal([404, false, '{"ok":false}']);
  });

  it("reaches a node on a port Node's fetch refuses, where fetch fails", async () => {
    let server: Server | undefined;
    const status = { state: 'ACTIVE', name: 'primary', sequence: 7, peer: null };
    for (const port of FETCH_BAD_PORTS)
      if ((server = await start((_, res) => res.end(JSON.stringify(status)), port))) break;
    expect(server, `one of ${[...FETCH_BAD_PORTS].join(', ')} free on 127.0.0.1`).to.not.equal(undefined);
    const url = `http://127.0.0.1:${portOf(server!)}/healthz`;
    expect(String((await failure(fetch(url))).cause)).to.match(/bad port/);
    expect(await (await httpFetch(url)).json()).to.deep.equal(status);
    // the status probe every node command starts with, with its default client
    const probe = await probeNode(`http://127.0.0.1:${portOf(server!)}`, { timeoutMs: 2000 });
    expect(probe).to.deep.equal({ url: `http://127.0.0.1:${portOf(server!)}`, status });
  });

  it('fails as fetch does: a refused connection names its code, a silent node times out', async () => {
    const gone = (await start(() => undefined))!;
    const port = portOf(gone);
    await close(servers.pop()!);
    const refused = await failure(httpFetch(`http://127.0.0.1:${port}/`));
    expect([refused.name, refused.message, refused.cause?.code]).to.deep.equal([
      'TypeError',
      'fetch failed',
      'ECONNREFUSED',
    ]);
    let asked!: () => void;
    const reached = new Promise<void>((resolve) => (asked = resolve));
    const silent = (await start(() => asked()))!;
    const slow = failure(
      httpFetch(`http://127.0.0.1:${portOf(silent)}/`, { signal: AbortSignal.timeout(200) }),
    );
    await reached; // the request got there, so only the timeout can end it
    expect((await slow).name).to.equal('TimeoutError');
  });

  it('fails when the node drops the connection inside the body', async () => {
    const server = (await start((_, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial', () => res.destroy());
    }))!;
    const cut = await failure(httpFetch(`http://127.0.0.1:${portOf(server)}/`).then((r) => r.text()));
    expect([cut.name, cut.message]).to.deep.equal(['TypeError', 'fetch failed']);
  });
});
