/**
 * TFOLLOW fan-out (src/server/followers.ts): an update goes only to followers whose prefixes
 * match and who may read it, HUGZ to every follower, each as a TPUB; a follower whose send fails
 * is forgotten at once and reported once.
 */
import { expect } from 'chai';
import { Followers } from '../../../src/server/followers.js';
import { Principal } from '../../../src/security/index.js';
import { encodeHugz, encodeKvMsg } from '../../../src/wire/chp.js';
import { decodeReply } from '../../../src/wire/native.js';

const kv = (key: string) =>
  encodeKvMsg({ key, sequence: 1, uuid: 'u'.repeat(16), properties: '', body: Buffer.from('v') });

function harness() {
  const sent: { to: string; frames: Buffer[]; stream: object }[] = [];
  const failed: string[] = [];
  let failNext = false;
  const followers = new Followers({
    send: (frames, stream) => {
      sent.push({ to: frames[0]!.toString(), frames: frames.slice(1), stream });
      if (failNext) return Promise.reject(new Error('pipe full'));
      return Promise.resolve();
    },
    failed: (_error, identity) => failed.push(identity.toString()),
  });
  return { followers, sent, failed, failSends: () => (failNext = true) };
}

describe('server/followers: TFOLLOW fan-out', () => {
  it('sends an update as a TPUB only to followers with a matching prefix and the right to read it', () => {
    const h = harness();
    h.followers.add(Buffer.from('all'), ['/'], undefined);
    h.followers.add(Buffer.from('other'), ['/other/'], undefined);
    h.followers.add(Buffer.from('bob'), ['/'], new Principal('bob', 'KEY', ['/pub/'], []));
    h.followers.publish(kv('/pub/a'), '/pub/a');
    h.followers.publish(kv('/secret'), '/secret');
    expect(
      h.sent.map((s) => `${s.to} ${(decodeReply(s.frames) as { msg: { key: string } }).msg.key}`),
    ).to.deep.equal(['all /pub/a', 'bob /pub/a', 'all /secret']);
  });

  it('sends HUGZ (no key) to every follower, and nothing once a follower is removed or all are cleared', () => {
    const h = harness();
    h.followers.add(Buffer.from('a'), ['/x/'], undefined);
    h.followers.add(Buffer.from('b'), ['/y/'], new Principal('b', 'KEY', [], []));
    h.followers.publish(encodeHugz(5));
    expect(h.sent.map((s) => s.to)).to.deep.equal(['a', 'b']);
    h.followers.remove(Buffer.from('a'));
    h.followers.publish(encodeHugz(6));
    expect(h.sent.map((s) => s.to)).to.deep.equal(['a', 'b', 'b']);
    h.followers.clear();
    h.followers.publish(encodeHugz(7));
    expect(h.sent).to.have.length(3);
    expect(h.followers.size).to.equal(0);
  });

  it('each follower is its own stream; a failed send forgets that follower and reports it once', async () => {
    const h = harness();
    h.followers.add(Buffer.from('a'), ['/'], undefined);
    h.followers.add(Buffer.from('b'), ['/'], undefined);
    h.followers.publish(kv('/k'), '/k');
    expect(h.sent[0]!.stream, 'one stream per follower').to.not.equal(h.sent[1]!.stream);
    h.failSends();
    h.followers.publish(kv('/k'), '/k');
    h.followers.publish(kv('/k'), '/k');
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.failed.sort()).to.deep.equal(['a', 'b']);
    expect(h.followers.size).to.equal(0);
  });
});
