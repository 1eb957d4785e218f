/**
 * The configurable limits of one real server: property count, TTL range and snapshot requests
 * per client per second. Each excess is dropped and counted by reason; the server keeps serving.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { connect, ServerRejectedError, type Client } from '../../src/index.js';
import { encodeKvMsg, encodeRequestId, Native } from '../../src/wire/index.js';
import { freePorts, metric, startSingle, waitFor, type ServerProcess } from '../helpers/index.js';

describe('limits (real server)', function () {
  this.timeout(30_000);
  let port: number;
  let server: ServerProcess;
  let client: Client;
  const sockets: zmq.Socket[] = [];

  const dropped = (socket: string, reason: string) =>
    metric(server.http, 'twinstar_dropped_messages_total', { socket, reason });

  before(async () => {
    port = await freePorts(5);
    server = startSingle(port, port + 4, [
      '--max-properties',
      '2',
      '--min-ttl-ms',
      '100',
      '--max-ttl-ms',
      '60000',
      '--snapshots-per-second',
      '3',
    ]);
    await server.ready('ACTIVE');
    client = await connect({ servers: [server.endpoint], mode: 'native', connectTimeoutMs: 10_000 });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await client?.close();
    await server?.kill();
  });

  it('drops CHP writes with too many properties or a TTL out of range, counted by reason', async () => {
    const pub = new zmq.Publisher({ linger: 0 });
    sockets.push(pub);
    pub.connect(`tcp://127.0.0.1:${port + 2}`);
    const kv = (key: string, properties: string) =>
      encodeKvMsg({ key, sequence: 0, uuid: '', properties, body: Buffer.from('v') });
    // A PUB drops until the collector's subscription arrives: send a marker until it lands.
    await waitFor(
      async () => {
        await pub.send(kv('/l/ready', ''));
        return client.get('/l/ready') !== undefined;
      },
      5000,
      'the collector connection',
    );
    await pub.send(kv('/l/props', 'a=1\nb=2\nc=3\n'));
    await pub.send(kv('/l/long', 'ttl=61\n'));
    await pub.send(kv('/l/short', 'ttl=0.05\n'));
    await pub.send(kv('/l/fine', 'a=1\nttl=30\n'));
    await waitFor(() => client.get('/l/fine') !== undefined, 5000, 'the valid write to land');
    await waitFor(
      async () =>
        (await dropped('collector', 'too-many-properties')) === 1 &&
        (await dropped('collector', 'ttl-out-of-range')) === 2,
      5000,
      'the three drops to be counted',
    );
    for (const key of ['/l/props', '/l/long', '/l/short']) expect(client.get(key), key).to.equal(undefined);
  });

  it('refuses a native write with a TTL out of range, saying why', async () => {
    try {
      await client.set('/l/native', 'v', { ttl: 3600 });
      expect.fail('the write was acknowledged');
    } catch (error) {
      expect(error).to.be.instanceOf(ServerRejectedError);
      expect((error as ServerRejectedError).reason).to.equal('ttl-out-of-range');
    }
    expect(await client.set('/l/native', 'v', { ttl: 1 })).to.be.above(0);
  });

  it('answers at most the configured snapshot requests per second per client and drops the rest', async () => {
    const dealer = new zmq.Dealer({ linger: 0 });
    sockets.push(dealer);
    dealer.connect(server.endpoint);
    const tags: string[] = [];
    void (async () => {
      for await (const [tag] of dealer) tags.push(tag!.toString());
    })().catch(() => undefined);
    const answered = () => tags.filter((t) => t === Native.SYNC_END).length;
    const before = await dropped('snapshot', 'rate-limited');
    const superseded = () => metric(server.http, 'twinstar_snapshot_refused_total', { reason: 'superseded' });
    const supersededBefore = await superseded();
    const started = Date.now();
    for (let i = 0; i < 20; i++)
      await dealer.send([Buffer.from(Native.SNAPSHOT), encodeRequestId(i), Buffer.from('/l/')]);
    await waitFor(
      async () => (await dropped('snapshot', 'rate-limited')) >= before + 10,
      5000,
      'the excess to be dropped',
    );
    // Every request was answered, dropped, or stopped by the next one from the same connection
    // (one snapshot stream per connection at a time: max-snapshot-streams-per-client).
    const admitted = async () => answered() + (await superseded()) - supersededBefore;
    await waitFor(
      async () => (await admitted()) + (await dropped('snapshot', 'rate-limited')) - before === 20,
      5000,
      'every request to be answered, superseded or dropped',
    );
    const elapsedSeconds = (Date.now() - started) / 1000;
    // A burst of 3, plus whatever refilled (3 per second) while the 20 were being sent.
    expect(answered()).to.be.at.least(1);
    expect(await admitted()).to.be.at.least(3);
    expect(await admitted()).to.be.at.most(3 + Math.ceil(3 * elapsedSeconds));
    expect(await client.set('/l/still', 'ok')).to.be.above(0);
  });
});
