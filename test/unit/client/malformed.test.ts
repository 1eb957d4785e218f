/**
 * Malformed input from a server, on the client (promise 6): dropped, counted by reason, reported
 * with a 'dropped' event, never thrown out of a socket handler, and a server whose replies are
 * malformed is treated as broken for the current search for the active (the client tries the
 * other one). Fake clock and fake transport (fake-server.ts); a wrapper transport damages chosen
 * messages on their way to the client. The fake network rethrows any exception a handler throws,
 * so a handler that throws fails these tests.
 */
import { expect } from 'chai';
import { Client, type ClientOptions } from '../../../src/client/client.js';
import type { DropInfo } from '../../../src/client/drops.js';
import type { Transport } from '../../../src/client/link.js';
import { Native, encodeKvMsg } from '../../../src/wire/index.js';
import { FakeNetwork, type FakeServer } from './fake-server.js';

const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';
const SERVER_TIMEOUT = 500;

type Tamper = (frames: Buffer[]) => Buffer[];

interface Setup {
  net: FakeNetwork;
  a: FakeServer;
  b: FakeServer;
  client: Client;
  drops: DropInfo[];
  /** replaces replies (snapshot socket) and updates (publisher) from A on their way to the client */
  tamper: { reply: Tamper; update: Tamper };
}

const clients: Client[] = [];

function setup(options: Partial<ClientOptions> = {}): Setup {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE', chunk: 2 });
  const b = net.addServer(B, { state: 'PASSIVE', chunk: 2 });
  for (const k of ['/s/k1', '/s/k2', '/s/k3', '/s/k4']) a.set(k, `v-${k}`);
  const tamper = { reply: (f: Buffer[]) => f, update: (f: Buffer[]) => f };
  const transport: Transport = (address, handlers) =>
    net.transport(
      address,
      address.snapshot === A
        ? {
            reply: (frames) => handlers.reply(tamper.reply(frames)),
            update: (frames) => handlers.update(tamper.update(frames)),
          }
        : handlers,
    );
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: SERVER_TIMEOUT,
    mode: 'native', // 'auto' waits for an advertisement (tests of its own)
    transport,
    clock: net.clock,
    ...options,
  });
  clients.push(client);
  const drops: DropInfo[] = [];
  client.on('dropped', (info) => drops.push(info));
  return { net, a, b, client, drops, tamper };
}

/** Damages the `nth` (1-based) message of one command, and lets every other message through. */
function nthOf(command: string, nth: number, damage: Tamper): Tamper {
  let seen = 0;
  return (frames) => {
    if (frames[0]?.toString('latin1') !== command) return frames;
    return ++seen === nth ? damage(frames) : frames;
  };
}

describe('Client: malformed messages from a server', function () {
  this.timeout(10_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  it('a TSYNC whose batch is truncated (0x00 0x09 0x01) is dropped and counted, nothing throws, and the client leaves that server for the other one', async () => {
    const s = setup();
    // The first chunk is fine (the client chooses A), the second one is the reported crash.
    s.tamper.reply = nthOf(Native.SYNC, 2, (f) => [f[0]!, f[1]!, Buffer.from([0x00, 0x09, 0x01])]);
    await s.net.settle();
    expect(s.client.stats().dropped).to.deep.equal({ 'batch-truncated': 1 });
    expect(s.drops).to.have.length(1);
    expect(s.drops[0]).to.include({ server: A, source: 'reply', reason: 'batch-truncated' });
    expect(s.client.server, 'A is not used').to.equal(undefined);
    const toA = s.a.requests.length;
    // B takes over; A is quarantined: nothing (no TPING, no sync) goes to it for a server timeout.
    s.b.copyFrom(s.a);
    s.b.promote();
    await s.net.advance(SERVER_TIMEOUT / 2);
    await s.client.ready(100);
    expect(s.client.server).to.equal(B);
    expect(s.a.requests.length, 'requests sent to the broken server').to.equal(toA);
    expect(s.client.getString('/s/k4')).to.equal('v-/s/k4');
    expect(s.client.entries().size).to.equal(4);
  });

  it('a quarantined server gets nothing (no TPING, TVOTE or sync) and its untried silence does not justify a vote for the passive; past the quarantine it is asked again and taken', async () => {
    const s = setup();
    // B would accept a vote (its peer link is cut): a vote sent now would make a second active.
    s.b.acceptVotes = true;
    s.tamper.reply = nthOf(Native.SYNC, 2, (f) => [f[0]!, f[1]!, Buffer.from([0x00, 0x09, 0x01])]);
    await s.net.settle();
    expect(s.client.stats().dropped).to.deep.equal({ 'batch-truncated': 1 });
    const toA = s.a.requests.length;
    const pingsToB = s.b.requestsOf(Native.PING).length;
    await s.net.advance(SERVER_TIMEOUT - 50);
    expect(s.a.requests.length, 'requests to the quarantined server').to.equal(toA);
    expect(s.b.requestsOf(Native.PING).length, 'the other server is still probed').to.be.greaterThan(
      pingsToB,
    );
    // A's quarantine ends at SERVER_TIMEOUT: its silence counts only from then, so no vote follows.
    await s.net.advance(SERVER_TIMEOUT);
    expect(s.b.votes, 'votes for the passive').to.have.length(0);
    await s.client.ready(100);
    expect(s.client.server).to.equal(A);
    expect(s.client.entries().size).to.equal(4);
    expect(s.b.isActive).to.equal(false);
  });

  it('plain CHP: a server whose snapshot has a malformed KVSYNC is not taken from the rest of that snapshot (its replica would miss the key), and is asked again later', async () => {
    const s = setup({ mode: 'chp' });
    s.tamper.reply = (f) =>
      f.length === 5 &&
      f[0]!.toString() === '/s/k1' &&
      s.client.stats().dropped['sequence-size'] === undefined
        ? [f[0]!, f[1]!.subarray(0, 3), f[2]!, f[3]!, f[4]!]
        : f;
    await s.net.settle();
    expect(s.client.stats().dropped).to.deep.equal({ 'sequence-size': 1 });
    expect(s.client.server, 'taken from a snapshot that lacks /s/k1').to.equal(undefined);
    // A stays silent (asked, then quarantined), B is passive and ignores ICANHAZ?: after each has
    // been silent for its timeout (3 x the assumed 1 s HUGZ interval) A is asked again.
    await s.net.advance(7000);
    await s.client.ready(100);
    expect(s.client.server).to.equal(A);
    expect(s.client.getString('/s/k1')).to.equal('v-/s/k1');
    expect(s.client.entries().size).to.equal(4);
  });

  it('a malformed TSYNCEND sequence is dropped and counted and the client keeps looking for the active', async () => {
    const s = setup();
    s.tamper.reply = nthOf(Native.SYNC_END, 1, (f) => [f[0]!, f[1]!, Buffer.alloc(3), ...f.slice(3)]);
    await s.net.settle();
    expect(s.client.stats().dropped).to.deep.equal({ 'sequence-size': 1 });
    expect(s.client.server).to.equal(undefined);
    // Past the quarantine A is asked again, answers properly and is taken.
    await s.net.advance(SERVER_TIMEOUT + 200);
    await s.client.ready(100);
    expect(s.client.server).to.equal(A);
    expect(s.client.sequence).to.equal(4);
  });

  for (const [what, cut, reason] of [
    ['short (4 bytes: the codec refuses it)', 4, 'sequence-size'],
    ['empty (no sequence for the write: the client refuses it)', 0, 'ack-size'],
  ] as const) {
    it(`a TACK whose sequence frame is ${what} is dropped (${reason}): the write is not settled by it, is re-sent with its uuid, and resolves with its real sequence`, async () => {
      const s = setup();
      await s.net.settle();
      await s.client.ready(100);
      await s.net.advance(200);
      s.tamper.reply = nthOf(Native.ACK, 1, (f) => [f[0]!, f[1]!, f[2]!.subarray(0, cut), f[3]!]);
      let outcome: number | Error | undefined;
      s.client.set('/s/w', 'x').then(
        (seq) => (outcome = seq),
        (error: Error) => (outcome = error),
      );
      await s.net.settle();
      expect(outcome, 'settled by a malformed acknowledgement').to.equal(undefined);
      expect(s.client.stats().dropped).to.deep.equal({ [reason]: 1 });
      await s.net.advance(SERVER_TIMEOUT + 300);
      expect(outcome).to.equal(5);
      expect(s.a.changesOf('/s/w'), 'applied once (same uuid)').to.equal(1);
      expect(s.client.getString('/s/w')).to.equal('x');
    });
  }

  it('a malformed KVPUB for a subtree client is dropped and counted, and a resume brings the change it carried', async () => {
    const s = setup({ subtree: '/s/' });
    await s.net.settle();
    await s.client.ready(100);
    await s.net.advance(200);
    const resumes = s.a.requestsOf(Native.RESUME).length;
    s.tamper.update = (f) =>
      f[0]?.toString() === '/s/new' ? [f[0], f[1]!.subarray(0, 7), f[2]!, f[3]!, f[4]!] : f;
    s.a.set('/s/new', 'fresh');
    await s.net.settle();
    expect(s.client.getString('/s/new')).to.equal('fresh');
    expect(s.a.requestsOf(Native.RESUME).length, 'a resume after the drop').to.equal(resumes + 1);
    expect(s.client.stats().dropped).to.deep.equal({ 'sequence-size': 1 });
    expect(s.drops[0]).to.include({ server: A, source: 'published' });
    expect(s.client.server).to.equal(A);
  });

  it("an 'update' listener that throws does not stop the sync, the other listeners or the socket", async () => {
    const s = setup();
    const seen: string[] = [];
    s.client.on('update', (u) => {
      if (u.key === '/s/k2') throw new Error('application bug');
    });
    s.client.on('update', (u) => seen.push(u.key));
    await s.net.settle();
    await s.client.ready(100);
    s.a.set('/s/k5', 'later');
    await s.net.advance(200);
    expect(seen).to.include.members(['/s/k1', '/s/k3', '/s/k4', '/s/k5']);
    expect(s.client.getString('/s/k5')).to.equal('later');
  });

  it('a native reply the codec refuses (a TPONG with a frame too many) is dropped as frame-count, and that server is not chosen', async () => {
    const s = setup();
    // Every TPONG from A carries an extra frame: A answers ACTIVE, but never in a decodable reply.
    s.tamper.reply = (f) => (f[0]?.toString('latin1') === Native.PONG ? [...f, Buffer.from('extra')] : f);
    await s.net.advance(200);
    expect(s.client.stats().dropped['frame-count'], 'dropped and counted').to.be.greaterThan(0);
    expect(s.drops[0]).to.include({ server: A, source: 'reply', reason: 'frame-count' });
    expect(s.client.server, 'A is not used').to.equal(undefined);
    expect(s.a.syncRequests, 'no sync asked of A').to.have.length(0);
    // The same pongs decodable again: A is taken once its quarantine is over and it is pinged again.
    s.tamper.reply = (f) => f;
    for (let i = 0; i < 30 && s.client.server === undefined; i++) await s.net.advance(100);
    expect(s.client.server).to.equal(A);
  });

  it('a reply that is no message of the protocol is counted as unexpected-reply', async () => {
    const s = setup({ mode: 'native' });
    await s.net.settle();
    await s.client.ready(100);
    s.net.links[0]!.handlers.reply([Buffer.from('garbage'), Buffer.from('x')]);
    s.net.links[0]!.handlers.reply(
      encodeKvMsg({ key: '/s/x', sequence: 1, uuid: '', properties: '', body: Buffer.from('v') }),
    );
    expect(s.client.stats().dropped).to.deep.equal({ 'unexpected-reply': 2 });
  });
});
