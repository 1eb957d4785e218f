/**
 * ZMTP 3.0 as the update stream speaks it (src/wire/zmtp.ts): the bytes it sends, byte for byte
 * against RFC 23, and a reader that gives the same messages however TCP cuts the stream.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  FLAG_COMMAND,
  FLAG_MORE,
  frame,
  greeting,
  message as encodeMessage,
  messageParts,
  UNCOPIED_FRAME_BYTES,
  ready,
  subscription,
  ZmtpError,
  ZmtpReader,
} from '../../../src/wire/zmtp.js';

/** A peer's greeting: version 3.1 (libzmq 4.3), NULL, as-server 1. */
function peerGreeting(major = 3, mechanism = 'NULL'): Buffer {
  const g = Buffer.alloc(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = major;
  g[11] = 1;
  g.write(mechanism, 12, 'latin1');
  g[32] = 1;
  return g;
}

/** A message as a publisher sends it: every frame but the last with MORE. */
function message(frames: Buffer[]): Buffer {
  return Buffer.concat(frames.map((f, i) => frame(i < frames.length - 1 ? FLAG_MORE : 0, f)));
}

function reader(max = -1) {
  const got = { messages: [] as string[][], greeted: 0, replies: [] as Buffer[] };
  const r = new ZmtpReader(
    {
      message: (frames) => got.messages.push(frames.map((f) => f.toString('latin1'))),
      greeted: () => got.greeted++,
      reply: (bytes) => got.replies.push(bytes),
    },
    max,
  );
  return { r, got };
}

describe('ZMTP 3.0 subscriber bytes', () => {
  it('greets as 3.0 with the NULL mechanism, not as server', () => {
    const g = greeting();
    expect(g.length).to.equal(64);
    expect(g.subarray(0, 12).toString('hex')).to.equal('ff00000000000000007f0300');
    expect(g.toString('latin1', 12, 16)).to.equal('NULL');
    expect(g.subarray(16).every((b) => b === 0)).to.equal(true);
  });

  it('sends READY with Socket-Type SUB as a short command frame', () => {
    expect(ready('SUB').toString('hex')).to.equal(
      '04' +
        '19' +
        '05' +
        Buffer.from('READY').toString('hex') +
        '0b' +
        Buffer.from('Socket-Type').toString('hex') +
        '00000003' +
        Buffer.from('SUB').toString('hex'),
    );
  });

  it('subscribes with a message of byte 1 then the prefix, long frames past 255 bytes', () => {
    expect(subscription('/w/').toString('hex')).to.equal('0004012f772f');
    expect(subscription('').toString('hex')).to.equal('000101');
    const long = subscription('x'.repeat(300));
    expect(long.subarray(0, 9).toString('hex')).to.equal('02000000000000012d');
    expect(long.length).to.equal(9 + 301);
  });
});

describe('ZMTP 3.0 publisher bytes', () => {
  it('sends READY with Socket-Type PUB', () => {
    expect(ready('PUB').toString('latin1')).to.equal('\x04\x19\x05READY\x0bSocket-Type\x00\x00\x00\x03PUB');
  });

  it('encodes a message in one buffer, byte for byte the frames one after the other', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 6 }), (sizes) => {
        const frames = sizes.map((n, i) => Buffer.alloc(n, i + 1));
        expect(encodeMessage(frames).equals(message(frames))).to.equal(true);
      }),
    );
  });
});

describe('ZmtpReader', () => {
  const kvpub = [
    Buffer.from('/w/1'),
    Buffer.alloc(8, 1),
    Buffer.alloc(16, 2),
    Buffer.alloc(0),
    Buffer.alloc(300, 3),
  ];
  const hugz = [Buffer.from('HUGZ'), Buffer.alloc(8), Buffer.alloc(0), Buffer.from('a=b\n'), Buffer.alloc(0)];
  const stream = Buffer.concat([
    peerGreeting(),
    frame(FLAG_COMMAND, Buffer.from('\x05READY\x0bSocket-Type\x00\x00\x00\x04XPUB', 'latin1')),
    message(kvpub),
    message(hugz),
    message([Buffer.alloc(5000, 4)]),
  ]);
  const expected = [kvpub, hugz, [Buffer.alloc(5000, 4)]].map((m) => m.map((f) => f.toString('latin1')));

  it('gives every message, once, in order, after one greeting, from one chunk', () => {
    const { r, got } = reader();
    r.feed(stream);
    expect(got.greeted).to.equal(1);
    expect(got.messages).to.deep.equal(expected);
  });

  /** Feeds the stream cut at random places, each chunk through `feed`; checks every message came. */
  function cutAnywhere(feed: (r: ZmtpReader, chunk: Buffer) => void): void {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }),
        (cuts) => {
          const { r, got } = reader();
          let from = 0;
          for (const at of [...cuts].sort((a, b) => a - b).concat(stream.length)) {
            feed(r, stream.subarray(from, at));
            from = at;
          }
          expect(got.greeted).to.equal(1);
          expect(got.messages).to.deep.equal(expected);
        },
      ),
      { numRuns: 300 },
    );
  }

  it('gives the same messages however the stream is cut into chunks', () => {
    cutAnywhere((r, chunk) => r.feed(chunk));
  });

  it('keeps nothing of a chunk past the call: the same messages from one buffer reused for every read', () => {
    // zmtp-sub.ts reads every socket into one shared buffer, overwritten by the next read.
    const shared = Buffer.alloc(stream.length);
    cutAnywhere((r, chunk) => {
      chunk.copy(shared);
      r.feed(shared.subarray(0, chunk.length));
      shared.fill(0xee);
    });
  });

  it('reads a stream fed one byte at a time', () => {
    const { r, got } = reader();
    for (let i = 0; i < stream.length; i++) r.feed(stream.subarray(i, i + 1));
    expect(got.messages).to.deep.equal(expected);
  });

  it('joins a large frame that comes in many chunks once, not again at every chunk', () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 7);
    const bytes = Buffer.concat([peerGreeting(), message([Buffer.from('/w/big'), big])]);
    const { r, got } = reader();
    const concat = Buffer.concat;
    let copied = 0;
    Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
      const joined = concat(list, total);
      copied += joined.length;
      return joined;
    }) as typeof Buffer.concat;
    try {
      for (let at = 0; at < bytes.length; at += 65_536) r.feed(bytes.subarray(at, at + 65_536));
    } finally {
      Buffer.concat = concat;
    }
    expect(got.messages).to.have.length(1);
    expect(got.messages[0]![1]).to.equal(big.toString('latin1'));
    // Joined at every chunk, 64 chunks would copy about 32 times the frame.
    expect(copied, 'bytes copied by joins').to.be.below(2 * big.length);
  });

  it('copies large frames out of the chunk and leaves small ones as views', () => {
    const frames: Buffer[][] = [];
    const r = new ZmtpReader({
      message: (f) => frames.push(f),
      greeted: () => undefined,
      reply: () => undefined,
    });
    const chunk = Buffer.concat([peerGreeting(), message([Buffer.alloc(10, 1), Buffer.alloc(5000, 2)])]);
    r.feed(chunk);
    expect(frames[0]![0]!.buffer).to.equal(chunk.buffer);
    expect(frames[0]![1]!.buffer).to.not.equal(chunk.buffer);
  });

  it('answers a PING with a PONG carrying its context', () => {
    const { r, got } = reader();
    r.feed(
      Buffer.concat([peerGreeting(), frame(FLAG_COMMAND, Buffer.from('\x04PING\x00\x0actx', 'latin1'))]),
    );
    expect(got.replies.map((b) => b.toString('latin1'))).to.deep.equal(['\x04\x08\x04PONGctx']);
  });

  it('refuses a frame over the limit, and a message at the limit passes', () => {
    const { r, got } = reader(10);
    r.feed(Buffer.concat([peerGreeting(), message([Buffer.alloc(10), Buffer.alloc(10)])]));
    expect(got.messages).to.have.length(1);
    expect(() => r.feed(message([Buffer.alloc(11)]))).to.throw(ZmtpError, /limit 10/);
  });

  it('refuses what is not a ZMTP 3 NULL peer, as early as it can tell', () => {
    expect(() => reader().r.feed(Buffer.from('HTTP/1.1 200 OK\r\n'))).to.throw(ZmtpError, /not a ZMTP peer/);
    expect(() => reader().r.feed(peerGreeting(2))).to.throw(ZmtpError, /3.0 or later/);
    expect(() => reader().r.feed(peerGreeting(3, 'CURVE'))).to.throw(ZmtpError, /CURVE/);
    const { r } = reader();
    r.feed(peerGreeting());
    expect(() => r.feed(Buffer.from([0x80, 1, 0]))).to.throw(ZmtpError, /reserved/);
  });

  it("tells the peer's Socket-Type from its READY, and ends a connection whose READY is malformed", () => {
    const types: (string | undefined)[] = [];
    const r = new ZmtpReader({
      message: () => undefined,
      greeted: () => undefined,
      reply: () => undefined,
      peerReady: (type) => types.push(type),
    });
    r.feed(
      Buffer.concat([
        peerGreeting(),
        frame(
          FLAG_COMMAND,
          Buffer.from('\x05READY\x08Identity\x00\x00\x00\x00\x0bsocket-type\x00\x00\x00\x03SUB', 'latin1'),
        ),
      ]),
    );
    r.feed(frame(FLAG_COMMAND, Buffer.from('\x05READY', 'latin1')));
    expect(types).to.deep.equal(['SUB', undefined]);
    const cut = new ZmtpReader({
      message: () => undefined,
      greeted: () => undefined,
      reply: () => undefined,
      peerReady: () => undefined,
    });
    expect(() =>
      cut.feed(
        Buffer.concat([
          peerGreeting(),
          frame(FLAG_COMMAND, Buffer.from('\x05READY\x0bSocket-Type\x00\x00\x00\x09SUB', 'latin1')),
        ]),
      ),
    ).to.throw(ZmtpError, 'malformed READY');
  });

  it("reads a DEALER's Identity from its READY, as our own READY writes it", () => {
    const seen: [string | undefined, string | undefined][] = [];
    const r = new ZmtpReader({
      message: () => undefined,
      greeted: () => undefined,
      reply: () => undefined,
      peerReady: (type, identity) => seen.push([type, identity?.toString('latin1')]),
    });
    r.feed(Buffer.concat([peerGreeting(), ready('DEALER', Buffer.from('~client-1'))]));
    r.feed(ready('ROUTER'));
    expect(seen).to.deep.equal([
      ['DEALER', '~client-1'],
      ['ROUTER', undefined],
    ]);
    // RFC 23's layout: name length, name, 4-byte value length, value; Socket-Type first.
    expect(ready('DEALER', Buffer.from('ab')).subarray(2).toString('latin1')).to.equal(
      '\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x02ab',
    );
  });

  it('encodes a message from a given frame on (a reply without its routing id)', () => {
    const frames = [Buffer.from('~id'), Buffer.from('A'), Buffer.alloc(300, 0x42)];
    expect(encodeMessage(frames, 1).equals(message(frames.slice(1)))).to.equal(true);
  });

  it('hands over copies when copyFrames is on, and views of the chunk otherwise', () => {
    for (const copyFrames of [false, true]) {
      const got: Buffer[] = [];
      const r = new ZmtpReader(
        { message: (f) => got.push(...f), greeted: () => undefined, reply: () => undefined },
        -1,
        copyFrames,
      );
      const chunk = Buffer.concat([peerGreeting(), message([Buffer.from('abc')])]);
      r.feed(chunk);
      chunk.fill(0x7a); // the caller reuses its read buffer
      expect(got[0]!.toString(), `copyFrames ${copyFrames}`).to.equal(copyFrames ? 'abc' : 'zzz');
    }
  });

  it('encodes a message in pieces that join into the same bytes, its large frames as they are', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 40_000 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 2 }),
        (sizes, from) => {
          const frames = sizes.map((size, i) => Buffer.alloc(size, i + 1));
          const start = Math.min(from, frames.length - 1);
          const parts = messageParts(frames, start);
          expect(Buffer.concat(parts).equals(encodeMessage(frames, start))).to.equal(true);
          // A large frame is its own piece: the very buffer given, not a copy.
          for (const f of frames.slice(start))
            if (f.length >= UNCOPIED_FRAME_BYTES) expect(parts).to.include(f);
        },
      ),
    );
  });
});
