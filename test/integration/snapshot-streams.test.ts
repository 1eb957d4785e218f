/**
 * Issue 13 B3: snapshot streams in progress are bounded. The probe's attack, scaled down, against
 * a real server at its default settings: a 100k-key map, one connection asking for a snapshot 20
 * times a second (inside the rate limit) without reading, and sockets that ask and leave.
 * Before: each stream held one closure per entry for up to 60 s and nothing capped them (one
 * connection took RSS from 243 MB to 2.5 GB in 10 s). Now the server's RSS stays bounded, the
 * streams of clients that left stop at once, and another client's snapshot is still served.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { connect, type Client } from '../../src/index.js';
import { encodeRequestId, ICANHAZ, Native, packBatch } from '../../src/wire/index.js';
import { freePorts, metric, ServerProcess, waitFor } from '../helpers/index.js';

const MiB = 1024 * 1024;
/** See memory-bounds.test.ts: freed large blocks go back to the system, so RSS shows what is held. */
const ALLOCATOR_ENV = { MALLOC_MMAP_THRESHOLD_: String(64 * 1024) };
const KEYS = 100_000;
const rss = (server: ServerProcess) => metric(server.http, 'twinstar_process_resident_memory_bytes');
const streams = (server: ServerProcess) => metric(server.http, 'twinstar_snapshot_streams');
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function uuidOf(n: number): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0xb3b3b3b3, 0);
  b.writeUInt32BE(n, 12);
  return b.toString('latin1');
}

describe('snapshot streams are bounded (issue 13 B3, real server, default limits)', function () {
  this.timeout(180_000);
  const sockets: zmq.Socket[] = [];
  const clients: Client[] = [];
  let server: ServerProcess | undefined;

  afterEach(async () => {
    for (const s of sockets.splice(0)) if (!s.closed) s.close();
    for (const c of clients.splice(0)) await c.close();
    await server?.kill();
    server = undefined;
  });

  /** A single server holding KEYS keys of 100 bytes, written with raw TSET batches. */
  async function filledServer(): Promise<ServerProcess> {
    const port = await freePorts(5);
    const s = (server = new ServerProcess({ role: 'single', port, httpPort: port + 4, env: ALLOCATOR_ENV }));
    await s.ready('ACTIVE');
    const writer = new zmq.Dealer({ linger: 0 });
    sockets.push(writer);
    writer.connect(s.endpoint);
    const body = Buffer.alloc(100, 'v');
    for (let batch = 0; batch < KEYS / 5000; batch++) {
      const entries = Array.from({ length: 5000 }, (_, i) => {
        const n = batch * 5000 + i;
        return { key: `/b3/${n}`, sequence: 0, uuid: uuidOf(n), properties: '', body, expiresAt: 0 };
      });
      await writer.send([Buffer.from(Native.SET), encodeRequestId(batch), packBatch(entries)]);
      const [tag] = await writer.receive();
      expect(tag!.toString()).to.equal(Native.ACK);
    }
    expect(await metric(s.http, 'twinstar_keys')).to.equal(KEYS);
    return s;
  }

  /**
   * A client connects while `hog` holds what the cap allows: it is refused (`reason`) and asks
   * again until the count reaches `refusals`; once the hog leaves it gets all 2000 keys.
   */
  async function servedOnceTheHogLeaves(
    s: ServerProcess,
    hog: zmq.Dealer,
    reason: string,
    refusals: number,
  ): Promise<void> {
    const patient = connect({ servers: [s.endpoint], mode: 'native', connectTimeoutMs: 60_000 });
    await waitFor(
      async () => (await metric(s.http, 'twinstar_snapshot_refused_total', { reason })) >= refusals,
      20_000,
      'the client to be refused and to ask again',
    );
    hog.close();
    const client = await patient;
    clients.push(client);
    expect(client.entries('').size).to.equal(2000);
  }

  it('a flood of snapshot requests that are never read, and clients that leave, hold bounded memory', async () => {
    const s = await filledServer();
    const before = await rss(s);
    let peak = before;
    let peakStreams = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rss(s).catch(() => 0));
        peakStreams = Math.max(peakStreams, await streams(s).catch(() => 0));
        await pause(100);
      }
    })();

    // The attacker: one connection, 20 ICANHAZ? a second for 5 s, reading nothing.
    const attacker = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 1 });
    sockets.push(attacker);
    attacker.connect(s.endpoint);
    // Five more: each asks for native snapshots, reads nothing, and leaves at once.
    const leavers = Array.from({ length: 5 }, () => {
      const d = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 1 });
      sockets.push(d);
      d.connect(s.endpoint);
      return d;
    });
    for (let i = 0; i < 100; i++) {
      await attacker.send([Buffer.from(ICANHAZ), Buffer.alloc(0)]);
      if (i === 20) {
        for (const [n, d] of leavers.entries())
          for (let r = 0; r < 4; r++)
            await d.send([Buffer.from(Native.SNAPSHOT), encodeRequestId(100 * n + r), Buffer.alloc(0)]);
      }
      if (i === 30) for (const d of leavers) d.close();
      await pause(50);
    }

    console.log(
      `      B3: RSS ${(before / MiB).toFixed(0)} MB -> peak ${(peak / MiB).toFixed(0)} MB after the attack`,
    );

    // A victim still gets its whole snapshot while the attacker stays connected.
    const asked = Date.now();
    const victim = await connect({ servers: [s.endpoint], mode: 'native', connectTimeoutMs: 60_000 });
    clients.push(victim);
    console.log(`      B3: the victim's snapshot took ${Date.now() - asked} ms (not asserted)`);
    expect(victim.entries('').size).to.equal(KEYS);
    // The streams metric works: the attack had streams in progress.
    expect(peakStreams, 'snapshot streams seen in progress during the attack').to.be.above(0);

    // The attacker leaves: its streams stop at once rather than after a deadline.
    attacker.close();
    await waitFor(async () => (await streams(s)) === 0, 10_000, 'the streams of gone clients to stop');
    sampling = false;
    await sampler;
    const after = await rss(s);
    console.log(
      `      B3: RSS ${(before / MiB).toFixed(0)} MB -> peak ${(peak / MiB).toFixed(0)} MB, ` +
        `after ${(after / MiB).toFixed(0)} MB; streams peak ${peakStreams}`,
    );
    expect((peak - before) / MiB, 'peak RSS growth in MB under the attack').to.be.below(500);
    // One connection has at most one stream: each new request stopped its previous one.
    expect(await metric(s.http, 'twinstar_snapshot_refused_total', { reason: 'superseded' })).to.be.above(50);
  });

  it('beyond max-snapshot-streams a native request gets TERROR busy, and the client retries', async () => {
    const port = await freePorts(5);
    const s = (server = new ServerProcess({
      role: 'single',
      port,
      httpPort: port + 4,
      extraArgs: ['--max-snapshot-streams', '1', '--client-queue', '100'],
    }));
    await s.ready('ACTIVE');
    const writer = await connect({ servers: [s.endpoint], mode: 'native', connectTimeoutMs: 10_000 });
    clients.push(writer);
    await Promise.all(Array.from({ length: 2000 }, (_, i) => writer.set(`/busy/${i}`, 'x'.repeat(10_000))));
    await writer.close();
    clients.splice(0);
    // A connection that reads nothing holds the one stream there may be (20 MB do not fit in
    // its pipe of 100 messages and the TCP buffers).
    const hog = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 1 });
    sockets.push(hog);
    hog.connect(s.endpoint);
    await hog.send([Buffer.from(ICANHAZ), Buffer.alloc(0)]);
    await waitFor(async () => (await streams(s)) === 1, 10_000, 'the hog stream');
    // Another request is refused with TERROR busy, and counted.
    const asker = new zmq.Dealer({ linger: 0 });
    sockets.push(asker);
    asker.connect(s.endpoint);
    await asker.send([Buffer.from(Native.SNAPSHOT), encodeRequestId(7), Buffer.alloc(0)]);
    const [tag, rid, reason] = await asker.receive();
    expect(tag!.toString()).to.equal(Native.ERROR);
    expect(rid).to.deep.equal(encodeRequestId(7));
    expect(reason!.toString()).to.equal('busy');
    expect(await metric(s.http, 'twinstar_snapshot_refused_total', { reason: 'server-busy' })).to.equal(1);
    // A client that meets 'busy' backs off and asks again: once the hog leaves, it is served.
    await servedOnceTheHogLeaves(s, hog, 'server-busy', 3);
  });

  it('beyond max-snapshot-bytes a stream is refused with TERROR busy and counted bytes-busy; the gauge stays within the budget', async () => {
    const port = await freePorts(5);
    const budget = 15_000_000;
    const s = (server = new ServerProcess({
      role: 'single',
      port,
      httpPort: port + 4,
      extraArgs: ['--max-snapshot-bytes', String(budget), '--client-queue', '1000'],
    }));
    await s.ready('ACTIVE');
    const writer = await connect({ servers: [s.endpoint], mode: 'native', connectTimeoutMs: 10_000 });
    clients.push(writer);
    // 2000 values of 10 kB: about 20 MB, more than a pipe of 1000 messages and the TCP buffers take.
    await Promise.all(Array.from({ length: 2000 }, (_, i) => writer.set(`/bytes/${i}`, 'x'.repeat(10_000))));
    await writer.close();
    clients.splice(0);
    const held = () => metric(s.http, 'twinstar_snapshot_stream_bytes');
    expect(await held(), 'nothing held before any stream').to.equal(0);
    const hog = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 1 });
    sockets.push(hog);
    hog.connect(s.endpoint);
    await hog.send([Buffer.from(ICANHAZ), Buffer.alloc(0)]);
    // The hog's stream reserves its worst case: a full pipe of its largest message, 1000 x ~10 kB.
    await waitFor(async () => (await held()) > 10_000_000, 10_000, "the hog stream's reservation");
    const reserved = await held();
    expect(reserved).to.be.below(11_000_000);
    expect(await streams(s)).to.equal(1);
    // A second stream of the same size does not fit: refused, told busy, counted; nothing more held.
    const asker = new zmq.Dealer({ linger: 0 });
    sockets.push(asker);
    asker.connect(s.endpoint);
    await asker.send([Buffer.from(Native.SNAPSHOT), encodeRequestId(9), Buffer.alloc(0)]);
    const [tag, rid, reason, detail] = await asker.receive();
    expect(tag!.toString()).to.equal(Native.ERROR);
    expect(rid).to.deep.equal(encodeRequestId(9));
    expect(reason!.toString()).to.equal('busy');
    expect(detail!.toString()).to.match(/bytes, limit 15000000/);
    expect(await metric(s.http, 'twinstar_snapshot_refused_total', { reason: 'bytes-busy' })).to.equal(1);
    expect(await metric(s.http, 'twinstar_snapshot_refused_total', { reason: 'server-busy' })).to.equal(0);
    expect(await held()).to.equal(reserved);
    // A client that meets 'busy' asks again, and is served once the hog leaves and frees its bytes.
    await servedOnceTheHogLeaves(s, hog, 'bytes-busy', 2);
    await waitFor(async () => (await held()) === 0, 10_000, 'the reservations to be released');
  });
});
