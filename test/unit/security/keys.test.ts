/**
 * Z85, CURVE keys and key files, session tokens (src/security): byte-exact where a spec gives
 * vectors, and checked against libzmq itself where it has the answer.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import * as zmq from 'zeromq';
import {
  formatKeyFile,
  generateKeyPair,
  KeyError,
  parseKeyFile,
  publicKeyOf,
  sessionToken,
  sharedSecret,
  readSessionToken,
  tokenMintedAt,
  z85Decode,
  z85Encode,
} from '../../../src/security/index.js';

describe('Z85', () => {
  it('encodes and decodes the RFC 32 test vector', () => {
    const bytes = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
    expect(z85Encode(bytes)).to.equal('HelloWorld');
    expect(z85Decode('HelloWorld')).to.deep.equal(bytes);
  });

  it('round-trips any multiple of 4 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (raw) => {
        const bytes = Buffer.from(raw.subarray(0, raw.length - (raw.length % 4)));
        expect(z85Decode(z85Encode(bytes))).to.deep.equal(bytes);
      }),
    );
  });

  it('refuses text that is not Z85', () => {
    expect(z85Decode('Hello')).to.not.equal(undefined);
    expect(z85Decode('Hell')).to.equal(undefined); // not a multiple of 5
    expect(z85Decode('Hell"')).to.equal(undefined); // not in the alphabet
    expect(z85Decode('#####')).to.equal(undefined); // above 2^32
    expect(() => z85Encode(Buffer.alloc(3))).to.throw(RangeError);
  });
});

describe('CURVE keys', () => {
  it('derives the same public key as libzmq', () => {
    for (let i = 0; i < 5; i++) {
      const pair = zmq.curveKeyPair();
      expect(publicKeyOf(pair.secretKey)).to.equal(pair.publicKey);
    }
    const ours = generateKeyPair();
    expect(publicKeyOf(ours.secretKey)).to.equal(ours.publicKey);
    expect(ours.publicKey).to.have.length(40);
  });

  it('computes one shared secret from either side', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    expect(sharedSecret(a.secretKey, b.publicKey)).to.deep.equal(sharedSecret(b.secretKey, a.publicKey));
    expect(sharedSecret(a.secretKey, b.publicKey)).to.not.deep.equal(
      sharedSecret(a.secretKey, generateKeyPair().publicKey),
    );
  });

  it('writes key files in the zcert layout and reads them back', () => {
    const pair = generateKeyPair();
    const secretText = formatKeyFile(pair, true);
    expect(secretText).to.match(/^curve$/m);
    expect(parseKeyFile(secretText)).to.deep.equal(pair);
    const publicText = formatKeyFile(pair, false);
    expect(publicText).to.not.include(pair.secretKey);
    expect(parseKeyFile(publicText)).to.deep.equal({ publicKey: pair.publicKey });
    expect(parseKeyFile(`${pair.publicKey}\n`)).to.deep.equal({ publicKey: pair.publicKey });
  });

  it('refuses malformed key files with one line naming the problem', () => {
    const pair = generateKeyPair();
    const other = generateKeyPair();
    const cases: [string, RegExp][] = [
      ['', /has no public-key/],
      ['curve\n    public-key = "short"\n', /public-key is not a CURVE key/],
      [
        `curve\n    public-key = "${pair.publicKey}"\n    secret-key = "bad"\n`,
        /secret-key is not a CURVE key/,
      ],
      [
        `curve\n    public-key = "${pair.publicKey}"\n    secret-key = "${other.secretKey}"\n`,
        /does not belong/,
      ],
    ];
    for (const [text, message] of cases) {
      expect(() => parseKeyFile(text, 'x.key'))
        .to.throw(KeyError, message)
        .with.property('message')
        .that.does.not.include('\n');
    }
  });
});

describe('session tokens', () => {
  const server = generateKeyPair();
  const client = generateKeyPair();
  const secretFor = (key: string) => sharedSecret(server.secretKey, key);

  it('name the client key to the server whose key they were made for', () => {
    const token = Buffer.from(sessionToken(client, server.publicKey));
    expect(token.length).to.be.below(256); // a ZeroMQ routing id
    expect(token[0]).to.not.equal(0); // ids starting with a zero byte are libzmq's
    expect(readSessionToken(token, server.publicKey, secretFor)?.publicKey).to.equal(client.publicKey);
  });

  it('carry the time they were minted, covered by the MAC', () => {
    const token = sessionToken(client, server.publicKey, 1_700_000_000_123);
    expect(readSessionToken(Buffer.from(token), server.publicKey, secretFor)).to.deep.equal({
      publicKey: client.publicKey,
      mintedAt: 1_700_000_000_123,
    });
    expect(tokenMintedAt(token)).to.equal(1_700_000_000_123);
    // Another time in the same token (the nonce re-encoded) no longer verifies.
    const later = sessionToken(client, server.publicKey, 1_800_000_000_000);
    const spliced = token.slice(0, 43) + later.slice(43, 63) + token.slice(63);
    expect(readSessionToken(Buffer.from(spliced), server.publicKey, secretFor)).to.equal(undefined);
  });

  it('cannot be made for another key, altered, or used with another server', () => {
    const victim = generateKeyPair();
    // An attacker with its own key claims the victim's: the MAC needs the victim's secret key.
    const forged = sessionToken(client, server.publicKey).replace(client.publicKey, victim.publicKey);
    expect(readSessionToken(Buffer.from(forged), server.publicKey, secretFor)).to.equal(undefined);
    const token = sessionToken(client, server.publicKey);
    fc.assert(
      fc.property(fc.nat(token.length - 1), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const bytes = Buffer.from(token);
        bytes[at] = bytes[at]! ^ flip;
        expect(readSessionToken(bytes, server.publicKey, secretFor)).to.equal(undefined);
      }),
    );
    const otherServer = generateKeyPair();
    expect(
      readSessionToken(Buffer.from(token), otherServer.publicKey, (k: string) =>
        sharedSecret(otherServer.secretKey, k),
      ),
    ).to.equal(undefined);
    expect(readSessionToken(Buffer.from([0, 0, 0, 0, 1]), server.publicKey, secretFor)).to.equal(undefined);
  });

  it('differ per connection (a fresh nonce each time)', () => {
    expect(sessionToken(client, server.publicKey)).to.not.equal(sessionToken(client, server.publicKey));
  });
});
