/**
 * Plain CHP writes go out on a PUB to each server's collector, and a PUB drops whatever it sends
 * before the collector's subscription has reached it (the slow-joiner problem). The client's
 * transport waits for that subscription itself rather than for a fixed delay after the handshake:
 * here a collector (an XSUB, so the test decides when it subscribes) completes the handshake and
 * subscribes only later, and the write sent in between must still arrive.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { zmqTransport } from '../../src/client/transport.js';
import { freePorts } from '../support/ports.js';
import { within } from '../support/wait.js';

const SUBSCRIBE_ALL = Buffer.from([1]);

describe('plain CHP writes and the collector subscription', function () {
  this.timeout(20_000);
  const sockets: { close(): void }[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });

  async function collectorAt(port: number): Promise<{ xsub: zmq.XSubscriber; handshake: Promise<void> }> {
    const xsub = new zmq.XSubscriber({ linger: 0 });
    sockets.push(xsub);
    const handshake = new Promise<void>((resolve) => xsub.events.on('handshake', () => resolve()));
    await xsub.bind(`tcp://127.0.0.1:${port}`);
    return { xsub, handshake };
  }

  function linkTo(port: number) {
    const link = zmqTransport(
      {
        snapshot: `tcp://127.0.0.1:${port - 2}`,
        publisher: `tcp://127.0.0.1:${port - 1}`,
        collector: `tcp://127.0.0.1:${port}`,
      },
      { reply: () => undefined, update: () => undefined },
    );
    sockets.push(link);
    return link;
  }

  it('a write published after the handshake but before the subscription is held, then delivered', async () => {
    const port = (await freePorts(3)) + 2;
    const { xsub, handshake } = await collectorAt(port);
    const link = linkTo(port);
    link.publish([Buffer.from('early')]); // opens the PUB: no connection yet
    await within(handshake, 5000, 'the collector handshake');
    link.publish([Buffer.from('between')]); // connected, not yet subscribed
    // Not drained while the subscription is missing: drain() runs out its time instead.
    const started = Date.now();
    await link.drain(300);
    expect(Date.now() - started).to.be.at.least(250, 'drain() waited for the subscription');

    await xsub.send(SUBSCRIBE_ALL);
    const got: string[] = [];
    for (const expected of ['early', 'between']) {
      const [frame] = await within(xsub.receive(), 5000, `the write "${expected}"`);
      got.push(frame!.toString());
    }
    expect(got).to.deep.equal(['early', 'between']);
    await within(link.drain(5000), 6000, 'drained once subscribed');
  });
});
