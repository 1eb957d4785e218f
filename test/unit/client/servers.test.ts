/**
 * Server addresses and vote bookkeeping (src/client/servers.ts).
 */
import { expect } from 'chai';
import { parseServer, VoteBook } from '../../../src/client/servers.js';
import { InvalidArgumentError } from '../../../src/errors.js';

describe('parseServer', () => {
  it('derives the publisher (P+1) and collector (P+2) from the snapshot endpoint', () => {
    expect(parseServer('tcp://127.0.0.1:5556')).to.deep.equal({
      snapshot: 'tcp://127.0.0.1:5556',
      publisher: 'tcp://127.0.0.1:5557',
      collector: 'tcp://127.0.0.1:5558',
    });
    expect(parseServer('tcp://backup.internal:5566').collector).to.equal('tcp://backup.internal:5568');
  });

  it('accepts bracketed IPv6 hosts, surrounding whitespace and the highest usable port', () => {
    expect(parseServer('tcp://[::1]:5556').publisher).to.equal('tcp://[::1]:5557');
    expect(parseServer('  tcp://h:5556\n').snapshot).to.equal('tcp://h:5556');
    expect(parseServer('tcp://h:65533').collector).to.equal('tcp://h:65535');
    expect(parseServer('tcp://h:1').publisher).to.equal('tcp://h:2');
  });

  it('normalises leading zeros in the port', () => {
    expect(parseServer('tcp://h:05556').snapshot).to.equal('tcp://h:5556');
  });

  it('refuses endpoints that are not tcp://HOST:PORT with InvalidArgumentError', () => {
    const bad = [
      '',
      '127.0.0.1:5556',
      'udp://h:5556',
      'tcp://h',
      'tcp://h:',
      'tcp://:5556',
      'tcp://h:abc',
      'tcp://h:0',
      'tcp://h:65534', // collector would be 65536
      'tcp://h:65535',
      'tcp://h:123456',
      'tcp://h:5556/x',
      'tcp://a b:5556',
      'tcp://::1:5556',
      'ipc:///tmp/sock',
    ];
    for (const endpoint of bad) {
      expect(() => parseServer(endpoint), JSON.stringify(endpoint)).to.throw(
        InvalidArgumentError,
        /tcp:\/\/HOST:PORT/,
      );
    }
  });
});

describe('VoteBook', () => {
  it('every server is due before any vote is sent', () => {
    expect(new VoteBook(1000).due(3, 0)).to.deep.equal([0, 1, 2]);
    expect(new VoteBook(1000).due(0, 0)).to.deep.equal([]);
  });

  it('a server with an outstanding vote is not due until the vote timeout has passed', () => {
    const book = new VoteBook(1000);
    book.sent(1, 77, 5000);
    expect(book.due(2, 5000)).to.deep.equal([0]);
    expect(book.due(2, 6000)).to.deep.equal([0], 'exactly the timeout is still outstanding');
    expect(book.due(2, 6001)).to.deep.equal([0, 1]);
  });

  it('serverOf(reqId) finds the server of an outstanding vote only', () => {
    const book = new VoteBook(1000);
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
    const book = new VoteBook(1000);
    book.sent(0, 10, 0);
    book.sent(1, 11, 0);
    book.settle(0);
    expect(book.due(2, 1)).to.deep.equal([0]);
    expect(book.serverOf(10)).to.equal(undefined);
    expect(book.serverOf(11)).to.equal(1);
  });

  it('clear() forgets every vote', () => {
    const book = new VoteBook(1000);
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
