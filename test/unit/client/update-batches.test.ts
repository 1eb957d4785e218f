/**
 * The client's side of the native update stream (wire/updates.ts): a batch of updates is applied
 * as its KVPUBs would be, one after the other (inbound.ts); a hole inside a batch makes a
 * whole-map replica hold the rest and resume; a malformed batch is dropped and counted with
 * nothing of it applied. And the subscriber's gate (zmtp-sub.ts UpdateGate): only its own topics,
 * and HUGZ only once its first batch proved the subscription in force. Fake clock and transport.
 */
import { expect } from 'chai';
import { Client } from '../../../src/client/client.js';
import type { DropInfo } from '../../../src/client/drops.js';
import { UpdateGate } from '../../../src/client/follow-stream.js';
import { encodeHugz, encodeUpdates, Native } from '../../../src/wire/index.js';
import { FakeNetwork } from './fake-server.js';

const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';

const clients: Client[] = [];

async function setup(subtree = '') {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE', chunk: 2 });
  net.addServer(B, { state: 'PASSIVE', chunk: 2 });
  a.set('/s/k0', 'v0');
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: 500,
    mode: 'native',
    transport: net.transport,
    clock: net.clock,
    ...(subtree ? { subtree } : {}),
  });
  clients.push(client);
  const updates: string[] = [];
  client.on('update', (u: { key: string }) => updates.push(u.key));
  const drops: DropInfo[] = [];
  client.on('dropped', (info) => drops.push(info));
  await net.settle();
  await client.ready(100);
  await net.advance(200);
  return { net, a, client, updates, drops };
}

describe('Client: batches of the update stream', function () {
  this.timeout(10_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  it('applies every update of a batch, in order, and emits one update event each', async () => {
    const s = await setup();
    s.a.holdPublished();
    s.a.set('/s/k1', 'one');
    s.a.set('/s/k2', 'two');
    s.a.set('/s/k1', 'three');
    const resumes = s.a.requestsOf(Native.RESUME).length;
    s.a.releasePublishedAsBatches();
    await s.net.settle();
    expect(s.updates.slice(-3)).to.deep.equal(['/s/k1', '/s/k2', '/s/k1']);
    expect(s.client.getString('/s/k1')).to.equal('three');
    expect(s.client.getString('/s/k2')).to.equal('two');
    expect(s.a.requestsOf(Native.RESUME).length, 'no hole: no resume').to.equal(resumes);
  });

  it('a hole inside a batch: the whole-map replica applies what comes before it, holds the rest, and resumes', async () => {
    const s = await setup();
    s.a.holdPublished();
    for (const k of ['/s/a', '/s/b', '/s/c']) s.a.set(k, k);
    const resumes = s.a.requestsOf(Native.RESUME).length;
    s.a.releasePublishedAsBatches([0, 2]); // /s/b lost on the way
    await s.net.settle();
    expect(s.a.requestsOf(Native.RESUME).length, 'the hole asks for a resume').to.equal(resumes + 1);
    expect(s.client.getString('/s/a')).to.equal('/s/a');
    expect(s.client.getString('/s/b'), 'the resume brought the lost one').to.equal('/s/b');
    expect(s.client.getString('/s/c')).to.equal('/s/c');
    expect(s.updates.filter((k) => k.length === 4).sort()).to.deep.equal(['/s/a', '/s/b', '/s/c']);
  });

  it("the stream's subscriber connected again: a subtree watcher resumes at its first batch, and gets what it missed", async () => {
    const s = await setup('/s/');
    const link = s.net.links.find((l) => l.address.snapshot === A && l.prefixes !== undefined)!;
    s.a.holdPublished();
    s.a.set('/s/lost', 'published while the subscriber was away');
    s.a.set('/s/after', 'on the new connection');
    const resumes = s.a.requestsOf(Native.RESUME).length;
    link.handlers.resubscribed!();
    s.a.releasePublishedAsBatches([1]); // the first never reached the new connection
    await s.net.settle();
    expect(s.a.requestsOf(Native.RESUME).length, 'the first batch resumed').to.equal(resumes + 1);
    expect(s.client.getString('/s/lost')).to.equal('published while the subscriber was away');
    expect(s.client.getString('/s/after')).to.equal('on the new connection');
  });

  it('connected again while a resume is in flight: one more resume once it ends (its answer may predate the subscription)', async () => {
    const s = await setup('/s/');
    const link = s.net.links.find((l) => l.address.snapshot === A && l.prefixes !== undefined)!;
    const resumes = s.a.requestsOf(Native.RESUME).length;
    const reconnect = () => {
      link.handlers.resubscribed!();
      link.handlers.update(encodeUpdates('/s/', [])); // the new subscription's first batch
    };
    reconnect(); // ready: resumes at once
    reconnect(); // that resume is not answered yet
    await s.net.settle();
    expect(s.a.requestsOf(Native.RESUME).length).to.equal(resumes + 2);
  });

  it('a malformed batch is dropped and counted, nothing of it is applied, and a resume brings its updates', async () => {
    const s = await setup('/s/');
    s.a.holdPublished();
    s.a.set('/s/x', 'x');
    s.a.set('/s/y', 'y');
    const resumes = s.a.requestsOf(Native.RESUME).length;
    s.a.loseRequests(Native.RESUME); // so that only the batch itself could have applied anything
    // cut inside the second entry: the first one is whole, and must not be applied either
    s.a.releasePublishedAsBatches(undefined, (f) => [f[0]!, f[1]!.subarray(0, f[1]!.length - 3)]);
    await s.net.settle();
    expect(s.drops.map((d) => d.source)).to.deep.equal(['published']);
    expect(Object.values(s.client.stats().dropped)).to.deep.equal([1]);
    expect(s.a.requestsOf(Native.RESUME).length, 'the drop asked for a resume (lost)').to.equal(resumes + 1);
    expect(s.client.getString('/s/x'), 'nothing of the batch applied').to.equal(undefined);
    expect(s.client.getString('/s/y')).to.equal(undefined);
    // the next update: the client resumes again (it did not get the first answer) and has all three
    s.a.set('/s/z', 'z');
    for (let i = 0; i < 50 && s.client.getString('/s/x') === undefined; i++) await s.net.advance(100);
    expect(s.client.getString('/s/x')).to.equal('x');
    expect(s.client.getString('/s/y')).to.equal('y');
    expect(s.client.getString('/s/z')).to.equal('z');
  });
});

describe('UpdateGate: what the update stream subscriber passes on', () => {
  const hugz = encodeHugz(5);

  it('subscribes to each prefix ended by a NUL, and to HUGZ', () => {
    expect(new UpdateGate(['', '/a/']).subscriptions).to.deep.equal(['\0', '/a/\0', 'HUGZ']);
    // the client follows [subtree, HUGZ]: HUGZ is the HUGZ subscription, not a prefix of batches
    expect(new UpdateGate(['/a/', 'HUGZ']).subscriptions).to.deep.equal(['/a/\0', 'HUGZ']);
    expect(new UpdateGate(['/a/', 'HUGZ']).passes(encodeUpdates('HUGZ', []))).to.equal(false);
  });

  it('drops HUGZ until a batch of its own came, then passes them', () => {
    const gate = new UpdateGate(['/a/']);
    expect(gate.passes(hugz), 'before any batch: proves nothing').to.equal(false);
    expect(gate.passes(encodeUpdates('/a/', [])), 'the empty batch of the subscription').to.equal(true);
    expect(gate.passes(hugz)).to.equal(true);
  });

  it('after a reconnection (reset), drops HUGZ again until a batch of its own came on it', () => {
    const gate = new UpdateGate(['/a/']);
    expect(gate.passes(encodeUpdates('/a/', []))).to.equal(true);
    expect(gate.passes(hugz)).to.equal(true);
    gate.reset();
    expect(gate.passes(hugz), 'the new connection proves nothing yet').to.equal(false);
    expect(gate.passes(encodeUpdates('/a/', []))).to.equal(true);
    expect(gate.passes(hugz)).to.equal(true);
  });

  it("drops a longer prefix's batch (its topic starts with ours), which does not confirm either", () => {
    const gate = new UpdateGate(['/a']);
    expect(gate.passes(encodeUpdates('/a/b/', []))).to.equal(false);
    expect(gate.passes(hugz)).to.equal(false);
    expect(gate.passes(encodeUpdates('/a', []))).to.equal(true);
  });

  it('drops a two-frame message whose topic has no NUL at its end', () => {
    const gate = new UpdateGate(['/a/']);
    expect(gate.passes([Buffer.from('/a/'), Buffer.alloc(0)])).to.equal(false);
  });
});
