/**
 * Outbox (src/zmq/outbox.ts): one send at a time, in order, cancelled messages stay unsent, and
 * the drain takes each message off in O(1) and yields to the event loop per time budget (issue 13).
 */
import { expect } from 'chai';
import { Fifo } from '../../../src/zmq/fifo.js';
import { Outbox } from '../../../src/zmq/outbox.js';

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

/** A socket with room for everything: each send resolves at once, as zeromq.js does then. */
function roomySocket(onSend: () => void = () => undefined) {
  const sent: number[] = [];
  return {
    sent,
    send(frames: Buffer[]) {
      onSend();
      sent.push(frames[0]!.readUInt32BE());
      return Promise.resolve();
    },
  };
}

const numbered = (i: number) => {
  const frame = Buffer.allocUnsafe(4);
  frame.writeUInt32BE(i);
  return [frame];
};

describe('Outbox drain (issue 13, B1)', () => {
  it('yields to the event loop once per time budget of sending, not earlier and not later', async () => {
    let clock = 0;
    const socket = roomySocket(() => (clock += 1)); // every send takes 1 ms of the fake clock
    const yieldsAfter: number[] = [];
    const outbox = new Outbox(socket, () => undefined, {
      budgetMs: 10,
      now: () => clock,
      yieldToLoop: () => {
        yieldsAfter.push(socket.sent.length);
        return new Promise((resolve) => setImmediate(resolve));
      },
    });
    const total = 1000;
    for (let i = 0; i < total - 1; i++) outbox.post(numbered(i));
    await outbox.send(numbered(total - 1));
    expect(socket.sent).to.deep.equal(Array.from({ length: total }, (_, i) => i));
    // The budget is spent after 11 sends (11 ms > 10 ms): a turn after every 11th message.
    expect(yieldsAfter).to.have.length(Math.floor(total / 11));
    yieldsAfter.forEach((after, i) => expect(after, `yield ${i}`).to.equal(11 * (i + 1)));
  });

  it('lets a timer fire while a long queue drains (a real event loop, sends that never wait)', async () => {
    const socket = roomySocket();
    const outbox = new Outbox(socket, () => undefined);
    const total = 300_000;
    let sentWhenTimerFired: number | undefined;
    // Queue first, then set the timer: without a yield the whole queue drains in microtasks
    // before any timer can run.
    for (let i = 0; i < total - 1; i++) outbox.post(numbered(i));
    const last = outbox.send(numbered(total - 1));
    setTimeout(() => (sentWhenTimerFired = socket.sent.length), 0);
    await last;
    expect(socket.sent).to.have.length(total);
    expect(sentWhenTimerFired, 'the timer ran only after the drain').to.be.below(total);
  });

  it('takes messages off its queue in O(1): Array.prototype.shift, O(n) per call, is never used', async () => {
    const socket = roomySocket();
    const outbox = new Outbox(socket, () => undefined);
    const shift = Array.prototype.shift;
    let shifts = 0;
    Array.prototype.shift = function (this: unknown[]) {
      shifts++;
      return shift.call(this);
    };
    try {
      for (let i = 0; i < 9_999; i++) outbox.post(numbered(i));
      await outbox.send(numbered(9_999));
    } finally {
      Array.prototype.shift = shift;
    }
    expect(socket.sent).to.have.length(10_000);
    expect(shifts).to.equal(0);
  });

  it('close() rejects every message still queued, also while the drain waits for its turn', async () => {
    let clock = 0;
    const socket = roomySocket(() => (clock += 1));
    const outbox = new Outbox(socket, () => undefined, {
      budgetMs: 0, // every send is over budget: one message per turn
      now: () => clock,
      yieldToLoop: () => new Promise((resolve) => setImmediate(resolve)),
    });
    const results = Array.from({ length: 5 }, (_, i) => outbox.send(numbered(i)));
    await results[1];
    outbox.close();
    const settled = await Promise.allSettled(results);
    expect(settled.map((r) => r.status)).to.deep.equal([
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
      'rejected',
    ]);
    expect(socket.sent).to.deep.equal([0, 1]);
  });
});

describe('Fifo', () => {
  it('hands items out in order across pushes, shifts and compactions, and takeAll empties it', () => {
    const fifo = new Fifo<number>();
    const model: number[] = [];
    let next = 0;
    // Interleave bursts so the queue compacts (over 1024 consumed) many times while non-empty.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 700; i++) {
        fifo.push(next);
        model.push(next++);
      }
      for (let i = 0; i < 500; i++) {
        expect(fifo.peek()).to.equal(model[0]);
        expect(fifo.shift()).to.equal(model.shift());
      }
      expect(fifo.length).to.equal(model.length);
    }
    expect(fifo.takeAll()).to.deep.equal(model);
    expect(fifo.length).to.equal(0);
    expect(fifo.shift()).to.equal(undefined);
    expect(fifo.peek()).to.equal(undefined);
  });
});
