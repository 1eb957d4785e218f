/**
 * Issue 13 B4: the attacks of the black-box probe, scaled down, against real server processes at
 * their default settings. Each test measures the server's resident memory from its own /metrics
 * (twinstar_process_resident_memory_bytes) and asserts a bound well below what the same attack
 * held before the limits existed (figures in docs/configuration.md, Memory bounds).
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { connect, type Client } from '../../src/index.js';
import { encodeKvMsg, encodeRequestId, ICANHAZ, Native } from '../../src/wire/index.js';
import { freePorts, metric, pairOptions, pairPorts, ServerProcess, waitFor } from '../helpers/index.js';

const MiB = 1024 * 1024;
/**
 * glibc keeps freed large blocks for reuse once it has freed one that was mmapped (its mmap
 * threshold grows), so RSS would show the peak of what was ever received rather than what the
 * server holds. A fixed threshold hands every block of 64 KiB or more back when it is freed:
 * RSS then measures what is held, which is what these limits bound.
 */
const ALLOCATOR_ENV = { MALLOC_MMAP_THRESHOLD_: String(64 * 1024) };
const rss = (server: ServerProcess) => metric(server.http, 'twinstar_process_resident_memory_bytes');

/** Samples a server's RSS every 100 ms until stopped; `peak` is the highest seen. */
function rssSampler(server: ServerProcess) {
  let peak = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      peak = Math.max(peak, await rss(server).catch(() => 0));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    get peak() {
      return peak;
    },
    async stop() {
      running = false;
      await done;
      return peak;
    },
  };
}

describe('memory bounds under the B4 attacks (real servers, default limits)', function () {
  this.timeout(120_000);
  const sockets: zmq.Socket[] = [];
  const servers: ServerProcess[] = [];
  const clients: Client[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    for (const c of clients.splice(0)) await c.close();
    for (const s of servers.splice(0)) await s.kill();
  });

  async function single(): Promise<ServerProcess> {
    const port = await freePorts(5);
    const server = new ServerProcess({ role: 'single', port, httpPort: port + 4, env: ALLOCATOR_ENV });
    servers.push(server);
    await server.ready('ACTIVE');
    return server;
  }

  it('replay log: one key overwritten 400 times with 1 MiB values stays within its byte budget', async () => {
    // Before: counted, not sized. 1,500 such writes took RSS from 66 MB to 1,609 MB. Now the log
    // holds at most replay-log-bytes (64 MiB by default); the margin covers what the allocator
    // keeps of freed receive buffers. 400 MiB written is enough to tell the two apart: a log
    // that held them all would grow past the bound (checked by running the test with a 1 GiB
    // budget), and 1,000 writes took 40 s of CI, mostly page faults (the fixed mmap threshold).
    const server = await single();
    const client = await connect({ servers: [server.endpoint], mode: 'native', connectTimeoutMs: 10_000 });
    clients.push(client);
    await client.set('/b4/warm', 'x');
    const before = await rss(server);
    const value = Buffer.alloc(MiB, 7);
    for (let i = 0; i < 400; i += 10) {
      await Promise.all(Array.from({ length: 10 }, () => client.set('/b4/one', value)));
    }
    expect(await metric(server.http, 'twinstar_keys')).to.equal(2);
    const after = await rss(server);
    const grew = (after - before) / MiB;
    console.log(`      replay log: RSS ${(before / MiB).toFixed(0)} MB -> ${(after / MiB).toFixed(0)} MB`);
    expect(grew, 'RSS growth in MB after 400 x 1 MiB overwrites').to.be.below(64 + 236);
    expect(await metric(server.http, 'twinstar_replay_log_bytes')).to.be.at.most(64 * MiB);
    expect(await metric(server.http, 'twinstar_replay_log_evicted_total')).to.be.above(0);
  });

  it('ICANHAZ?: 40 requests with a 10 MB subtree, never read, are dropped and hold nothing', async () => {
    // Before: the server queued a 10 MB KTHXBAI per request for a client that never reads
    // (20 requests held 375 MB for as long as it stayed). Now a subtree above max-subtree-bytes
    // is dropped and counted.
    const server = await single();
    const before = await rss(server);
    // A client that reads almost nothing: its queue of one fills, then TCP, then the server's.
    const dealer = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 1 });
    sockets.push(dealer);
    dealer.connect(server.endpoint);
    const subtree = Buffer.alloc(10 * MiB, 'a');
    const handled = async () =>
      (await metric(server.http, 'twinstar_snapshots_total', { kind: 'chp' })) +
      (await metric(server.http, 'twinstar_dropped_messages_total', { reason: 'subtree-too-long' }));
    // Two bursts within the snapshot rate limit (20 per second): each request is served or dropped.
    for (let burst = 1; burst <= 2; burst++) {
      for (let i = 0; i < 20; i++) await dealer.send([Buffer.from(ICANHAZ), subtree]);
      await waitFor(async () => (await handled()) >= 20 * burst, 30_000, `burst ${burst} to be handled`);
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the rate limit refills
    }
    const after = await rss(server);
    console.log(`      ICANHAZ?: RSS ${(before / MiB).toFixed(0)} MB -> ${(after / MiB).toFixed(0)} MB`);
    expect((after - before) / MiB, 'RSS growth in MB held for the silent client').to.be.below(200);
    expect(
      await metric(server.http, 'twinstar_dropped_messages_total', {
        socket: 'snapshot',
        reason: 'subtree-too-long',
      }),
    ).to.equal(40);
  });

  it('TFOLLOW: 8 followers with 16 prefixes of 10 MB each are refused with TERROR and hold nothing', async function () {
    // Before: every prefix was kept for as long as the follower stayed (220 MB per follower).
    // Now a prefix above max-subtree-bytes gets TERROR subtree-too-long. What the server
    // received is garbage it collects as the attack goes on, so RSS stays bounded.
    this.timeout(180_000); // on old servers, each follower waits 8 s for an answer that never comes
    const server = await single();
    const before = await rss(server);
    const sampler = rssSampler(server);
    const errors: string[] = [];
    const prefix = Buffer.alloc(10 * MiB, 'p');
    for (let f = 0; f < 8; f++) {
      const dealer = new zmq.Dealer({ linger: 0 });
      sockets.push(dealer);
      dealer.connect(server.endpoint);
      void (async () => {
        for await (const [tag, , reason] of dealer)
          if (tag?.toString() === Native.ERROR) errors.push(reason!.toString());
      })().catch(() => undefined);
      await dealer.send([Buffer.from(Native.FOLLOW), encodeRequestId(f), ...Array(16).fill(prefix)]);
      // Old servers answer nothing to TFOLLOW (the assertions below say so): go on after a while.
      await waitFor(() => errors.length > f, 8000, `follower ${f} to be refused`).catch(() => undefined);
    }
    const after = await rss(server);
    const peak = await sampler.stop();
    console.log(
      `      TFOLLOW: RSS ${(before / MiB).toFixed(0)} MB -> ${(after / MiB).toFixed(0)} MB (peak ${(peak / MiB).toFixed(0)} MB)`,
    );
    expect((after - before) / MiB, 'RSS growth in MB held for eight followers').to.be.below(600);
    expect(errors).to.deep.equal(Array(8).fill('subtree-too-long'));
  });

  it('TFOLLOW: more prefixes than max-follow-prefixes get TERROR too-many-prefixes; 16 are followed', async () => {
    const server = await single();
    const replies: Buffer[][] = [];
    const dealer = new zmq.Dealer({ linger: 0 });
    sockets.push(dealer);
    dealer.connect(server.endpoint);
    void (async () => {
      for await (const frames of dealer) replies.push(frames);
    })().catch(() => undefined);
    const prefixes = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`/f${i}/`));
    await dealer.send([Buffer.from(Native.FOLLOW), encodeRequestId(1), ...prefixes(17)]);
    await waitFor(() => replies.length === 1, 10_000, 'the TERROR');
    expect(replies[0]![0]!.toString()).to.equal(Native.ERROR);
    expect(replies[0]![2]!.toString()).to.equal('too-many-prefixes');
    expect(
      await metric(server.http, 'twinstar_dropped_messages_total', { reason: 'too-many-prefixes' }),
    ).to.equal(1);
    // 16 is the limit: that request is followed, so a write under the last prefix arrives.
    await dealer.send([Buffer.from(Native.FOLLOW), encodeRequestId(2), ...prefixes(16)]);
    const client = await connect({ servers: [server.endpoint], mode: 'native', connectTimeoutMs: 10_000 });
    clients.push(client);
    await waitFor(
      async () => {
        await client.set('/f15/x', 'v');
        return replies.some((r) => r[0]!.toString() === Native.PUBLISH && r[1]!.toString() === '/f15/x');
      },
      10_000,
      'the followed update',
    );
  });

  it('collector: frames above the largest message the limits allow disconnect the sender unread', async () => {
    // Before: no socket set maxMessageSize, so ZeroMQ read each frame whole (here 8 x 64 MB)
    // before the codec dropped it as too large. Now the socket refuses it from its header.
    const server = await single();
    const client = await connect({ servers: [server.endpoint], mode: 'native', connectTimeoutMs: 10_000 });
    clients.push(client);
    const pub = new zmq.Publisher({ linger: 0, sendHighWaterMark: 100 });
    sockets.push(pub);
    pub.connect(`tcp://127.0.0.1:${Number(server.endpoint.split(':')[2]) + 2}`);
    const kv = (key: string, body: Buffer) =>
      encodeKvMsg({ key, sequence: 0, uuid: '', properties: '', body });
    // The channel works: a valid write through this very socket lands.
    await waitFor(
      async () => {
        await pub.send(kv('/b4/ready', Buffer.from('ok')));
        return client.get('/b4/ready') !== undefined;
      },
      10_000,
      'the collector connection',
    );
    const before = await rss(server);
    const sampler = rssSampler(server);
    let cut = false;
    pub.events.on('disconnect', () => (cut = true));
    const huge = Buffer.alloc(64 * MiB, 1);
    for (let i = 0; i < 8; i++) await pub.send(kv(`/b4/huge${i}`, huge));
    // Old servers read and drop them (counted as body-too-large); new ones cut the connection.
    await waitFor(
      async () =>
        cut ||
        (await metric(server.http, 'twinstar_dropped_messages_total', { reason: 'body-too-large' })) === 8,
      30_000,
      'the frames to be read or refused',
    );
    await new Promise((resolve) => setTimeout(resolve, 500)); // a last sample after the cut
    const peak = await sampler.stop();
    console.log(`      collector: RSS ${(before / MiB).toFixed(0)} MB -> peak ${(peak / MiB).toFixed(0)} MB`);
    expect(
      await metric(server.http, 'twinstar_dropped_messages_total', { reason: 'body-too-large' }),
      'oversized frames that reached the codec',
    ).to.equal(0);
    expect((peak - before) / MiB, 'peak RSS growth in MB').to.be.below(100);
  });

  it('pending list: 1,000 x 1 MiB CHP writes sent only to the passive stay within its byte budget', async () => {
    // Before: counted, not sized (pending-max 10,000): 1,500 such writes took +1.4 GB on the
    // passive. Now it holds at most pending-max-bytes (64 MiB) and counts what it dropped.
    const ports = await pairPorts();
    const { primary, backup } = pairOptions(ports);
    const p = new ServerProcess({ ...primary, env: ALLOCATOR_ENV });
    const b = new ServerProcess({ ...backup, env: ALLOCATOR_ENV });
    servers.push(p, b);
    await p.ready('ACTIVE', 20_000);
    await b.ready('PASSIVE', 20_000);
    const pub = new zmq.Publisher({ linger: 0, sendHighWaterMark: 10_000 });
    sockets.push(pub);
    pub.connect(`tcp://127.0.0.1:${ports.backup.port + 2}`);
    let n = 0;
    const kv = (body: Buffer) =>
      encodeKvMsg({ key: `/b4/p${n}`, sequence: 0, uuid: uuidOf(++n), properties: '', body });
    const held = async () =>
      (await metric(b.http, 'twinstar_pending_updates')) +
      (await metric(b.http, 'twinstar_pending_dropped_total'));
    // The channel works: a marker reaches the passive's pending list.
    await waitFor(
      async () => {
        await pub.send(kv(Buffer.from('m')));
        return (await held()) > 0;
      },
      10_000,
      'the passive to collect a marker',
    );
    // Markers the PUB sent before the subscription arrived are lost; wait for the rest to land.
    let last = -1;
    const base = await waitFor(
      async () => {
        const now = await held();
        const stable = now === last;
        last = now;
        return stable && now > 0 ? now : 0;
      },
      10_000,
      'the marker count to settle',
      300,
    );
    const before = await rss(b);
    const value = Buffer.alloc(MiB, 3);
    for (let i = 0; i < 1000; i++) await pub.send(kv(value));
    await waitFor(
      async () => (await held()) === base + 1000,
      20_000,
      'the passive to collect the 1,000 writes',
    );
    const after = await rss(b);
    console.log(
      `      pending: passive RSS ${(before / MiB).toFixed(0)} MB -> ${(after / MiB).toFixed(0)} MB`,
    );
    expect((after - before) / MiB, 'passive RSS growth in MB').to.be.below(64 + 236);
    expect(await metric(b.http, 'twinstar_pending_bytes')).to.be.at.most(64 * MiB);
    expect(await metric(b.http, 'twinstar_pending_dropped_total', { reason: 'bytes' })).to.be.above(900);
  });
});

/** A distinct 16-byte uuid (latin1, as KvMsg carries it) for the n-th write. */
function uuidOf(n: number): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(n, 12);
  b.writeUInt32BE(0xb4b4b4b4, 0);
  return b.toString('latin1');
}
