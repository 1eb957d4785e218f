/**
 * One clone server (role single) as a real process on 127.0.0.1, driven through real sockets:
 * the CHP wire contract, promises 1, 5, 6 and 7 for a single node.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { connect, type Client, type Update } from '../../src/index.js';
import {
  encodeIcanhaz,
  encodeKvMsg,
  encodeSequence,
  Native,
  encodeRequestId,
  decodeKvMsg,
} from '../../src/wire/index.js';
import { freePorts, metric, startSingle, waitFor, within, type ServerProcess } from '../helpers/index.js';

describe('clone server (single node, real sockets)', function () {
  this.timeout(60_000);
  let server: ServerProcess;
  let endpoint: string;
  let port: number;
  const clients: Client[] = [];

  async function client(subtree = '', mode: 'native' | 'chp' | 'auto' = 'native'): Promise<Client> {
    const c = await connect({ servers: [endpoint], subtree, mode });
    clients.push(c);
    return c;
  }

  before(async () => {
    port = await freePorts(5);
    server = startSingle(port, port + 4, ['--max-value-bytes', String(128 * 1024)]);
    endpoint = server.endpoint;
    await server.ready('ACTIVE');
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  after(async () => {
    expect(await server.stop()).to.equal(0);
  });

  it('gives a late joiner the full snapshot, then live updates with no gap and no duplicate', async () => {
    const writer = await client('/late/');
    for (let i = 0; i < 300; i++) await writer.set(`/late/k${i}`, `v${i}`);
    const joiner = await client('/late/');
    const seen: Update[] = [];
    joiner.on('update', (u) => seen.push(u));
    expect(joiner.entries().size).to.equal(300);
    const acked: number[] = [];
    for (let i = 300; i < 600; i++) acked.push(await writer.set(`/late/k${i}`, `v${i}`));
    await waitFor(() => joiner.entries().size === 600, 5000, 'the joiner to see all 600 keys');
    const seqs = seen.map((u) => u.seq);
    expect(seqs).to.deep.equal(acked, 'every live update exactly once, in order');
    for (let i = 0; i < 600; i++) expect(joiner.getString(`/late/k${i}`)).to.equal(`v${i}`);
  });

  it('deletes: subscribers see the delete and a new snapshot no longer has the key', async () => {
    const a = await client('/del/');
    await a.set('/del/x', '1');
    const b = await client('/del/');
    expect(b.getString('/del/x')).to.equal('1');
    const deleted = new Promise<Update>((resolve) => b.on('update', (u) => u.deleted && resolve(u)));
    const seq = await a.delete('/del/x');
    const u = await within(deleted, 5000, 'delete event');
    expect(u).to.include({ key: '/del/x', deleted: true, seq });
    const c = await client('/del/');
    expect(c.get('/del/x')).to.equal(undefined);
  });

  it('expires a TTL key as a sequenced delete that subscribers see', async () => {
    const a = await client('/ttl/');
    const setAt = Date.now();
    const seq = await a.set('/ttl/e', 'soon gone', { ttl: 1 });
    const expiry = new Promise<Update>((resolve) =>
      a.on('update', (u) => u.key === '/ttl/e' && u.deleted && resolve(u)),
    );
    const u = await within(expiry, 5000, 'TTL expiry');
    expect(Date.now() - setAt).to.be.at.least(950, 'not before its deadline');
    expect(u.seq).to.be.greaterThan(seq);
    const late = await client('/ttl/');
    expect(late.get('/ttl/e')).to.equal(undefined);
  });

  it('carries 64 KiB values intact through writes, updates and snapshots', async () => {
    const big = Buffer.alloc(64 * 1024, 0);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const a = await client('/big/');
    const watcher = await client('/big/');
    const got = new Promise<Update>((resolve) =>
      watcher.on('update', (u) => u.key === '/big/v' && resolve(u)),
    );
    await a.set('/big/v', big);
    expect((await within(got, 5000, 'big update')).value!.equals(big)).to.equal(true);
    const late = await client('/big/');
    expect(late.get('/big/v')!.equals(big)).to.equal(true);
  });

  it('serves 50 clients snapshotting at once', async () => {
    const writer = await client('/fifty/');
    await Promise.all(Array.from({ length: 2000 }, (_, i) => writer.set(`/fifty/${i}`, `v${i}`)));
    const before = await metric(server.http, 'twinstar_snapshots_total');
    const many = await Promise.all(Array.from({ length: 50 }, () => client('/fifty/')));
    for (const c of many) expect(c.entries().size).to.equal(2000);
    expect((await metric(server.http, 'twinstar_snapshots_total')) - before).to.be.at.least(50);
  });

  it('filters snapshots and updates by subtree', async () => {
    const all = await client('');
    await all.set('/sub/a/1', 'in');
    await all.set('/sub/b/1', 'out');
    const a = await client('/sub/a/');
    expect([...a.entries().keys()]).to.deep.equal(['/sub/a/1']);
    const keys: string[] = [];
    a.on('update', (u) => keys.push(u.key));
    await all.set('/sub/b/2', 'out');
    const last = await all.set('/sub/a/2', 'in');
    await waitFor(() => a.sequence >= last, 5000, 'the subtree client to catch up');
    expect(keys).to.deep.equal(['/sub/a/2']);
  });

  it('accepts plain CHP clients: ICANHAZ? snapshot, KVSET through the collector, KVPUB updates', async () => {
    const native = await client('/chp/');
    await native.set('/chp/seed', 'x');
    const plain = await client('/chp/', 'chp');
    expect(plain.mode).to.equal('chp');
    expect(plain.getString('/chp/seed')).to.equal('x');
    await plain.set('/chp/from-plain', 'y'); // fire-and-forget KVSET
    await waitFor(
      () => native.getString('/chp/from-plain') === 'y',
      5000,
      'the KVSET to be applied and published',
    );
    await waitFor(
      () => plain.getString('/chp/from-plain') === 'y',
      5000,
      'the plain client to receive KVPUB',
    );
  });

  it('drops eight kinds of malformed traffic, counts each by reason, and keeps serving', async () => {
    const pub = new zmq.Publisher({ linger: 0 });
    pub.connect(`tcp://127.0.0.1:${port + 2}`);
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(endpoint);
    try {
      const uuid = Buffer.alloc(16, 7);
      const good = (key: string) =>
        encodeKvMsg({
          key,
          sequence: 0,
          uuid: uuid.toString('latin1'),
          properties: '',
          body: Buffer.from('v'),
        });
      const bad: [string, Buffer[]][] = [
        ['frame-count', [Buffer.from('/m/a'), encodeSequence(0), uuid]],
        ['empty-key', [Buffer.alloc(0), encodeSequence(0), uuid, Buffer.alloc(0), Buffer.from('v')]],
        [
          'key-encoding',
          [Buffer.from([0x2f, 0xff, 0xfe]), encodeSequence(0), uuid, Buffer.alloc(0), Buffer.from('v')],
        ],
        [
          'sequence-size',
          [Buffer.from('/m/b'), Buffer.from([1, 2, 3]), uuid, Buffer.alloc(0), Buffer.from('v')],
        ],
        [
          'properties-syntax',
          [Buffer.from('/m/c'), encodeSequence(0), uuid, Buffer.from('ttl30'), Buffer.from('v')],
        ],
        [
          'ttl-invalid',
          [Buffer.from('/m/d'), encodeSequence(0), uuid, Buffer.from('ttl=soon\n'), Buffer.from('v')],
        ],
        [
          // Just over the limit: a frame far over it never reaches the codec, because the
          // collector's maxMessageSize disconnects its sender (memory-bounds.test.ts).
          'body-too-large',
          [Buffer.from('/m/e'), encodeSequence(0), uuid, Buffer.alloc(0), Buffer.alloc(128 * 1024 + 1)],
        ],
        [
          'key-too-long',
          [Buffer.alloc(5000, 0x61), encodeSequence(0), uuid, Buffer.alloc(0), Buffer.from('v')],
        ],
      ];
      const before: Record<string, number> = {};
      for (const [reason] of bad)
        before[reason] = await metric(server.http, 'twinstar_dropped_messages_total', {
          socket: 'collector',
          reason,
        });
      // The PUB drops until its subscription has arrived: send a marker until it is applied.
      const watcher = await client('/m/');
      await waitFor(
        async () => {
          await pub.send(good('/m/ready'));
          return watcher.get('/m/ready') !== undefined;
        },
        5000,
        'the collector connection',
      );
      for (const [, frames] of bad) await pub.send(frames);
      // Snapshot socket: unknown command, ICANHAZ? with a missing frame, TSET with a truncated batch, TSNAP without request id.
      const snapshotBefore = await metric(server.http, 'twinstar_dropped_messages_total', {
        socket: 'snapshot',
      });
      await dealer.send([Buffer.from('GIMME')]);
      await dealer.send([Buffer.from('ICANHAZ?')]);
      await dealer.send([Buffer.from(Native.SET), encodeRequestId(1), Buffer.from([0, 9, 1])]);
      await dealer.send([Buffer.from(Native.SNAPSHOT)]);
      // The malformed write batch is refused out loud (its request id was readable); the rest get silence.
      const [tag, rid, reason] = await within(dealer.receive(), 5000, 'the TERROR for the malformed batch');
      expect([tag!.toString(), rid!.readUInt32BE(), reason!.toString()]).to.deep.equal([
        Native.ERROR,
        1,
        'batch-truncated',
      ]);
      for (const [reason] of bad) {
        await waitFor(
          async () =>
            (await metric(server.http, 'twinstar_dropped_messages_total', {
              socket: 'collector',
              reason,
            })) ===
            before[reason]! + 1,
          5000,
          `drop counted as ${reason}`,
        );
      }
      await waitFor(
        async () =>
          (await metric(server.http, 'twinstar_dropped_messages_total', { socket: 'snapshot' })) ===
          snapshotBefore + 4,
        5000,
        'four snapshot-socket drops',
      );
      // Still serving, state intact.
      const seq = await watcher.set('/m/after', 'ok');
      expect(seq).to.be.greaterThan(0);
      const fresh = await client('/m/');
      expect([...fresh.entries().keys()].sort()).to.deep.equal(['/m/after', '/m/ready']);
      // And a raw RFC 12 snapshot still works byte for byte.
      await dealer.send(encodeIcanhaz('/m/'));
      const keys: string[] = [];
      for (;;) {
        const msg = decodeKvMsg(await within(dealer.receive(), 5000, 'snapshot reply'));
        if (msg.key === 'KTHXBAI') {
          expect(msg.body.toString()).to.equal('/m/');
          expect(msg.sequence).to.be.at.least(seq);
          break;
        }
        keys.push(msg.key);
      }
      expect(keys.sort()).to.deep.equal(['/m/after', '/m/ready']);
    } finally {
      pub.close();
      dealer.close();
    }
  });

  it('sends HUGZ with the current sequence on the publisher', async () => {
    const sub = new zmq.Subscriber({ linger: 0 });
    sub.connect(`tcp://127.0.0.1:${port + 1}`);
    sub.subscribe('HUGZ');
    try {
      const frames = await within(sub.receive(), 5000, 'a HUGZ');
      const msg = decodeKvMsg(frames);
      expect(msg.key).to.equal('HUGZ');
      expect(msg.body.length).to.equal(0);
      expect(msg.sequence).to.be.at.least(0);
    } finally {
      sub.close();
    }
  });

  it('sends a new subscriber a HUGZ at once, not a heartbeat later, so an auto-mode client learns the protocol at once', async () => {
    // A heartbeat of 20 s: the timer's first HUGZ is 20 s away; only the early one can arrive.
    const slowPort = await freePorts(5);
    const slow = startSingle(slowPort, slowPort + 4, ['--heartbeat-ms', '20000', '--failover-ms', '60000']);
    const sub = new zmq.Subscriber({ linger: 0 });
    try {
      await slow.ready('ACTIVE');
      sub.connect(`tcp://127.0.0.1:${slowPort + 1}`);
      sub.subscribe('HUGZ');
      const frames = await within(sub.receive(), 5000, 'a HUGZ soon after subscribing');
      const msg = decodeKvMsg(frames);
      expect(msg.key).to.equal('HUGZ');
      expect(msg.properties).to.include('twinstar=1');
      // and a client in the default ('auto') mode gets its snapshot long before the first heartbeat
      const c = await within(connect({ servers: [slow.endpoint] }), 5000, 'an auto-mode connect');
      clients.push(c);
      expect(c.mode).to.equal('native');
    } finally {
      sub.close();
      await slow.stop();
    }
  });
});
