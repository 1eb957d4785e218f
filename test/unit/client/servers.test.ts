/**
 * Server addresses (src/client/servers.ts); the vote bookkeeping has its own test (votes.test.ts).
 */
import { expect } from 'chai';
import { parseServer } from '../../../src/client/servers.js';
import { InvalidArgumentError } from '../../../src/errors.js';

describe('parseServer', () => {
  it('derives the publisher (P+1), collector (P+2) and update stream (P+3) from the snapshot endpoint', () => {
    expect(parseServer('tcp://127.0.0.1:5556')).to.deep.equal({
      snapshot: 'tcp://127.0.0.1:5556',
      publisher: 'tcp://127.0.0.1:5557',
      collector: 'tcp://127.0.0.1:5558',
      updates: 'tcp://127.0.0.1:5559',
    });
    expect(parseServer('tcp://backup.internal:5566').collector).to.equal('tcp://backup.internal:5568');
  });

  it('accepts bracketed IPv6 hosts, surrounding whitespace and the highest usable port', () => {
    expect(parseServer('tcp://[::1]:5556').publisher).to.equal('tcp://[::1]:5557');
    expect(parseServer('  tcp://h:5556\n').snapshot).to.equal('tcp://h:5556');
    expect(parseServer('tcp://h:65533').collector).to.equal('tcp://h:65535');
    // No update stream above 65535: a native client then follows the publisher (transport.ts).
    expect(parseServer('tcp://h:65533').updates).to.equal(undefined);
    expect(parseServer('tcp://h:65532').updates).to.equal('tcp://h:65535');
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
