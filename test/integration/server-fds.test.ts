/**
 * A server out of file descriptors keeps its event loop: libzmq retries a failed accept at once
 * while connections wait, and posts an event each time; read by the publisher's event observer,
 * they held a node's loop for 4.1 s (150 TCP connections to a node limited to 80 descriptors), and
 * a pair's heartbeats with it. Now events are read with a time budget, and the node says once per
 * flood that it refuses connections (src/zmq/socket-watch.ts).
 */
import net from 'node:net';
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { connect } from '../../src/index.js';
import { HUGZ } from '../../src/wire/index.js';
import { freePorts, ServerProcess, waitFor } from '../helpers/index.js';

describe('server: out of file descriptors (real process)', function () {
  this.timeout(60_000);
  let server: ServerProcess | undefined;
  const sockets: net.Socket[] = [];
  let sub: zmq.Subscriber | undefined;

  after(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    sub?.close();
    await server?.kill();
  });

  it('200 TCP connections to a node limited to 128 descriptors: it says so once, its HUGZ keep their 100 ms beat, and it serves again once they go', async () => {
    const port = await freePorts(5);
    server = new ServerProcess({ role: 'single', port, httpPort: port + 4, maxOpenFiles: 128 });
    await server.ready('ACTIVE');

    // A subscriber from before: the node's heartbeat, heard every 100 ms, is the event loop's pulse.
    sub = new zmq.Subscriber({ linger: 0 });
    sub.subscribe(HUGZ);
    sub.connect(server.publisher);
    const beats: number[] = [];
    void (async () => {
      for await (const _ of sub!) beats.push(performance.now());
    })().catch(() => undefined);
    await waitFor(() => beats.length >= 3, 5000, 'HUGZ before the flood (the channel works)');

    const floodFrom = performance.now();
    for (let i = 0; i < 200; i++) {
      const s = net.connect(port + 1, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
    }
    await waitFor(
      () => server!.logs((l) => String(l.msg).startsWith('new connections are refused')).length > 0,
      10_000,
      'the node to say it is out of descriptors (the flood happened)',
    );
    const heardFrom = beats.length;
    await waitFor(() => beats.length >= heardFrom + 20, 10_000, '20 more HUGZ while the connections wait');
    const during = beats.filter((t) => t >= floodFrom);
    const gaps = during.slice(1).map((t, i) => t - during[i]!);
    // 100 ms heartbeats; the 4.1 s stall this guards against is far above 1 s
    expect(Math.max(...gaps), 'the longest gap between HUGZ during the flood, ms').to.be.below(1000);
    const refused = server.logs((l) => String(l.msg).startsWith('new connections are refused'));
    expect(refused[0]).to.include({ code: 'EMFILE', endpoint: server.publisher });
    expect(refused.length, 'said once per socket, not per failed accept').to.be.at.most(4);

    for (const s of sockets.splice(0)) s.destroy();
    const client = await connect({ servers: [server.endpoint], connectTimeoutMs: 10_000 });
    try {
      expect(await client.set('/fds/after', 'ok')).to.be.greaterThan(0);
    } finally {
      await client.close();
    }
  });
});
