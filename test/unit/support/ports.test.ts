/**
 * freePorts (test/support/ports.ts), which every integration test and benchmark uses to place its
 * servers: consecutive ports, free when handed out, never handed out twice in one process, and a
 * range with a busy port given up with the ports held while trying released.
 */
import { expect } from 'chai';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { once } from 'node:events';
import { freePorts, holdRange, portIsFree } from '../../support/index.js';

async function listenOn(port: number): Promise<Server> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('freePorts', () => {
  it('hands out `count` consecutive ports that are all free, with nothing left listening on them', async () => {
    const base = await freePorts(5);
    for (let i = 0; i < 5; i++) expect(await portIsFree(base + i), `port ${base + i}`).to.equal(true);
    // below the kernel's ephemeral range, which outgoing connections draw from
    expect(base).to.be.at.least(10_000);
    expect(base + 4).to.be.below(32_768);
  });

  it('never hands a port out twice, also to concurrent calls', async () => {
    const bases = await Promise.all(Array.from({ length: 20 }, () => freePorts(5)));
    const ports = bases.flatMap((b) => [0, 1, 2, 3, 4].map((i) => b + i));
    expect(new Set(ports).size).to.equal(ports.length);
    // and a port handed out is refused when a later call tries it as part of a range
    expect(await holdRange(bases[0]! + 2, 1)).to.equal(undefined);
  });

  it("never hands out a range holding a port fetch() refuses (10080), so a server's health port can be polled", async () => {
    // what it guards against: fetch() fails before it connects
    const refused = await fetch('http://127.0.0.1:10080/').then(
      () => undefined,
      (error: Error) => error,
    );
    expect(String(refused?.cause)).to.match(/bad port/);
    // freePorts takes its ranges from holdRange
    expect(await holdRange(10_076, 5), 'a range ending on 10080').to.equal(undefined);
    expect(await holdRange(10_080, 1)).to.equal(undefined);
  });

  it('gives up a range in which a port is busy and releases the ports it held while trying', async () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const busy = await listenOn(0);
      const port = (busy.address() as AddressInfo).port;
      try {
        if (!(await portIsFree(port - 2)) || !(await portIsFree(port - 1))) continue; // someone else's
        expect(await holdRange(port - 2, 3)).to.equal(undefined);
        expect(await portIsFree(port - 2), 'the first port of the range, held while trying').to.equal(true);
        expect(await portIsFree(port - 1), 'the second port of the range, held while trying').to.equal(true);
        const held = await holdRange(port - 2, 2);
        expect(held).to.have.length(2);
        expect(await portIsFree(port - 1), 'a port held by holdRange').to.equal(false);
        await Promise.all(held!.map(close));
        return;
      } finally {
        await close(busy);
      }
    }
    expect.fail('no port with two free ports below it in 20 tries');
  });
});
