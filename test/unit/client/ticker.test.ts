/**
 * The process-wide ticker of the clients (src/client/ticker.ts): callbacks of one period share one
 * timer, each still runs every period, removal stops exactly that one, and one that throws does
 * not stop the others.
 */
import { expect } from 'chai';
import { Ticker, type TickerTimers } from '../../../src/client/ticker.js';

/** Timers fired by hand. */
function fakeTimers() {
  const running = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  const timers: TickerTimers = {
    setInterval: (fn, ms) => {
      running.set(next, { fn, ms });
      return next++;
    },
    clearInterval: (handle) => running.delete(handle as number),
  };
  const fire = (ms: number) => {
    for (const t of [...running.values()]) if (t.ms === ms) t.fn();
  };
  return { timers, running, fire };
}

describe('Ticker', () => {
  it('runs every callback of a period from one timer, and another period from its own', () => {
    const { timers, running, fire } = fakeTimers();
    const ticker = new Ticker(timers);
    const calls: string[] = [];
    ticker.add(() => calls.push('a'), 50);
    ticker.add(() => calls.push('b'), 50);
    ticker.add(() => calls.push('c'), 100);
    expect(running.size).to.equal(2);
    fire(50);
    fire(50);
    fire(100);
    expect(calls).to.deep.equal(['a', 'b', 'a', 'b', 'c']);
  });

  it('stops exactly the removed callback, and the timer once its period has none', () => {
    const { timers, running, fire } = fakeTimers();
    const ticker = new Ticker(timers);
    const calls: string[] = [];
    const a = ticker.add(() => calls.push('a'), 50);
    const b = ticker.add(() => calls.push('b'), 50);
    ticker.remove(a);
    fire(50);
    expect(calls).to.deep.equal(['b']);
    expect(running.size).to.equal(1);
    ticker.remove(b);
    ticker.remove(b); // twice: nothing more
    expect(running.size).to.equal(0);
    expect(ticker.periods).to.equal(0);
  });

  it('skips a callback removed by an earlier one of the same round', () => {
    const { timers, fire } = fakeTimers();
    const ticker = new Ticker(timers);
    const calls: string[] = [];
    const later: { b?: unknown } = {};
    ticker.add(() => {
      calls.push('a');
      ticker.remove(later.b);
    }, 50);
    later.b = ticker.add(() => calls.push('b'), 50);
    fire(50);
    expect(calls).to.deep.equal(['a']);
  });

  it('runs the others when one throws, and rethrows its error on its own', async () => {
    const { timers, fire } = fakeTimers();
    const ticker = new Ticker(timers);
    const calls: string[] = [];
    ticker.add(() => {
      throw new Error('a bug in a tick');
    }, 50);
    ticker.add(() => calls.push('b'), 50);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const uncaught = new Promise<Error>((resolve) => process.once('uncaughtException', resolve));
    try {
      fire(50);
      expect(calls).to.deep.equal(['b']);
      expect((await uncaught).message).to.equal('a bug in a tick');
    } finally {
      for (const l of listeners) process.on('uncaughtException', l);
    }
  });
});
