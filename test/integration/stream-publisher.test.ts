/**
 * The update stream's publisher on Node's sockets (src/server/stream-publisher.ts), against real
 * peers on loopback: libzmq SUBs (zeromq.js) and raw TCP sockets speaking ZMTP by hand. It must
 * keep what the server relied on from libzmq's XPUB: prefix matching, 'allSubs' subscription
 * events, a bounded queue per subscriber (one that stops reading is disconnected), disconnecting
 * a peer that is no SUB or breaks the protocol, and a bind error that names the endpoint.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { StreamPublisher, type StreamPublisherOptions } from '../../src/zmq/stream-publisher.js';
import { bindError } from '../../src/server.js';
import { zmtp } from '../../src/wire/index.js';
import { freePorts, waitFor, within } from '../helpers/index.js';
import type { ServerConfig } from '../../src/config/index.js';

interface Seen {
  subscribed: string[];
  unsubscribed: string[];
  connections: number;
}

async function publisher(options: Partial<StreamPublisherOptions> = {}) {
  const seen: Seen = { subscribed: [], unsubscribed: [], connections: 0 };
  const pub = new StreamPublisher({
    highWaterMark: 1000,
    maxQueueBytes: 1024 ** 3,
    maxFrameBytes: 1024,
    onSubscribe: (topic) => seen.subscribed.push(topic.toString()),
    onUnsubscribe: (topic) => seen.unsubscribed.push(topic.toString()),
    onConnection: (connected) => (seen.connections += connected ? 1 : -1),
    onAcceptFailed: () => undefined,
    ...options,
  });
  const port = await freePorts(1);
  const endpoint = `tcp://127.0.0.1:${port}`;
  await pub.listen(endpoint);
  return { pub, seen, endpoint, port };
}

const frames = (topic: string, body = 'x') => [Buffer.from(topic), Buffer.from(body)];

/** A libzmq SUB on `endpoint`, subscribed to `topics`, once the publisher holds the subscriptions. */
async function libzmqSub(endpoint: string, seen: Seen, topics: string[]): Promise<zmq.Subscriber> {
  const sub = new zmq.Subscriber({ linger: 0 });
  const before = seen.subscribed.length;
  sub.connect(endpoint);
  for (const t of topics) sub.subscribe(t);
  await waitFor(() => seen.subscribed.length >= before + topics.length || undefined, 5000, 'subscriptions');
  return sub;
}

async function receive(sub: zmq.Subscriber): Promise<string> {
  const [topic, body] = await within(sub.receive(), 5000, 'a message');
  return `${topic!.toString()}:${body!.toString()}`;
}

/** A ZMTP reader of a raw peer's stream, and the first frame of each message it read. */
function topicsRead(): { got: string[]; feed: (chunk: Buffer) => void } {
  const got: string[] = [];
  const reader = new zmtp.ZmtpReader({
    greeted: () => undefined,
    reply: () => undefined,
    message: (f) => got.push(f[0]!.toString()),
  });
  return { got, feed: (chunk) => reader.feed(chunk) };
}

/**
 * A raw TCP peer that sends a ZMTP greeting and READY of `socketType`, then `then`; it reads with
 * `onData`, or else reads and drops (it must read for the publisher closing it to end it).
 */
async function rawPeer(
  port: number,
  socketType: string,
  then: Buffer[] = [],
  onData: (chunk: Buffer) => void = () => undefined,
): Promise<Socket> {
  const socket = tcpConnect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const name = Buffer.from('Socket-Type');
  const size = Buffer.alloc(4);
  size.writeUInt32BE(socketType.length);
  const ready = zmtp.frame(
    zmtp.FLAG_COMMAND,
    Buffer.concat([
      Buffer.from('\x05READY'),
      Buffer.from([name.length]),
      name,
      size,
      Buffer.from(socketType),
    ]),
  );
  socket.on('data', onData);
  socket.write(Buffer.concat([zmtp.greeting(), ready, ...then]));
  return socket;
}

describe('StreamPublisher: the update stream as a ZMTP PUB on Node sockets', function () {
  this.timeout(20_000);
  const closing: (() => void)[] = [];
  afterEach(() => {
    for (const close of closing.splice(0)) close();
  });

  it('sends a message to the subscribers whose subscription its topic starts with, and to no other', async () => {
    const { pub, seen, endpoint } = await publisher();
    closing.push(() => pub.close());
    const a = await libzmqSub(endpoint, seen, ['/a/']);
    const all = await libzmqSub(endpoint, seen, ['']);
    closing.push(
      () => a.close(),
      () => all.close(),
    );
    pub.post(frames('/b/1', 'not for a'));
    pub.post(frames('/a/1', 'for a'));
    // In order on one connection: a's first message being the second post proves the first skipped it.
    expect(await receive(a)).to.equal('/a/1:for a');
    expect(await receive(all)).to.equal('/b/1:not for a');
    expect(await receive(all)).to.equal('/a/1:for a');
  });

  it('sends a heartbeat to the subscribers sent nothing else in the last quietMs, and with 0 to all', async () => {
    let clock = 1000;
    const { pub, seen, endpoint } = await publisher({ now: () => clock });
    closing.push(() => pub.close());
    const busy = await libzmqSub(endpoint, seen, ['/a/', 'HUGZ']);
    const idle = await libzmqSub(endpoint, seen, ['/b/', 'HUGZ']);
    closing.push(
      () => busy.close(),
      () => idle.close(),
    );
    pub.post(frames('/a/1', 'update'));
    clock += 49;
    pub.heartbeat(frames('HUGZ', 'skipped by busy'), 50);
    pub.post(frames('/a/2', 'update'));
    pub.post(frames('/b/1', 'marker'));
    // In order on one connection: busy's next message being /a/2 proves the heartbeat skipped it,
    // and idle's proves the same heartbeat reached a subscriber that was sent nothing.
    expect(await receive(busy)).to.equal('/a/1:update');
    expect(await receive(busy)).to.equal('/a/2:update');
    expect(await receive(idle)).to.equal('HUGZ:skipped by busy');
    expect(await receive(idle)).to.equal('/b/1:marker');
    // 50 ms after their last messages both get one; a heartbeat is no traffic, so both get the next.
    clock += 50;
    pub.heartbeat(frames('HUGZ', 'second'), 50);
    pub.heartbeat(frames('HUGZ', 'third'), 50);
    for (const sub of [busy, idle]) {
      expect(await receive(sub)).to.equal('HUGZ:second');
      expect(await receive(sub)).to.equal('HUGZ:third');
    }
    // With quietMs 0 (a node saying it is not active) a heartbeat reaches a subscriber just sent an update.
    pub.post(frames('/a/3', 'update'));
    pub.heartbeat(frames('HUGZ', 'state'), 0);
    expect(await receive(busy)).to.equal('/a/3:update');
    expect(await receive(busy)).to.equal('HUGZ:state');
    expect(await receive(idle)).to.equal('HUGZ:state');
  });

  it('tells every subscription, and an unsubscription only when the last holder of the topic is gone', async () => {
    const { pub, seen, endpoint } = await publisher();
    closing.push(() => pub.close());
    const one = await libzmqSub(endpoint, seen, ['/t/']);
    const two = await libzmqSub(endpoint, seen, ['/t/']);
    closing.push(() => two.close());
    expect(seen.subscribed).to.deep.equal(['/t/', '/t/']);
    expect(seen.connections).to.equal(2);
    one.close();
    await waitFor(() => seen.connections === 1 || undefined, 5000, 'the first SUB gone');
    expect(seen.unsubscribed).to.deep.equal([]);
    two.unsubscribe('/t/');
    await waitFor(() => seen.unsubscribed.length > 0 || undefined, 5000, 'the unsubscription');
    expect(seen.unsubscribed).to.deep.equal(['/t/']);
  });

  it("reads every frame as libzmq's XPUB does: a subscription glued to an unfinished message is taken", async () => {
    const { pub, seen, port } = await publisher();
    closing.push(() => pub.close());
    // An XSUB drops a cancel it holds nothing for, even a message's last frame: the message before
    // it stays open, and the next message's frames are read as its rest.
    const peer = await rawPeer(port, 'XSUB', [
      zmtp.frame(zmtp.FLAG_MORE, Buffer.from('\x00/never/')),
      zmtp.subscription('/glued/'),
    ]);
    closing.push(() => peer.destroy());
    await waitFor(() => seen.subscribed.length === 1 || undefined, 5000, 'the subscription');
    expect(seen.subscribed).to.deep.equal(['/glued/']);
  });

  it('disconnects a peer that is not a SUB, and one whose frame is over the limit', async () => {
    const { pub, seen, port } = await publisher({ maxFrameBytes: 64 });
    closing.push(() => pub.close());
    const dealer = await rawPeer(port, 'DEALER', [zmtp.subscription('')]);
    await within(once(dealer, 'close'), 5000, 'the DEALER disconnected');
    const big = await rawPeer(port, 'SUB', [zmtp.subscription('x'.repeat(100))]);
    await within(once(big, 'close'), 5000, 'the oversized frame disconnected');
    expect(seen.subscribed).to.deep.equal([]);
    // The channel works: a proper SUB on the same listener subscribes.
    const good = await rawPeer(port, 'SUB', [zmtp.subscription('/ok/')]);
    closing.push(() => good.destroy());
    await waitFor(() => seen.subscribed.length === 1 || undefined, 5000, 'the SUB subscription');
    expect(seen.subscribed).to.deep.equal(['/ok/']);
  });

  it('disconnects a connection that never completes the handshake, once handshakeMs has passed', async () => {
    const { pub, seen, port } = await publisher({ handshakeMs: 500 });
    closing.push(() => pub.close());
    const silent = tcpConnect({ host: '127.0.0.1', port });
    silent.resume();
    closing.push(() => silent.destroy());
    await waitFor(() => seen.connections === 1 || undefined, 5000, 'the connection');
    // A SUB that completes its handshake stays: it gets a message posted after the silent one went.
    const { got, feed } = topicsRead();
    const good = await rawPeer(port, 'SUB', [zmtp.subscription('')], feed);
    closing.push(() => good.destroy());
    await within(once(silent, 'close'), 5000, 'the silent connection closed');
    await waitFor(() => seen.connections === 1 || undefined, 5000, 'one connection left');
    expect(seen.subscribed).to.deep.equal(['']);
    pub.post(frames('/after', 'still here'));
    await waitFor(() => got.includes('/after') || undefined, 5000, 'the SUB served');
  });

  it('disconnects a subscriber that stopped reading once its queue is full, and keeps serving the others', async () => {
    const highWaterMark = 10;
    const { pub, seen, port, endpoint } = await publisher({ highWaterMark });
    closing.push(() => pub.close());
    const { got, feed } = topicsRead();
    const stalled = await rawPeer(port, 'SUB', [zmtp.subscription('')], feed);
    closing.push(() => stalled.destroy());
    const other = await libzmqSub(endpoint, seen, ['/k/']);
    closing.push(() => other.close());
    await waitFor(() => seen.subscribed.length === 2 || undefined, 5000, 'both subscriptions');
    stalled.pause(); // reads nothing: the kernel's buffers fill, then the publisher's queue
    const body = 'v'.repeat(60_000);
    let posted = 0;
    while (posted < 2000 && pub.slowDisconnects === 0) pub.post(frames(`/k/${posted++}`, body));
    expect(pub.slowDisconnects, 'the stalled subscriber disconnected').to.equal(1);
    expect(got, 'nothing read while paused').to.deep.equal([]);
    // What was queued before the disconnect is still read, in order, then the connection ends.
    stalled.resume();
    await within(once(stalled, 'close'), 10_000, 'the stalled connection closed');
    expect(got.length).to.be.greaterThan(highWaterMark);
    expect(got).to.deep.equal(got.map((_, n) => `/k/${n}`));
    // The other subscriber, reading all along, got every message.
    for (let n = 0; n < posted; n++) expect(await receive(other)).to.equal(`/k/${n}:${body}`);
    await waitFor(() => seen.connections === 1 || undefined, 5000, 'the stalled subscriber gone');
  });

  it('disconnects a stalled subscriber once its queued bytes pass maxQueueBytes, far below its message bound', async () => {
    const maxQueueBytes = 1024 * 1024;
    const { pub, seen, port } = await publisher({ highWaterMark: 1000, maxQueueBytes });
    closing.push(() => pub.close());
    const { got, feed } = topicsRead();
    const stalled = await rawPeer(port, 'SUB', [zmtp.subscription('')], feed);
    closing.push(() => stalled.destroy());
    await waitFor(() => seen.subscribed.length === 1 || undefined, 5000, 'the subscription');
    // One message larger than the bound goes to a subscriber with nothing queued: it is read.
    pub.post(frames('/big', 'b'.repeat(2 * maxQueueBytes)));
    await waitFor(() => got.length === 1 || undefined, 5000, 'the large message');
    expect(got).to.deep.equal(['/big']);
    expect(pub.slowDisconnects).to.equal(0);
    stalled.pause();
    const body = 'v'.repeat(100_000);
    let posted = 0;
    while (posted < 1000 && pub.slowDisconnects === 0) pub.post(frames(`/k/${posted++}`, body));
    expect(pub.slowDisconnects, 'the stalled subscriber disconnected').to.equal(1);
    // The kernel's loopback buffers took some messages; 1,000 would have passed the count bound.
    expect(posted).to.be.lessThan(1000);
    stalled.resume();
    await within(once(stalled, 'close'), 10_000, 'the stalled connection closed');
    // What it read after the large message: what the kernel held, then at most maxQueueBytes.
    expect(got.slice(1)).to.deep.equal(got.slice(1).map((_, n) => `/k/${n}`));
    expect(got.length - 1).to.be.lessThan(posted);
  });

  it('fails to listen on a port in use with the error a ZeroMQ bind gives: the endpoint named', async () => {
    const { pub, endpoint } = await publisher();
    closing.push(() => pub.close());
    const second = new StreamPublisher({
      highWaterMark: 1,
      maxQueueBytes: 1,
      maxFrameBytes: -1,
      onSubscribe: () => undefined,
      onUnsubscribe: () => undefined,
      onConnection: () => undefined,
      onAcceptFailed: () => undefined,
    });
    const error = await second.listen(endpoint).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.include({ code: 'EADDRINUSE', address: endpoint });
    const config = { port: 1, heartbeatPort: 2 } as ServerConfig;
    expect(bindError(error, config)?.message).to.equal(`cannot bind ${endpoint}: address already in use`);
  });
});
