/**
 * The process-wide ZeroMQ contexts of the client (src/client/contexts.ts): one per server host,
 * made at first use and kept (zeromq.js ends a dropped context only at process exit).
 */
import { expect } from 'chai';
import { ContextPool, hostOf } from '../../../src/client/contexts.js';

describe('ContextPool', () => {
  it('gives every link to one host the same context, and another host its own', () => {
    let made = 0;
    const pool = new ContextPool(() => ({ n: ++made }));
    const a1 = pool.get('primary.internal');
    const a2 = pool.get('primary.internal');
    const b = pool.get('backup.internal');
    expect(a2).to.equal(a1);
    expect(b).to.not.equal(a1);
    expect(made).to.equal(2);
    expect(pool.size).to.equal(2);
  });

  it('makes a context that could not be made again at the next use', () => {
    let fail = true;
    const pool = new ContextPool(() => {
      if (fail) throw new Error('EMFILE');
      return {};
    });
    expect(() => pool.get('h')).to.throw('EMFILE');
    expect(pool.size).to.equal(0);
    fail = false;
    const c = pool.get('h');
    expect(pool.get('h')).to.equal(c);
  });
});

describe('hostOf', () => {
  it('takes the host of tcp endpoints, bracketed IPv6 included', () => {
    expect(hostOf('tcp://127.0.0.1:5556')).to.equal('127.0.0.1');
    expect(hostOf('tcp://backup.internal:5566')).to.equal('backup.internal');
    expect(hostOf('tcp://[::1]:5556')).to.equal('[::1]');
  });

  it('keeps anything else whole, so it still gets a context of its own', () => {
    expect(hostOf('ipc:///tmp/x')).to.equal('ipc:///tmp/x');
  });
});
