/** The vote and back-off policy (src/client/votes.ts): pure, with the random source injected. */
import { expect } from 'chai';
import { busyBackoffMs, VoteBook } from '../../../src/client/votes.js';

/** no jitter: a first vote is due at once */
const NOW = { baseMs: 50, maxMs: 1000, random: () => 0 };

describe('VoteBook', () => {
  it('every server is due before any vote is sent', () => {
    expect(new VoteBook(1000, NOW).due(3, 0)).to.deep.equal([0, 1, 2]);
    expect(new VoteBook(1000, NOW).due(0, 0)).to.deep.equal([]);
  });

  it('a server with an outstanding vote is not due until the vote timeout has passed', () => {
    const book = new VoteBook(1000, NOW);
    book.sent(1, 77, 5000);
    expect(book.due(2, 5000)).to.deep.equal([0]);
    expect(book.due(2, 6000)).to.deep.equal([0], 'exactly the timeout is still outstanding');
    expect(book.due(2, 6001)).to.deep.equal([0, 1]);
  });

  it('serverOf(reqId) finds the server of an outstanding vote only', () => {
    const book = new VoteBook(1000, NOW);
    book.sent(0, 10, 0);
    book.sent(1, 11, 0);
    expect(book.serverOf(10)).to.equal(0);
    expect(book.serverOf(11)).to.equal(1);
    expect(book.serverOf(12)).to.equal(undefined);
    book.sent(0, 13, 1); // a new vote replaces the old one
    expect(book.serverOf(10)).to.equal(undefined);
    expect(book.serverOf(13)).to.equal(0);
  });

  it('settle() makes the server due again at once and forgets its reqId', () => {
    const book = new VoteBook(1000, NOW);
    book.sent(0, 10, 0);
    book.sent(1, 11, 0);
    book.settle(0);
    expect(book.due(2, 1)).to.deep.equal([0]);
    expect(book.serverOf(10)).to.equal(undefined);
    expect(book.serverOf(11)).to.equal(1);
  });

  it('clear() forgets every vote', () => {
    const book = new VoteBook(1000, NOW);
    book.sent(0, 10, 0);
    book.sent(1, 11, 0);
    book.clear();
    expect(book.due(2, 1)).to.deep.equal([0, 1]);
    expect(book.serverOf(11)).to.equal(undefined);
  });

  it('refused() backs off with a growing, jittered wait, so that clients do not vote in lockstep', () => {
    const low = new VoteBook(1000, { baseMs: 50, maxMs: 1000, random: () => 0 });
    const high = new VoteBook(1000, { baseMs: 50, maxMs: 1000, random: () => 0.99 });
    low.sent(0, 1, 0);
    expect(low.refused(0, 0)).to.equal(25);
    expect(low.isDue(0, 24)).to.equal(false);
    expect(low.isDue(0, 25)).to.equal(true);
    expect(low.refused(0, 25)).to.equal(50);
    expect(low.refused(0, 75)).to.equal(100);
    for (let i = 0; i < 10; i++) low.refused(0, 0);
    expect(low.refused(0, 0), 'capped').to.equal(500);
    high.sent(0, 1, 0);
    expect(high.refused(0, 0)).to.be.closeTo(74.5, 0.01);
    expect(high.serverOf(1)).to.equal(undefined);
  });
});

describe('VoteBook: the first vote of a search is not delayed', () => {
  it('whatever the random source draws, the first vote is due at once (it is the failover time)', () => {
    for (const r of [0, 0.5, 0.999, NaN, 1e9]) {
      const book = new VoteBook(1000, { baseMs: 50, maxMs: 1000, random: () => r });
      expect(book.isDue(0, 100), `draw ${r}`).to.equal(true);
    }
  });

  it('clients with different draws retry a refused vote at different moments (no lockstep)', () => {
    const draws = [0.1, 0.9];
    const retries = draws.map((r) => {
      const book = new VoteBook(1000, { baseMs: 50, maxMs: 1000, random: () => r });
      book.sent(0, 1, 0);
      book.refused(0, 0);
      for (let t = 0; t <= 200; t++) if (book.isDue(0, t)) return t;
      return -1;
    });
    expect(retries).to.deep.equal([30, 70]);
  });

  it('a broken random source (NaN, out of range) cannot stall or hurry a retry past its bounds', () => {
    const nan = new VoteBook(1000, { baseMs: 50, maxMs: 1000, random: () => NaN });
    nan.sent(0, 1, 0);
    expect(nan.refused(0, 0)).to.equal(50);
    const huge = new VoteBook(1000, { baseMs: 50, maxMs: 1000, random: () => 1e9 });
    huge.sent(0, 1, 50);
    expect(huge.refused(0, 50)).to.be.lessThan(75);
  });
});

describe('busyBackoffMs', () => {
  it('waits between one and two times min(250 ms, requestTimeoutMs / 4), by the random source', () => {
    expect(busyBackoffMs(2000, () => 0)).to.equal(250);
    expect(busyBackoffMs(2000, () => 0.5)).to.equal(375);
    expect(busyBackoffMs(400, () => 0)).to.equal(100);
    expect(busyBackoffMs(400, () => 0.999)).to.be.closeTo(199.9, 0.01);
  });
});
