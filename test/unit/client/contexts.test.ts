/**
 * The process-wide ZeroMQ contexts of the client (src/client/contexts.ts): one per server host,
 * shared while links use it, forgotten when the last one lets go.
 */
import { expect } from 'chai';
import { ContextPool, hostOf } from '../../../src/client/contexts.js';

describe('ContextPool', () => {
  it('gives every link to one host the same context, and another host its own', () => {
    let made = 0;
    const pool = new ContextPool(() => ({ n: ++made }));
    const a1 = pool.acquire('primary.internal');
    const a2 = pool.acquire('primary.internal');
    const b = pool.acquire('backup.internal');
    expect(a2).to.equal(a1);
    expect(b).to.not.equal(a1);
    expect(made).to.equal(2);
    expect(pool.size).to.equal(2);
  });

  it('keeps a context while any link holds it and makes a new one after the last release', () => {
    let made = 0;
    const pool = new ContextPool(() => ({ n: ++made }));
    const first = pool.acquire('h');
    pool.acquire('h');
    pool.release('h');
    expect(pool.acquire('h')).to.equal(first); // one user was left
    pool.release('h');
    pool.release('h');
    expect(pool.size).to.equal(0);
    expect(pool.acquire('h')).to.not.equal(first);
    expect(made).to.equal(2);
  });

  it('ignores a release of a host it does not hold', () => {
    const pool = new ContextPool(() => ({}));
    pool.release('nobody');
    const c = pool.acquire('h');
    pool.release('other');
    expect(pool.acquire('h')).to.equal(c);
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
