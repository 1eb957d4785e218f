import { expect } from 'chai';
import { whenWritable } from '../../../src/zmq/index.js';

/** A fake scheduler: the test runs the waits one by one. */
function fakeTimers() {
  const queue: (() => void)[] = [];
  return {
    schedule: (fn: () => void) => void queue.push(fn),
    runNext: () => queue.shift()?.(),
    get pending() {
      return queue.length;
    },
  };
}

describe('whenWritable: a socket just connected is announced once it takes a message', () => {
  it('announces at once when the socket is already writable', () => {
    const t = fakeTimers();
    let ready = 0;
    whenWritable(
      () => true,
      () => ready++,
      () => false,
      t.schedule,
    );
    expect(ready).to.equal(1);
    expect(t.pending).to.equal(0);
  });

  it('waits while the socket refuses, and announces once, when it accepts', () => {
    const t = fakeTimers();
    let writable = false;
    let ready = 0;
    whenWritable(
      () => writable,
      () => ready++,
      () => false,
      t.schedule,
    );
    t.runNext();
    t.runNext();
    expect(ready, 'not while it refuses').to.equal(0);
    writable = true;
    t.runNext();
    expect(ready).to.equal(1);
    expect(t.pending, 'no more waits').to.equal(0);
  });

  it('announces after the last try even if the socket never says yes (the caller retries on its own)', () => {
    const t = fakeTimers();
    let ready = 0;
    whenWritable(
      () => false,
      () => ready++,
      () => false,
      t.schedule,
      3,
    );
    for (let i = 0; i < 3; i++) t.runNext();
    expect(ready).to.equal(1);
    expect(t.pending).to.equal(0);
  });

  it('stops without announcing once the socket is gone', () => {
    const t = fakeTimers();
    let gone = false;
    let ready = 0;
    whenWritable(
      () => false,
      () => ready++,
      () => gone,
      t.schedule,
    );
    expect(t.pending, 'the channel works: it waits').to.equal(1);
    gone = true;
    t.runNext();
    expect(ready).to.equal(0);
    expect(t.pending).to.equal(0);
  });
});
