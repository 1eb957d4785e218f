/**
 * Micro-benchmarks in one process: the CHP codec, packed batches, the de-duplication window's
 * memory per uuid, the store at a million keys (commit time and memory), point-in-time snapshots, and the raw per-message cost of CURVE.
 *   npm run bench:micro        (runs with --expose-gc so memory is measured after a collection)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as zmq from 'zeromq';
import { decodeKvMsg, encodeKvMsg, packBatch, unpackBatch } from '../src/wire/index.js';
import { newUuid, Store, UuidWindow } from '../src/core/index.js';
import { curveClientOptions, curveServerOptions, generateKeyPair } from '../src/security/index.js';
import { packedViewMessages } from '../src/server/view-streams.js';

const body = Buffer.alloc(100, 120);
const msg = { key: '/orders/eu/12345', sequence: 123_456, uuid: newUuid(), properties: 'ttl=30\n', body };
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function rate(label: string, calls: number, perCall: number, run: () => void): void {
  for (let i = 0; i < calls / 10; i++) run(); // warm up
  const started = performance.now();
  for (let i = 0; i < calls; i++) run();
  const ms = performance.now() - started;
  console.log(`${label.padEnd(44)} ${Math.round(((calls * perCall) / ms) * 1000).toLocaleString('en')} /s`);
}

const frames = encodeKvMsg(msg);
rate('kvmsg encode (5 frames, 100-byte body)', 1_000_000, 1, () => encodeKvMsg(msg));
rate('kvmsg decode (5 frames, 100-byte body)', 1_000_000, 1, () => decodeKvMsg(frames));
const entries = Array.from({ length: 1000 }, (_, i) => ({ ...msg, key: `/orders/${i}`, expiresAt: 0 }));
const packed = packBatch(entries);
rate('packBatch (entries)', 2000, 1000, () => packBatch(entries));
rate('unpackBatch (entries)', 2000, 1000, () => unpackBatch(packed));

// The de-duplication window's memory per remembered uuid: its ring slot (the 16 uuid bytes, the
// sequence, the time and its hash: 36 B) and its share of the hash index (8 to 16 B). They are typed arrays,
// outside the JS heap, so this counts heapUsed + arrayBuffers (after the sweep of the arrays that
// resizes left behind); the window keeps no uuid string or other object (heap ~0 B). The uuid
// strings made here are garbage once set: a server's entries hold their own, not counted here.
const windowMemory = () => {
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
};
gc();
const memoryBefore = windowMemory();
const heapBefore = process.memoryUsage().heapUsed;
const window = new UuidWindow({ horizonMs: 60_000, maxSize: 1_000_000 });
for (let i = 0; i < 1_000_000; i++) window.set(newUuid(), i + 1, i / 100);
gc();
await sleep(100);
gc();
console.log(
  `${'memory per remembered uuid (1M in window)'.padEnd(44)} ${Math.round((windowMemory() - memoryBefore) / window.size)} B (heap ${Math.round((process.memoryUsage().heapUsed - heapBefore) / window.size)} B)`,
);

gc();
const before = process.memoryUsage().rss;
const store = new Store({ replayLogSize: 100_000, dedupeSize: 100_000, dedupeMs: 30_000 });
let started = performance.now();
for (let i = 0; i < 1_000_000; i++) {
  store.commit({ key: `/k/${i}`, uuid: newUuid(), properties: '', body: Buffer.from(body), expiresAt: 0 }, 0);
}
console.log(`${'commit 1M keys (100-byte values)'.padEnd(44)} ${Math.round(performance.now() - started)} ms`);
gc();
const { rss, heapUsed } = process.memoryUsage();
console.log(
  `${'RSS for 1M keys, above the empty process'.padEnd(44)} ${Math.round((rss - before) / 1e6)} MB (heap ${Math.round(heapUsed / 1e6)} MB)`,
);
started = performance.now();
const { view } = store.view('');
console.log(
  `${'point-in-time view of 1M keys (taken)'.padEnd(44)} ${(performance.now() - started).toFixed(1)} ms`,
);
started = performance.now();
let copied = 0;
for (const packed of packedViewMessages(view.again(), undefined, { maxEntries: 1000, maxBytes: Infinity })) {
  copied += packed.length;
}
console.log(
  `${'copy 1M packed keys in 1000-entry chunks'.padEnd(44)} ${Math.round(performance.now() - started)} ms (${Math.round(copied / 1e6)} MB)`,
);
started = performance.now();
const { entries: all } = await store.read('');
console.log(
  `${'read 1M keys as objects (decoded)'.padEnd(44)} ${Math.round(performance.now() - started)} ms`,
);
started = performance.now();
for (let i = 0; i < all.length; i += 1000) packBatch(all.slice(i, i + 1000));
console.log(
  `${'pack 1M keys in 1000-entry chunks'.padEnd(44)} ${Math.round(performance.now() - started)} ms`,
);

// CURVE's per-message cost on raw sockets (same process, loopback), where nothing amortises it:
// PUB->SUB messages/s and DEALER->ROUTER round trips/s, without and with CurveZMQ.
const serverKeys = generateKeyPair();
const clientKeys = generateKeyPair();
for (const secure of [false, true]) {
  const server = secure ? curveServerOptions(serverKeys, 'snapshot') : {};
  const client = secure ? curveClientOptions(clientKeys, serverKeys.publicKey) : {};
  const label = secure ? 'with CURVE' : 'plain';
  const pub = new zmq.Publisher({ linger: 0, sendHighWaterMark: 0, ...server });
  const port = await pub.bind('tcp://127.0.0.1:*').then(() => pub.lastEndpoint!);
  const sub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 0, ...client });
  sub.connect(port);
  sub.subscribe();
  // The subscription reaches the PUB asynchronously: send until the first message arrives.
  let joined = false;
  const first = sub.receive().then(() => (joined = true));
  while (!joined) {
    await pub.send(body);
    await sleep(5);
  }
  await first;
  const n = 200_000;
  const receiving = (async () => {
    for (let i = 0; i < n; i++) await sub.receive();
  })();
  started = performance.now();
  for (let i = 0; i < n; i++) await pub.send(body);
  await receiving;
  console.log(
    `${`PUB->SUB 100-byte messages, ${label}`.padEnd(44)} ${Math.round(n / ((performance.now() - started) / 1000))} msg/s`,
  );
  pub.close();
  sub.close();

  const router = new zmq.Router({ linger: 0, ...server });
  const rport = await router.bind('tcp://127.0.0.1:*').then(() => router.lastEndpoint!);
  const dealer = new zmq.Dealer({ linger: 0, ...client });
  dealer.connect(rport);
  void (async () => {
    for await (const [id, m] of router) await router.send([id!, m!]);
  })().catch(() => undefined);
  const trips = 20_000;
  for (let i = 0; i < 500; i++) await dealer.send(body).then(() => dealer.receive());
  started = performance.now();
  for (let i = 0; i < trips; i++) {
    await dealer.send(body);
    await dealer.receive();
  }
  console.log(
    `${`DEALER->ROUTER round trips, ${label}`.padEnd(44)} ${Math.round(trips / ((performance.now() - started) / 1000))} rt/s`,
  );
  dealer.close();
  router.close();
}
