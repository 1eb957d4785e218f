/**
 * retryInterrupted (src/zmq/interrupted.ts): a libzmq call a signal interrupted (EINTR) is made
 * again; any other error, and an EINTR that does not stop, reach the caller. observerOf also makes
 * an event observer again after EADDRINUSE (zeromq.js's monitor endpoint, named after a freed
 * observer's address, still bound).
 */
import { expect } from 'chai';
import type * as zmq from 'zeromq';
import { INTERRUPTED_TRIES, observerOf, retryInterrupted } from '../../../src/zmq/interrupted.js';

const errno = (code: string) => Object.assign(new Error(code), { code });

/** a call that fails with `errors` in turn, then returns 'done'; counts its calls */
function failing(errors: Error[]) {
  const call = () => {
    call.calls++;
    const error = errors.shift();
    if (error) throw error;
    return 'done';
  };
  call.calls = 0;
  return call;
}

describe('zmq/interrupted: retryInterrupted', () => {
  it('makes an interrupted call again until it succeeds, and returns its result', () => {
    const call = failing([errno('EINTR'), errno('EINTR'), errno('EINTR')]);
    expect(retryInterrupted(call)).to.equal('done');
    expect(call.calls).to.equal(4);
  });

  it('lets any other error through at its first occurrence', () => {
    const call = failing([errno('EMFILE'), errno('EINTR')]);
    expect(() => retryInterrupted(call)).to.throw('EMFILE');
    expect(call.calls).to.equal(1);
    const plain = failing([new Error('no code')]);
    expect(() => retryInterrupted(plain)).to.throw('no code');
    expect(plain.calls).to.equal(1);
  });

  it(`gives up after ${INTERRUPTED_TRIES} interrupted tries, with the EINTR`, () => {
    const call = failing(Array.from({ length: INTERRUPTED_TRIES + 5 }, () => errno('EINTR')));
    expect(() => retryInterrupted(call)).to.throw('EINTR');
    expect(call.calls).to.equal(INTERRUPTED_TRIES);
    // one interruption fewer: the last try succeeds
    const almost = failing(Array.from({ length: INTERRUPTED_TRIES - 1 }, () => errno('EINTR')));
    expect(retryInterrupted(almost)).to.equal('done');
  });

  it('observerOf makes the observer again after EINTR or EADDRINUSE, and only then', () => {
    const observer = {} as zmq.Observer;
    const socketFailing = (errors: Error[]) => {
      const events = failing(errors);
      const socket = {
        get events() {
          events();
          return observer;
        },
      } as unknown as zmq.Socket;
      return { socket, events };
    };
    const flaky = socketFailing([errno('EINTR'), errno('EADDRINUSE')]);
    expect(observerOf(flaky.socket)).to.equal(observer);
    expect(flaky.events.calls).to.equal(3);
    const broken = socketFailing([errno('EMFILE')]);
    expect(() => observerOf(broken.socket)).to.throw('EMFILE');
    expect(broken.events.calls).to.equal(1);
    // a connect is not retried after EADDRINUSE: that one is the caller's to see
    const connect = failing([errno('EADDRINUSE')]);
    expect(() => retryInterrupted(connect)).to.throw('EADDRINUSE');
  });
});
