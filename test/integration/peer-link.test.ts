/**
 * The peer link without CURVE (src/pair/peer-link.ts) runs on Node's sockets, and still pairs
 * with a node whose link is libzmq's PUB and SUB (a node from before, during a rolling upgrade):
 * both ends speak plain ZMTP 3.0. Here one end is a PeerLink and the other raw zeromq.js sockets,
 * and peer messages cross both ways, large ones included. A frame over the link's limit ends the
 * connection and is reported, and the SUB connects again.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { PeerLink } from '../../src/pair/index.js';
import {
  DEFAULT_LIMITS,
  decodePeerMessage,
  encodePeerMessage,
  socketFrameLimits,
  type PeerMessage,
} from '../../src/wire/index.js';
import { freePorts, waitFor, within } from '../helpers/index.js';

describe('the peer link on Node sockets, against a libzmq peer', function () {
  this.timeout(20_000);
  const closing: (() => unknown)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0)) await close();
  });

  it('exchanges peer messages both ways with a libzmq PUB and SUB', async () => {
    const ours = await freePorts(1);
    const theirs = await freePorts(1);
    const got: PeerMessage[] = [];
    const dropped: string[] = [];
    const link = new PeerLink({
      bind: `tcp://127.0.0.1:${ours}`,
      connect: `tcp://127.0.0.1:${theirs}`,
      limits: DEFAULT_LIMITS,
      maxSubtreeBytes: 1024,
      onMessage: (msg) => got.push(msg),
      onDropped: (reason) => dropped.push(reason),
    });
    closing.push(() => link.close());
    // The other node: a libzmq PUB it binds, and a libzmq SUB on our PUB.
    const pub = new zmq.Publisher({ linger: 0 });
    const sub = new zmq.Subscriber({ linger: 0 });
    closing.push(
      () => pub.close(),
      () => sub.close(),
    );
    await pub.bind(`tcp://127.0.0.1:${theirs}`);
    await link.start();
    sub.connect(`tcp://127.0.0.1:${ours}`);
    sub.subscribe();

    // Ours → theirs: sent until one arrives (a PUB drops what it sends before the SUB is in).
    const ack: PeerMessage = { type: 'ack', sequence: 42, term: 't1' };
    const received = sub.receive();
    const sending = setInterval(() => link.send(ack), 20);
    try {
      expect(decodePeerMessage(await within(received, 5000, 'our message at the libzmq SUB'))).to.deep.equal(
        ack,
      );
    } finally {
      clearInterval(sending);
    }

    // Theirs → ours, a 256 KiB batch among them, which arrives whole.
    const chunk: PeerMessage = { type: 'snapshot-chunk', streamId: 7, batch: Buffer.alloc(1 << 18, 0x61) };
    const probe: PeerMessage = { type: 'request', streamId: 1, fromSequence: 5, term: 't1' };
    await waitFor(
      async () => {
        await pub.send(encodePeerMessage(probe));
        return got.length > 0 || undefined;
      },
      5000,
      'their message at our SUB',
    );
    await pub.send(encodePeerMessage(chunk));
    await waitFor(() => got.some((m) => m.type === 'snapshot-chunk') || undefined, 5000, 'the batch');
    const batch = got.find((m) => m.type === 'snapshot-chunk') as Extract<
      PeerMessage,
      { type: 'snapshot-chunk' }
    >;
    expect(batch.streamId).to.equal(7);
    expect(batch.batch.equals(chunk.batch)).to.equal(true);
    expect(got[0]).to.deep.equal(probe);
    expect(dropped).to.deep.equal([]);

    // A frame over the link's limit ends the connection, reported; the SUB connects again.
    const limit = socketFrameLimits(DEFAULT_LIMITS, 1024).peer;
    await pub.send([Buffer.from('TRSNAP'), Buffer.alloc(4), Buffer.alloc(limit + 1)]);
    await waitFor(() => dropped.length > 0 || undefined, 5000, 'the oversize frame reported');
    expect(dropped).to.deep.equal(['bad-request']);
    const before = got.length;
    await waitFor(
      async () => {
        await pub.send(encodePeerMessage(probe));
        return got.length > before || undefined;
      },
      5000,
      'a message after reconnecting',
    );
    expect(got.at(-1)).to.deep.equal(probe);
  });
});
