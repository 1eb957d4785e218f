/**
 * Free TCP ports on 127.0.0.1 for servers that tests and benchmarks start. A server needs
 * consecutive ports (P..P+3, and a pair node also its heartbeat and HTTP ports), so a range is
 * chosen at random below the kernel's ephemeral range and bound whole: no other socket can take a
 * port of the range while it is being chosen, and the whole range is released at once, right
 * before it is handed out. Below the ephemeral range, because the kernel gives ports of that range
 * to outgoing connections: a client connecting anywhere could take a port between its release
 * here and its server's bind (seen in CI: "cannot bind ...: address already in use"). A range where any port is busy is given up and
 * another one tried. Every port handed out is remembered: one process never hands a port out twice,
 * even if the server it was meant for has not bound it yet (a pair's two ranges cannot overlap).
 */
import { createServer, type Server } from 'node:net';

/** Ports are chosen in [LOWEST, BELOW_EPHEMERAL): above the well-known and registered services
 * tests might meet, below Linux's default ephemeral range (32768-60999). */
const LOWEST = 10_000;
const BELOW_EPHEMERAL = 32_768;

/**
 * Ports that fetch() refuses to connect to (the Fetch standard's "bad ports" above 1023; Node's
 * fetch says only "fetch failed", cause "bad port"). A server whose HTTP port is one of them never
 * looks ready to a test that polls it with fetch: seen in CI, a health port of 10080.
 */
export const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([
  1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697,
  10080,
]);

/** Every port freePorts handed out in this process: a later call never returns one of them again. */
const handedOut = new Set<number>();

/** A listening socket on 127.0.0.1:`port` (0: the OS picks), or undefined if the port is busy. */
function hold(port: number): Promise<Server | undefined> {
  const server = createServer();
  server.unref();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

async function release(servers: Server[]): Promise<void> {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
}

/**
 * Holds listening sockets on `base`..`base + count - 1` on top of `held` (sockets already on the
 * first ports of the range); returns all of them, or undefined (having released them) if a port of
 * the range is busy, out of range, one fetch() refuses, or was handed out before.
 */
export async function holdRange(
  base: number,
  count: number,
  held: Server[] = [],
): Promise<Server[] | undefined> {
  const servers = [...held];
  let ok = base + count - 1 <= 65535;
  for (let i = 0; ok && i < count; i++) ok = !handedOut.has(base + i) && !FETCH_BAD_PORTS.has(base + i);
  for (let i = servers.length; ok && i < count; i++) {
    const server = await hold(base + i);
    if (server) servers.push(server);
    else ok = false;
  }
  if (ok) return servers;
  await release(servers);
  return undefined;
}

/**
 * `count` consecutive TCP ports on 127.0.0.1 that were all free a moment ago, never handed out
 * before by this process. Nothing listens on them when this returns: the caller's server binds them.
 */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = LOWEST + Math.floor(Math.random() * (BELOW_EPHEMERAL - LOWEST - count));
    const servers = await holdRange(base, count);
    if (!servers) continue;
    // Remembered before the sockets close, so that a concurrent call cannot take them meanwhile.
    for (let i = 0; i < count; i++) handedOut.add(base + i);
    await release(servers);
    return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** One free port (handed out like freePorts(1)), e.g. a peer address where nothing listens. */
export function osPort(): Promise<number> {
  return freePorts(1);
}

/** True if nothing on 127.0.0.1 listens on `port` right now. */
export async function portIsFree(port: number): Promise<boolean> {
  const server = await hold(port);
  if (!server) return false;
  await release([server]);
  return true;
}

export interface PairPorts {
  primary: { port: number; heartbeat: number; http: number };
  backup: { port: number; heartbeat: number; http: number };
}

/** Ports for a pair: each node gets P..P+3 for clients, one heartbeat port and one HTTP port. */
export async function pairPorts(): Promise<PairPorts> {
  const p = await freePorts(6);
  const b = await freePorts(6);
  return {
    primary: { port: p, heartbeat: p + 4, http: p + 5 },
    backup: { port: b, heartbeat: b + 4, http: b + 5 },
  };
}
