/** The client's phase table and the status signals its one funnel derives (src/client/session.ts). */
import { expect } from 'chai';
import { Session } from '../../../src/client/session.js';

describe('Session (phase table and status signals)', () => {
  it('follows finding -> syncing -> ready and refuses moves the table does not have', () => {
    const s = new Session();
    expect(s.phase).to.equal('finding');
    expect(s.setPhase('ready', { now: 0 }), 'finding -> ready skips the sync').to.equal(undefined);
    expect(s.phase).to.equal('finding');
    expect(s.setPhase('syncing', { now: 1 })).to.deep.equal([]);
    expect(s.setPhase('ready', { now: 2, server: 'A', sequence: 3 })).to.deep.equal([]);
    expect(s.connected).to.equal(true);
    expect(s.setPhase('closed', { now: 3 })).to.deep.equal([]);
    for (const next of ['finding', 'syncing', 'ready', 'closed'] as const)
      expect(s.setPhase(next, { now: 4 }), `closed -> ${next}`).to.equal(undefined);
  });

  it('losing the server after being ready says disconnected once, reconnecting once per period, reconnected with the outage length', () => {
    const s = new Session();
    s.setPhase('syncing', { now: 0 });
    s.setPhase('ready', { now: 10, server: 'A', sequence: 1 });
    expect(s.setPhase('syncing', { now: 20 }), 'a resync is no disconnection').to.deep.equal([]);
    s.setPhase('ready', { now: 25, server: 'A', sequence: 2 });
    expect(s.setPhase('finding', { now: 100, server: 'A', reason: 'server silent' })).to.deep.equal([
      { type: 'disconnected', server: 'A', reason: 'server silent' },
    ]);
    expect(s.setPhase('finding', { now: 110, reason: 'again' }), 'said once').to.deep.equal([]);
    expect(s.reconnecting(500, 500, [])).to.equal(undefined);
    expect(s.reconnecting(600, 500, [])).to.deep.equal({
      type: 'reconnecting',
      attempt: 1,
      downMs: 500,
      seen: [],
    });
    expect(s.reconnecting(700, 500, [])).to.equal(undefined);
    expect(s.reconnecting(1100, 500, [])).to.include({ attempt: 2 });
    s.setPhase('syncing', { now: 1200, server: 'B' });
    expect(s.reconnecting(5000, 500, []), 'not while syncing').to.equal(undefined);
    expect(s.setPhase('ready', { now: 1300, server: 'B', sequence: 9 })).to.deep.equal([
      { type: 'reconnected', server: 'B', sequence: 9, downMs: 1200 },
    ]);
  });

  it('a client that never connected gets no disconnected signal; unavailable is said once per outage', () => {
    const s = new Session();
    s.setPhase('syncing', { now: 0 });
    expect(s.setPhase('finding', { now: 1, reason: 'not active' })).to.deep.equal([]);
    expect(s.reconnecting(10_000, 500, []), 'not reconnecting: never connected').to.equal(undefined);
    expect(s.unavailable('no-history', [])).to.deep.equal({
      type: 'unavailable',
      reason: 'no-history',
      seen: [],
    });
    expect(s.unavailable('no-history', [])).to.equal(undefined);
  });
});
