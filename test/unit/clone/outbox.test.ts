/** Outbox (src/clone/outbox.ts): one send at a time, in order, and cancelled messages stay unsent. */
import { expect } from 'chai';
import { Outbox } from '../../../src/clone/outbox.js';

function fakeSocket(failOn: string[] = []) {
  const sent: string[] = [];
  let inFlight = 0;
  return {
    sent,
    async send(frames: Buffer[]) {
      expect(++inFlight, 'concurrent sends').to.equal(1);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
      const name = frames[0]!.toString();
      if (failOn.includes(name)) throw Object.assign(new Error('pipe full'), { code: 'EAGAIN' });
      sent.push(name);
    },
  };
}

describe('Outbox', () => {
  it('sends posted and awaited messages in order, one at a time', async () => {
    const socket = fakeSocket();
    const outbox = new Outbox(socket, () => undefined);
    outbox.post([Buffer.from('a')]);
    const b = outbox.send([Buffer.from('b')]);
    outbox.post([Buffer.from('c')]);
    await b;
    await outbox.send([Buffer.from('d')]);
    expect(socket.sent).to.deep.equal(['a', 'b', 'c', 'd']);
  });

  it('stops a stream at its first failed message, and only that stream', async () => {
    const socket = fakeSocket(['x1']);
    const outbox = new Outbox(socket, () => undefined);
    const receiver = {};
    const x1 = outbox.send([Buffer.from('x1')], receiver).catch(() => undefined);
    const x2 = outbox.send([Buffer.from('x2')], receiver);
    const other = outbox.send([Buffer.from('y1')]);
    await x1;
    const [x2Result, otherResult] = await Promise.allSettled([x2, other]);
    expect(x2Result.status, 'x2 overtook the failed x1').to.equal('rejected');
    expect(otherResult.status).to.equal('fulfilled');
    expect(socket.sent).to.deep.equal(['y1']);
  });
});
