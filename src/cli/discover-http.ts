/**
 * Finding a node's HTTP address (metrics, /healthz, /status) from its snapshot endpoint alone, for
 * `twinstar endpoint`: every twinstar server adds `http=<port>` to the properties of the HUGZ it
 * publishes (docs/protocol.md, "Advertising the extension"), on its publisher, snapshot port + 1.
 * A SUB socket subscribed to HUGZ hears one within a heartbeat (the server sends one early to a
 * new subscriber). `httpFromHugz` is the pure part.
 */
import * as zmq from 'zeromq';
import { curveClientOptions, readKeyFile, type KeyPair } from '../security/index.js';
import { ADVERTISE, HUGZ, decodeKvMsg, parseProperties } from '../wire/index.js';
import { retryInterrupted } from '../zmq/index.js';

/** What one server said about its HTTP port: the URL, or why there is none. */
export type Discovered = { endpoint: string; http: string } | { endpoint: string; error: string };

/** `tcp://HOST:P` -> its host and publisher `tcp://HOST:P+1`; undefined if it is not one. */
export function splitEndpoint(endpoint: string): { host: string; publisher: string } | undefined {
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/\s]+):(\d{1,5})$/.exec(endpoint.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port > 0 && port < 65535)) return undefined;
  return { host: match[1]!, publisher: `tcp://${match[1]}:${port + 1}` };
}

/**
 * The HTTP URL a HUGZ advertises for a node on `host`, from its frames; a string saying why not
 * when the frames are not a HUGZ, or carry no valid `http=` (a plain CHP server, or a node run
 * without a fixed HTTP port). Pure.
 */
export function httpFromHugz(frames: readonly Buffer[], host: string): { http: string } | { error: string } {
  let properties: Map<string, string>;
  try {
    const msg = decodeKvMsg(frames);
    if (msg.key !== HUGZ) return { error: `not a HUGZ: ${JSON.stringify(msg.key)}` };
    properties = parseProperties(msg.properties);
  } catch (error) {
    return { error: `malformed HUGZ (${(error as Error).message})` };
  }
  const port = properties.get(ADVERTISE.HTTP);
  if (port === undefined)
    return {
      error: properties.has(ADVERTISE.NATIVE)
        ? 'it advertises no HTTP port (run with --http-port N, or pass --nodes)'
        : 'not a twinstar server (no http= on its HUGZ; pass --nodes)',
    };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    return { error: `it advertises a bad HTTP port ${JSON.stringify(port)}` };
  return { http: `http://${host}:${Number(port)}` };
}

export interface DiscoverOptions {
  timeoutMs: number;
  /** CURVE: this client's key file and the servers' public key files (one, or one per server) */
  keyFile?: string;
  serverKeyFiles?: string[];
}

/** Asks every endpoint at once; never rejects (a failure is a Discovered with an error). */
export async function discoverHttp(
  endpoints: readonly string[],
  options: DiscoverOptions,
): Promise<Discovered[]> {
  let own: KeyPair | undefined;
  let serverKeys: string[] = [];
  if (options.keyFile !== undefined && options.serverKeyFiles !== undefined) {
    own = readKeyFile(options.keyFile, true);
    serverKeys = options.serverKeyFiles.map((file) => readKeyFile(file).publicKey);
  }
  return Promise.all(
    endpoints.map((endpoint, i) =>
      listenForHugz(endpoint, options.timeoutMs, own && { own, server: serverKeys[i] ?? serverKeys[0]! }),
    ),
  );
}

async function listenForHugz(
  endpoint: string,
  timeoutMs: number,
  curve: { own: KeyPair; server: string } | undefined,
): Promise<Discovered> {
  const where = splitEndpoint(endpoint);
  if (!where) return { endpoint, error: 'not tcp://HOST:PORT' };
  const sub = new zmq.Subscriber({
    linger: 0,
    receiveTimeout: timeoutMs,
    ...(curve ? curveClientOptions(curve.own, curve.server) : {}),
  });
  const deadline = Date.now() + timeoutMs;
  let last = `no HUGZ from its publisher ${where.publisher} within ${timeoutMs} ms`;
  try {
    sub.subscribe(HUGZ);
    retryInterrupted(() => sub.connect(where.publisher));
    while (Date.now() < deadline) {
      sub.receiveTimeout = Math.max(1, deadline - Date.now());
      const found = httpFromHugz(await sub.receive(), where.host);
      if ('http' in found) return { endpoint, http: found.http };
      last = found.error;
      if (!last.startsWith('malformed') && !last.startsWith('not a HUGZ')) break;
    }
  } catch (error) {
    if ((error as { code?: string }).code !== 'EAGAIN') last = (error as Error).message;
  } finally {
    sub.close();
  }
  return { endpoint, error: last };
}
