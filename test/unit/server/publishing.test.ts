/**
 * Publication (src/server/publishing.ts) over the watermark: changes go out in order up to what
 * the policy allows, to the publisher and to followers; while a send queue is backed up the rest
 * waits for a later event-loop turn, and picks up where it stopped.
 */
import { expect } from 'chai';
import { Publishing } from '../../../src/server/publishing.js';
import { Followers } from '../../../src/server/followers.js';
import { decodeKvMsg } from '../../../src/wire/index.js';
import type { Outbox } from '../../../src/zmq/index.js';
import type { Entry } from '../../../src/kv/index.js';

const entry = (sequence: number): Entry =>
  ({
    key: `/k${sequence}`,
    sequence,
    uuid: 'u'.repeat(16),
    properties: '',
    body: Buffer.from('v'),
    expiresAt: 0,
  }) as Entry;

function harness() {
  const published: number[] = [];
  const pubOut = {
    length: 0,
    post: (frames: Buffer[]) => void published.push(decodeKvMsg(frames).sequence),
  };
  const routerOut = { length: 0 };
  const watermark = { upTo: 0 };
  const followers = new Followers({ send: () => Promise.resolve(), failed: () => undefined });
  const publishing = new Publishing({
    pubOut: pubOut as unknown as Outbox,
    routerOut: routerOut as unknown as Outbox,
    followers,
    publishableUpTo: () => watermark.upTo,
  });
  return { publishing, published, routerOut, watermark };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('server/publishing: the publisher side of the watermark', () => {
  it('publishes a change only once the watermark reaches it, in order', () => {
    const h = harness();
    for (const s of [1, 2, 3]) h.publishing.announce(entry(s));
    expect(h.published, 'held: the passive has none of them').to.deep.equal([]);
    h.watermark.upTo = 2;
    h.publishing.release();
    expect(h.published).to.deep.equal([1, 2]);
    expect(h.publishing.publishedSequence).to.equal(2);
    h.watermark.upTo = 3;
    h.publishing.release();
    expect(h.published).to.deep.equal([1, 2, 3]);
  });

  it('while the snapshot socket is backed up, waits for a later turn and goes on from there', async () => {
    const h = harness();
    h.watermark.upTo = 10;
    h.routerOut.length = 5_000;
    for (let s = 1; s <= 3; s++) h.publishing.announce(entry(s));
    expect(h.published, 'replies first').to.deep.equal([]);
    await turn();
    expect(h.published, 'still backed up').to.deep.equal([]);
    h.routerOut.length = 0;
    for (let i = 0; i < 10 && h.published.length < 3; i++) await turn();
    expect(h.published).to.deep.equal([1, 2, 3]);
  });

  it('reset drops what was not published; with a sequence, counts from there', () => {
    const h = harness();
    h.publishing.announce(entry(1));
    h.publishing.reset();
    h.watermark.upTo = 1;
    h.publishing.release();
    expect(h.published).to.deep.equal([]);
    h.publishing.reset(7);
    expect(h.publishing.publishedSequence).to.equal(7);
  });
});
