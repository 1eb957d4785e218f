/**
 * The benchmark's helper process, driven by run.ts over IPC. Work that must not share an event
 * loop with the load generator runs here:
 *
 *   sub.start / sub.stats / sub.reset / sub.stop   SUB sockets (zeromq.js, or lean ZMTP ones: see
 *                                                  lib/zmtp.ts) that count what they receive
 *                                                  and, for stamped messages, the write-to-delivery
 *                                                  latency (the body starts with the writer's
 *                                                  CLOCK_MONOTONIC time in ms as a double)
 *   echo.start                                     a raw ROUTER that echoes every message
 *   netecho.start                                  a plain Node TCP server that echoes what it
 *                                                  reads (no ZeroMQ: the transport's own cost)
 */
import * as zmq from 'zeromq';
import { createServer, type Server } from 'node:net';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Histogram } from './lib/stats.js';
import { nowMs } from './lib/proc.js';
import { ZmtpSubscriber } from './lib/zmtp.js';
import { unpackEntry } from '../src/wire/index.js';
import { serveRequests, type WorkerRequest } from './lib/worker-ipc.js';

// ---------------------------------------------------------------------------------------------
// Subscribers.

interface SubGroup {
  sockets: zmq.Subscriber[];
  lean: ZmtpSubscriber[];
  counts: number[];
  firstAt: number[];
  lastAt: number[];
  hist: Histogram;
  stamped: boolean;
}

let group: SubGroup | undefined;

async function subLoop(g: SubGroup, i: number): Promise<void> {
  const socket = g.sockets[i]!;
  let n = 0;
  let sliceStart = performance.now();
  try {
    for await (const frames of socket) {
      const now = nowMs();
      if (g.counts[i] === 0) g.firstAt[i] = now;
      g.counts[i]!++;
      g.lastAt[i] = now;
      if (g.stamped) {
        const body = frames[frames.length - 1]!;
        if (body.length >= 8) g.hist.record((now - body.readDoubleBE(0)) * 1000);
      }
      // A busy socket resolves receives in microtasks only: give IPC and timers a turn now and then.
      if ((++n & 255) === 0 && performance.now() - sliceStart > 10) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
  } catch {
    // closed
  }
}

async function subStart(args: Record<string, unknown>): Promise<{ sockets: number }> {
  subStop();
  const count = Number(args.count ?? 1);
  const endpoint = String(args.endpoint);
  const prefixes = (args.prefixes as string[] | undefined) ?? [''];
  const g: SubGroup = {
    sockets: [],
    lean: [],
    counts: new Array<number>(count).fill(0),
    firstAt: new Array<number>(count).fill(0),
    lastAt: new Array<number>(count).fill(0),
    hist: new Histogram(),
    stamped: Boolean(args.stamped),
  };
  if (args.kind === 'zmtp' || args.kind === 'updates') {
    // 'updates': the server's update stream (src/wire/updates.ts), a packed batch per message
    const batches = args.kind === 'updates';
    const url = new URL(endpoint.replace(/^tcp:/, 'http:'));
    for (let i = 0; i < count; i++) {
      const delivered = (body: Buffer, at: number) => {
        if (g.counts[i] === 0) g.firstAt[i] = at;
        g.counts[i]!++;
        g.lastAt[i] = at;
        if (g.stamped && body.length >= 8) g.hist.record((at - body.readDoubleBE(0)) * 1000);
      };
      const topics = batches ? prefixes.map((prefix) => `${prefix}\0`) : prefixes;
      g.lean.push(
        new ZmtpSubscriber(url.hostname, Number(url.port), topics, (body, at) => {
          if (batches) forEachBody(body, (value) => delivered(value, at));
          else delivered(body, at);
        }),
      );
    }
    group = g;
    return { sockets: count };
  }
  for (let i = 0; i < count; i++) {
    const socket = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: Number(args.hwm ?? 1_000_000) });
    for (const prefix of prefixes) socket.subscribe(prefix);
    socket.connect(endpoint);
    g.sockets.push(socket);
  }
  group = g;
  for (let i = 0; i < count; i++) void subLoop(g, i);
  return { sockets: count };
}

/** Each value of a packed batch (src/wire/chp.ts, its one reader). */
function forEachBody(packed: Buffer, each: (body: Buffer) => void): void {
  const cursor = { at: 0 };
  while (cursor.at < packed.length) each(unpackEntry(packed, cursor).body);
}

function subStats(): unknown {
  const g = group;
  if (!g) throw new Error('no subscribers');
  return {
    counts: g.counts,
    firstAt: g.firstAt,
    lastAt: g.lastAt,
    hist: { counts: g.hist.counts, maxUs: g.hist.maxUs },
  };
}

function subReset(args: Record<string, unknown>): void {
  const g = group;
  if (!g) throw new Error('no subscribers');
  g.counts.fill(0);
  g.firstAt.fill(0);
  g.lastAt.fill(0);
  g.hist = new Histogram();
  if (args.stamped !== undefined) g.stamped = Boolean(args.stamped);
}

function subStop(): void {
  if (!group) return;
  for (const socket of group.sockets) socket.close();
  for (const socket of group.lean) socket.close();
  group = undefined;
}

// ---------------------------------------------------------------------------------------------
// Echo (the round-trip ceiling).

let echo: zmq.Router | undefined;

async function echoStart(args: Record<string, unknown>): Promise<void> {
  const router = new zmq.Router({ linger: 0 });
  await router.bind(String(args.endpoint));
  echo = router;
  void (async () => {
    try {
      for await (const frames of router) await router.send(frames);
    } catch {
      // closed
    }
  })();
}

let netEcho: Server | undefined;

/** Resolves to the port it listens on (127.0.0.1, chosen by the OS). */
async function netEchoStart(): Promise<number> {
  const server = createServer({ noDelay: true }, (socket) =>
    socket.on('data', (chunk) => socket.write(chunk)),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  netEcho = server;
  return (server.address() as { port: number }).port;
}

// ---------------------------------------------------------------------------------------------

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.cmd) {
    case 'sub.start':
      return subStart(req.args);
    case 'sub.stats':
      return subStats();
    case 'sub.reset':
      return subReset(req.args);
    case 'sub.stop':
      return subStop();
    case 'echo.start':
      return echoStart(req.args);
    case 'netecho.start':
      return netEchoStart();
    case 'exit':
      subStop();
      echo?.close();
      netEcho?.close();
      setTimeout(() => process.exit(0), 10);
      return undefined;
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
}

serveRequests(handle);
