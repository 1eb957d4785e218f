/**
 * Publication (src/server/publishing.ts) over the watermark: changes go out in order up to what
 * the policy allows, to the publisher and to followers; while a send queue is backed up the rest
 * waits for a later event-loop turn, and picks up where it stopped.
 */
import { expect } from 'chai';
import { CHP_ASK_GRACE_MS, CONNECT_GRACE_MS, Publishing } from '../../../src/server/publishing.js';
import { Followers } from '../../../src/server/followers.js';
import { decodeKvMsg } from '../../../src/wire/index.js';
import type { Outbox } from '../../../src/zmq/index.js';
import { DELETE_PREFIX_PROPERTY, type Entry } from '../../../src/kv/index.js';
import type { UpdateStream } from '../../../src/server/update-stream.js';

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
  /** what the update stream was given, and whether the publisher has a key subscription */
  const streamed: number[] = [];
  const listeners = { subscribed: true, now: 0 };
  const updates = { add: (e: Entry) => void streamed.push(e.sequence), flush: () => undefined };
  const publishing = new Publishing({
    pubOut: pubOut as unknown as Outbox,
    routerOut: routerOut as unknown as Outbox,
    followers,
    updates: updates as unknown as UpdateStream,
    publishableUpTo: () => watermark.upTo,
    subscriptions: () => (listeners.subscribed ? ['/'] : []),
    now: () => listeners.now,
  });
  /** announces `sequences` and lets them all out */
  const commit = (...sequences: number[]) => {
    for (const s of sequences) publishing.announce(entry(s));
    watermark.upTo = Math.max(...sequences);
    publishing.release();
  };
  return { publishing, published, routerOut, watermark, streamed, listeners, commit, followers };
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

  it('a key change goes to the RFC 12 publisher only while a plain CHP client may get it: a subscription read from it, or an ICANHAZ? within CHP_ASK_GRACE_MS, or a connection within CONNECT_GRACE_MS; native clients get every change on the update stream', () => {
    const h = harness();
    h.commit(1);
    expect(h.published, 'subscribed: it goes').to.deep.equal([1]);
    h.listeners.subscribed = false;
    h.commit(2, 3);
    expect(h.published, 'nobody to send it to').to.deep.equal([1]);
    h.publishing.expectSubscriber(CHP_ASK_GRACE_MS);
    h.commit(4);
    expect(h.published, 'a client asked: its subscription may not be read yet').to.deep.equal([1, 4]);
    h.listeners.now += CHP_ASK_GRACE_MS - 1;
    h.commit(5);
    expect(h.published).to.deep.equal([1, 4, 5]);
    h.listeners.now += 1;
    h.commit(6);
    expect(h.published, 'the grace is over').to.deep.equal([1, 4, 5]);
    h.publishing.expectSubscriber(CONNECT_GRACE_MS);
    h.commit(7);
    h.listeners.now += CONNECT_GRACE_MS;
    h.commit(8);
    expect(h.published, 'a connection to the publisher: for a shorter while').to.deep.equal([1, 4, 5, 7]);
    h.listeners.subscribed = true;
    h.commit(9);
    expect(h.published).to.deep.equal([1, 4, 5, 7, 9]);
    expect(h.streamed, 'the update stream got every change').to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('with no plain CHP subscriber, a delete by prefix still goes to the publisher', () => {
    const h = harness();
    h.listeners.subscribed = false;
    h.publishing.announce({
      ...entry(1),
      key: '/a/',
      body: Buffer.alloc(0),
      properties: `${DELETE_PREFIX_PROPERTY}=1\n`,
    });
    h.watermark.upTo = 1;
    h.publishing.release();
    expect(h.published).to.deep.equal([1]);
  });
});
