/** ready() waiters on the injected clock (src/client/ready.ts). */
import { expect } from 'chai';
import { ReadyWaiters } from '../../../src/client/ready.js';

function outcome(promise: Promise<void>): { state: string; error?: Error } {
  const o: { state: string; error?: Error } = { state: 'pending' };
  promise.then(
    () => (o.state = 'resolved'),
    (error: Error) => {
      o.state = 'rejected';
      o.error = error;
    },
  );
  return o;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ReadyWaiters', () => {
  it('expire(now) rejects only the waiters whose deadline has come, with their own timeout', async () => {
    const w = new ReadyWaiters();
    const short = outcome(w.wait(1000, 50));
    const long = outcome(w.wait(1000, 500));
    w.expire(1049, (ms) => new Error(`after ${ms}`));
    await tick();
    expect([short.state, long.state]).to.deep.equal(['pending', 'pending']);
    w.expire(1050, (ms) => new Error(`after ${ms}`));
    await tick();
    expect(short.state).to.equal('rejected');
    expect(short.error?.message).to.equal('after 50');
    expect(long.state).to.equal('pending');
    expect(w.size).to.equal(1);
  });

  it('resolveAll() and rejectAll() settle every waiter once; a later expire touches none', async () => {
    const w = new ReadyWaiters();
    const a = outcome(w.wait(0, 10));
    w.resolveAll();
    const b = outcome(w.wait(0, 10));
    w.rejectAll(new Error('closed'));
    w.expire(100, () => new Error('late'));
    await tick();
    expect([a.state, b.state]).to.deep.equal(['resolved', 'rejected']);
    expect(b.error?.message).to.equal('closed');
    expect(w.size).to.equal(0);
  });

  it('a timeout that is not a number times out at once, as setTimeout did', async () => {
    const w = new ReadyWaiters();
    const a = outcome(w.wait(10, NaN));
    w.expire(10, () => new Error('timed out'));
    await tick();
    expect(a.state).to.equal('rejected');
  });
});
