/**
 * The request lane (src/server/request-lane.ts): the snapshot ROUTER's work for DEALERs that
 * connect to the update stream's port, on Node's sockets. Against real peers on loopback: the
 * client's own DEALER (src/client/zmtp-dealer.ts) and libzmq DEALERs (zeromq.js). It must behave
 * as the libzmq ROUTER does for the server: requests as [routing id, ...frames] with the DEALER's
 * own id, replies by id, EHOSTUNREACH for an id nobody holds, handover of an id, a frame over the
 * limit ending the connection. And the link's choice (src/client/lane-path.ts) must take the lane
 * where it is offered and the DEALER where it is not.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { StreamPublisher } from '../../src/zmq/index.js';
import { RequestLane, RouterMux } from '../../src/server/request-lane.js';
import { ZmtpDealer } from '../../src/client/zmtp-dealer.js';
import { LanePath } from '../../src/client/lane-path.js';
import { freePorts, waitFor, within } from '../helpers/index.js';

const ignore = () => undefined;

/** A stream publisher on a free port, with a lane when `withLane`; requests are kept in `got`. */
async function lanePort(withLane = true) {
  const got: Buffer[][] = [];
  const lane = new RequestLane({
    onRequest: (frames) => got.push(frames),
    highWaterMark: 1000,
    maxFrameBytes: 4096,
    onHandlerError: (error) => {
      throw error;
    },
  });
  const pub = new StreamPublisher({
    highWaterMark: 1000,
    maxQueueBytes: 1024 ** 2,
    maxFrameBytes: 256,
    onSubscribe: ignore,
    onUnsubscribe: ignore,
    onConnection: ignore,
    onAcceptFailed: ignore,
    ...(withLane ? { lane } : {}),
  });
  const port = await freePorts(1);
  const endpoint = `tcp://127.0.0.1:${port}`;
  await pub.listen(endpoint);
  return { lane, pub, got, endpoint, close: () => (pub.close(), lane.close()) };
}

/** Our DEALER, with what it received and how its connections went. */
function dealer(endpoint: string, id: string, maxFrameBytes = -1) {
  const replies: string[][] = [];
  const events: string[] = [];
  const d = new ZmtpDealer(endpoint, Buffer.from(id), maxFrameBytes, 100, {
    message: (frames) => replies.push(frames.map(String)),
    ready: () => events.push('ready'),
    refused: (connected) => events.push(connected ? 'refused-connected' : 'refused'),
    lost: () => events.push('lost'),
  });
  return { d, replies, events };
}

const text = (frames: Buffer[]) => frames.map(String);

describe('The request lane: a ROUTER on Node sockets beside the update stream', function () {
  this.timeout(20_000);
  const closing: (() => void)[] = [];
  afterEach(() => {
    for (const close of closing.splice(0)) close();
  });

  it("hands each request over as [the DEALER's id, ...frames] and routes replies back by id", async () => {
    const { lane, got, endpoint, close } = await lanePort();
    closing.push(close);
    const a = dealer(endpoint, '~alice');
    const b = dealer(endpoint, '~bob');
    closing.push(
      () => a.d.close(),
      () => b.d.close(),
    );
    await waitFor(
      () => (a.events.includes('ready') && b.events.includes('ready')) || undefined,
      5000,
      'handshakes',
    );
    expect(a.d.send([Buffer.from('PING'), Buffer.from('1')])).to.equal(true);
    // A frame over 255 bytes takes the long header.
    expect(b.d.send([Buffer.from('BIG'), Buffer.alloc(1000, 0x62)])).to.equal(true);
    await waitFor(() => got.length === 2 || undefined, 5000, 'two requests');
    const byId = new Map(got.map((frames) => [String(frames[0]), text(frames.slice(1))]));
    expect(byId.get('~alice')).to.deep.equal(['PING', '1']);
    expect(byId.get('~bob')).to.deep.equal(['BIG', 'b'.repeat(1000)]);
    // Replies by id, each to its own DEALER only.
    const mux = new RouterMux(lane, { send: () => Promise.reject(new Error('not for the ROUTER')) });
    await mux.send([Buffer.from('~bob'), Buffer.from('PONG'), Buffer.from('to bob')]);
    await mux.send([Buffer.from('~alice'), Buffer.from('PONG'), Buffer.from('to alice')]);
    await waitFor(() => (a.replies.length === 1 && b.replies.length === 1) || undefined, 5000, 'replies');
    expect(a.replies).to.deep.equal([['PONG', 'to alice']]);
    expect(b.replies).to.deep.equal([['PONG', 'to bob']]);
  });

  it('speaks with a libzmq DEALER too, which gets the id it asked for', async () => {
    const { lane, got, endpoint, close } = await lanePort();
    closing.push(close);
    const z = new zmq.Dealer({ linger: 0, routingId: '~zmq' });
    closing.push(() => z.close());
    z.connect(endpoint);
    await z.send(['HELLO']);
    await waitFor(() => got.length === 1 || undefined, 5000, 'the request');
    expect(text(got[0]!)).to.deep.equal(['~zmq', 'HELLO']);
    expect(lane.send([Buffer.from('~zmq'), Buffer.from('BACK')])).to.equal(true);
    const [reply] = await within(z.receive(), 5000, 'the reply');
    expect(String(reply)).to.equal('BACK');
  });

  it('passes a reply for an id it does not hold to the libzmq ROUTER, whose EHOSTUNREACH the sender gets', async () => {
    const { lane, got, endpoint, close } = await lanePort();
    closing.push(close);
    const a = dealer(endpoint, '~held');
    closing.push(() => a.d.close());
    await waitFor(() => a.events.includes('ready') || undefined, 5000, 'the handshake');
    // The channel works: a held id is written to the lane, not the ROUTER.
    const toRouter: string[] = [];
    const unreachable = Object.assign(new Error('Host unreachable'), { code: 'EHOSTUNREACH' });
    const mux = new RouterMux(lane, {
      send: (frames) => {
        toRouter.push(String(frames[0]));
        return Promise.reject(unreachable);
      },
    });
    await mux.send([Buffer.from('~held'), Buffer.from('R')]);
    await waitFor(() => a.replies.length === 1 || undefined, 5000, 'the reply');
    const error = await mux.send([Buffer.from('~nobody'), Buffer.from('R')]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as { code?: string }).code).to.equal('EHOSTUNREACH');
    expect(toRouter).to.deep.equal(['~nobody']);
    // Once the DEALER is gone, its id is no longer the lane's.
    a.d.close();
    await waitFor(() => lane.size === 0 || undefined, 5000, 'the connection gone');
    expect(lane.send([Buffer.from('~held'), Buffer.from('R')])).to.equal(false);
    expect(got).to.have.length(0);
  });

  it('hands an id over to a newer connection and closes the older one', async () => {
    const { lane, endpoint, close } = await lanePort();
    closing.push(close);
    const first = dealer(endpoint, '~same');
    closing.push(() => first.d.close());
    await waitFor(() => first.events.includes('ready') || undefined, 5000, 'the first handshake');
    const second = dealer(endpoint, '~same');
    closing.push(() => second.d.close());
    await waitFor(() => first.events.includes('lost') || undefined, 5000, 'the first connection closed');
    expect(second.events[0]).to.equal('ready');
    lane.send([Buffer.from('~same'), Buffer.from('to the newer')]);
    await waitFor(() => second.replies.length === 1 || undefined, 5000, 'the reply');
    expect(second.replies).to.deep.equal([['to the newer']]);
  });

  it('ends the connection of a DEALER that sends a frame over the limit, and takes its next one', async () => {
    const { got, endpoint, close } = await lanePort();
    closing.push(close);
    const a = dealer(endpoint, '~big');
    closing.push(() => a.d.close());
    await waitFor(() => a.events.includes('ready') || undefined, 5000, 'the handshake');
    a.d.send([Buffer.alloc(5000)]); // limit 4096
    await waitFor(() => a.events.includes('lost') || undefined, 5000, 'the connection ended');
    // It reconnects (libzmq's 100 ms), and a request within the limit goes through.
    await waitFor(() => a.events.filter((e) => e === 'ready').length === 2 || undefined, 5000, 'reconnected');
    a.d.send([Buffer.from('small')]);
    await waitFor(() => got.length === 1 || undefined, 5000, 'the request');
    expect(text(got[0]!)).to.deep.equal(['~big', 'small']);
  });

  it('refuses a DEALER where there is no lane: the DEALER learns the port does not offer it', async () => {
    const { endpoint, close } = await lanePort(false);
    closing.push(close);
    const a = dealer(endpoint, '~old');
    closing.push(() => a.d.close());
    await waitFor(() => a.events.includes('refused-connected') || undefined, 5000, 'the refusal');
    expect(a.events).to.not.include('ready');
    expect(a.d.send([Buffer.from('x')])).to.equal(false);
  });

  describe('LanePath: which way a link sends its requests', () => {
    function path(endpoint: string) {
      const seen: string[] = [];
      const p = new LanePath(endpoint, Buffer.from('~path'), -1, 100, {
        message: ignore,
        chooseLane: () => seen.push('lane'),
        chooseDealer: () => seen.push('dealer'),
        connected: () => seen.push('connected'),
      });
      closing.push(() => p.close());
      return { p, seen };
    }

    it('takes the lane where it is offered, and sends nothing before', async () => {
      const { got, endpoint, close } = await lanePort();
      closing.push(close);
      const { p, seen } = path(endpoint);
      expect(p.send([Buffer.from('too early')])).to.equal(false);
      await waitFor(() => seen.includes('connected') || undefined, 5000, 'the choice');
      expect(seen).to.deep.equal(['lane', 'connected']);
      p.dealerConnected(true); // the DEALER's handshake after the choice changes nothing
      expect(p.onDealer).to.equal(false);
      expect(p.send([Buffer.from('now')])).to.equal(true);
      await waitFor(() => got.length === 1 || undefined, 5000, 'the request');
      expect(text(got[0]!)).to.deep.equal(['~path', 'now']);
    });

    it('takes the DEALER once connected when the port closes on a DEALER (a server from before the lane)', async () => {
      const { endpoint, close } = await lanePort(false);
      closing.push(close);
      const { p, seen } = path(endpoint);
      p.dealerConnected(true);
      await waitFor(() => seen.includes('dealer') || undefined, 5000, 'the choice');
      expect(seen).to.deep.equal(['dealer']);
      expect(p.onDealer).to.equal(true);
      expect(p.send([Buffer.from('x')])).to.equal(false);
    });

    it('takes the DEALER when nothing listens on the lane port while the DEALER is connected', async () => {
      const port = await freePorts(1);
      const { p, seen } = path(`tcp://127.0.0.1:${port}`);
      // Refusals while the DEALER is not connected decide nothing (the server may be starting)...
      await waitFor(() => p.refusedAttempts >= 3 || undefined, 5000, 'three refused attempts');
      expect(seen).to.deep.equal([]);
      // ...but once it is, two refusals more decide.
      p.dealerConnected(true);
      await waitFor(() => seen.includes('dealer') || undefined, 5000, 'the choice');
      expect(p.onDealer).to.equal(true);
    });
  });
});
