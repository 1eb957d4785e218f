/**
 * The failover-aware client (src/client/client.ts) as a state machine: an injected fake clock and
 * a fake transport backed by in-memory servers (fake-server.ts). No sockets, no real waiting:
 * time moves only when a test advances it, and every message crosses the fake wire
 * asynchronously, as over real sockets.
 */
import { expect } from 'chai';
import { Client, type ClientOptions, type FailoverInfo, type Update } from '../../../src/client/client.js';
import { Native, ICANHAZ } from '../../../src/wire/index.js';
import { ClosedError, InvalidArgumentError, QueueFullError, TimeoutError } from '../../../src/errors.js';
import { FakeNetwork, FakeServer, type FakeServerOptions } from './fake-server.js';
import { rejection } from './rejection.js';

const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';
const SERVER_TIMEOUT = 500;

interface Tracked<T> {
  status: 'pending' | 'resolved' | 'rejected';
  value?: T;
  error?: unknown;
  promise: Promise<T>;
}

/** Follows a promise's outcome without awaiting it (and without leaving a rejection unhandled). */
function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { status: 'pending', promise };
  promise.then(
    (value) => {
      t.status = 'resolved';
      t.value = value;
    },
    (error: unknown) => {
      t.status = 'rejected';
      t.error = error;
    },
  );
  return t;
}

interface Harness {
  net: FakeNetwork;
  a: FakeServer;
  b: FakeServer;
  client: Client;
  updates: Update[];
  failovers: FailoverInfo[];
  degraded: boolean[];
  resyncs: { sequence: number; server: string }[];
  readies: { server: string; sequence: number }[];
  modes: string[];
}

const clients: Client[] = [];

function harness(
  servers: { a?: FakeServerOptions; b?: FakeServerOptions } = {},
  prepare: (a: FakeServer, b: FakeServer) => void = () => undefined,
  options: Partial<ClientOptions> = {},
): Harness {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE', ...servers.a });
  const b = net.addServer(B, { state: 'PASSIVE', ...servers.b });
  prepare(a, b);
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: SERVER_TIMEOUT,
    mode: 'native', // 'auto' has tests of its own
    transport: net.transport,
    clock: net.clock,
    ...options,
  });
  clients.push(client);
  const h: Harness = {
    net,
    a,
    b,
    client,
    updates: [],
    failovers: [],
    degraded: [],
    resyncs: [],
    readies: [],
    modes: [],
  };
  client.on('update', (u) => h.updates.push(u));
  client.on('failover', (f) => h.failovers.push(f));
  client.on('degraded', (d) => h.degraded.push(d));
  client.on('resync', (r) => h.resyncs.push(r));
  client.on('ready', (r) => h.readies.push(r));
  client.on('mode', (m) => h.modes.push(m));
  return h;
}

/** A client synced from A (the active) and past its subscription-confirming resume. */
async function readyOnA(
  servers: { a?: FakeServerOptions; b?: FakeServerOptions } = {},
  prepare: (a: FakeServer, b: FakeServer) => void = (a) => {
    a.set('/k1', 'v1');
    a.set('/k2', 'v2');
    a.set('/k3', 'v3');
  },
  options: Partial<ClientOptions> = {},
): Promise<Harness> {
  const h = harness(servers, prepare, options);
  await h.net.settle();
  await h.client.ready(1000);
  await h.net.advance(200);
  expect(h.client.server).to.equal(A);
  return h;
}

/** Every change exactly once, in strictly increasing sequence order. */
function expectInOrderOnce(updates: Update[]): void {
  const seqs = updates.map((u) => u.seq);
  for (let i = 1; i < seqs.length; i++) {
    expect(
      seqs[i],
      `update ${i} (${updates[i]!.key}) after seq ${seqs[i - 1]}: ${seqs.join(',')}`,
    ).to.be.greaterThan(seqs[i - 1]!);
  }
}

/** `call` returns a promise (it does not throw) and that promise rejects with `type`. */
async function expectRejects(
  call: () => Promise<unknown>,
  type: new (...args: never[]) => Error,
): Promise<void> {
  expect(await rejection(call)).to.be.instanceOf(type);
}

function asObject(map: Map<string, Buffer>): Record<string, string> {
  return Object.fromEntries([...map].map(([k, v]) => [k, v.toString()]));
}

function serverState(server: FakeServer, prefix = ''): Record<string, string> {
  return Object.fromEntries(
    [...server.map.values()].filter((e) => e.key.startsWith(prefix)).map((e) => [e.key, e.body.toString()]),
  );
}

function keysOf(updates: Update[]): string[] {
  return updates.map((u) => `${u.key}${u.deleted ? ' (deleted)' : '=' + u.value!.toString()}@${u.seq}`);
}

describe('Client (fake clock, fake transport)', function () {
  this.timeout(10_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  describe('finding the active', () => {
    it("a sync refused with TERROR 'busy' is asked again of the same server after a back-off", async () => {
      const h = harness({ a: { state: 'ACTIVE', chunk: 2 }, b: { state: 'PASSIVE' } }, (a) => {
        a.set('/k1', 'v1');
        a.busySyncs = 2;
      });
      await h.net.settle();
      await h.net.advance(2000);
      await h.client.ready(1000);
      const syncs = h.a.requestsOf(Native.SNAPSHOT);
      expect(syncs, 'two refused, the third served').to.have.length(3);
      expect(h.a.replies.filter((r) => r.command === Native.ERROR)).to.have.length(2);
      // each retry waits at least the back-off (250 ms), and for a new request id
      expect(syncs[1]!.at - syncs[0]!.at).to.be.at.least(250);
      expect(syncs[2]!.at - syncs[1]!.at).to.be.at.least(250);
      expect(new Set(syncs.map((s) => s.reqId)).size).to.equal(3);
      expect(h.client.server).to.equal(A);
      expect(h.client.getString('/k1')).to.equal('v1');
      expect([...h.a.votes, ...h.b.votes], 'a busy answer is no reason to vote').to.have.length(0);
    });

    it('pings both servers (TPING, never a vote), syncs only with the one whose TPONG says ACTIVE; ready() resolves and get() returns values', async () => {
      const h = harness({ a: { state: 'PASSIVE' }, b: { state: 'ACTIVE', chunk: 2 } }, (_a, b) => {
        b.set('/k1', 'v1');
        b.set('/k2', 'v2');
        b.set('/k3', 'v3');
      });
      await h.net.settle();
      await h.client.ready(1000);

      expect(h.a.requests.map((r) => r.command)).to.deep.equal([Native.PING]);
      expect(h.a.replies.map((r) => r.command)).to.deep.equal([Native.PONG]);
      expect(h.b.requests.map((r) => r.command)).to.deep.equal([Native.PING, Native.SNAPSHOT]);
      // 3 keys in chunks of 2: two TSYNC and the end
      expect(h.b.replies.map((r) => r.command)).to.deep.equal([
        Native.PONG,
        Native.SYNC,
        Native.SYNC,
        Native.SYNC_END,
      ]);
      expect([...h.a.votes, ...h.b.votes], 'no vote while an active answers').to.have.length(0);
      expect(h.client.server).to.equal(B);
      expect(h.client.sequence).to.equal(3);
      expect(h.client.mode).to.equal('native');
      expect(h.client.getString('/k1')).to.equal('v1');
      expect(h.client.getString('/k3')).to.equal('v3');
      expect(h.client.get('/nope')).to.equal(undefined);
      expect(asObject(h.client.entries())).to.deep.equal({ '/k1': 'v1', '/k2': 'v2', '/k3': 'v3' });
      expect(h.readies).to.deep.equal([{ server: B, sequence: 3 }]);
      expect(h.failovers).to.deep.equal([]);
      expect(keysOf(h.updates)).to.deep.equal(['/k1=v1@1', '/k2=v2@2', '/k3=v3@3']);
      expect(h.updates.every((u) => !u.resync)).to.equal(true);
      // only the active's publisher is followed, on the subtree and HUGZ
      expect(h.net.links[0]!.prefixes).to.equal(undefined);
      expect(h.net.links[1]!.prefixes).to.deep.equal(['', 'HUGZ']);
    });

    it('when both servers answer a vote (dual active) the first answer wins and the other is ignored', async () => {
      const h = harness({ a: { state: 'ACTIVE' }, b: { state: 'ACTIVE' } }, (a, b) => {
        a.set('/k', 'from A');
        b.set('/k', 'from B');
        b.set('/only-b', 'x');
      });
      await h.net.settle();
      await h.client.ready(1000);
      await h.net.advance(300);
      expect(h.client.server).to.equal(A);
      expect(asObject(h.client.entries())).to.deep.equal({ '/k': 'from A' });
      expect(h.net.links[1]!.prefixes, 'B is not followed').to.equal(undefined);
      expect(h.readies).to.have.length(1);
    });

    it('votes (TVOTE) for the passive only once the active has been silent for the timeout, backs off after refusals, and takes the first server that becomes active', async () => {
      const h = harness({ a: { state: 'DEAD' }, b: { state: 'PASSIVE' } }, (a) => a.set('/k', 'v'));
      const ready = track(h.client.ready(5000));
      await h.net.advance(SERVER_TIMEOUT - 100);
      expect(h.b.requestsOf(Native.PING).length, 'B is probed').to.be.greaterThan(0);
      expect(h.b.votes, 'no vote before A has been silent for the timeout').to.have.length(0);
      await h.net.advance(1000);
      expect(ready.status).to.equal('pending');
      expect(h.client.server).to.equal(undefined);
      const votesSoFar = h.b.votes.length;
      expect(votesSoFar).to.be.greaterThan(1); // a refused vote is followed by another one
      expect(votesSoFar).to.be.at.most(8); // but not a flood: a growing back-off
      expect(
        h.b.replies.filter((r) => r.command === Native.NOT_ACTIVE).map((r) => r.frames[3]!.toString()),
      ).to.include('peer-alive');
      expect(h.b.syncRequests, 'nothing but pings and votes reached the passive').to.have.length(0);
      h.b.copyFrom(h.a);
      h.b.promote();
      await h.net.advance(100);
      expect(ready.status).to.equal('resolved');
      expect(h.client.server).to.equal(B);
      expect(h.client.getString('/k')).to.equal('v');
    });
  });

  describe('failover on silence', () => {
    it('an update published between the new active answering and the subscription taking effect is recovered (subtree client)', async () => {
      const h = await readyOnA(
        {},
        (a) => {
          a.set('/orders/1', 'a');
          a.set('/other', 'x');
          a.set('/orders/2', 'b');
        },
        { subtree: '/orders/' },
      );
      expect(asObject(h.client.entries())).to.deep.equal({ '/orders/1': 'a', '/orders/2': 'b' });
      h.b.copyFrom(h.a);
      h.a.setState('DEAD');
      h.b.promote();
      // B answers the vote, then commits one more change before the client follows its publisher
      h.b.onRequest = (request) => {
        if (request.command !== Native.RESUME || h.b.map.has('/orders/3')) return;
        h.b.set('/orders/3', 'c');
        h.b.set('/other', 'y');
      };
      await h.net.advance(SERVER_TIMEOUT + 300);
      expect(h.client.server).to.equal(B);
      expect(asObject(h.client.entries())).to.deep.equal(serverState(h.b, '/orders/'));
      expect(h.updates.filter((u) => u.key === '/orders/3')).to.have.length(1);
      expect(h.updates.every((u) => u.key.startsWith('/orders/'))).to.equal(true);
      expectInOrderOnce(h.updates);
    });

    it('a failover while a resume is in flight discards updates held from the old active: the replica converges to the new one', async () => {
      // A publishes /y (5) and freezes before B mirrors it; the client, which missed /x (4), holds
      // /y while it asks A to resume. B takes over at 4 and writes its own 5 (/z) right after
      // answering the client's vote, before the client follows its publisher.
      const h = await readyOnA({}, undefined, { requestTimeoutMs: 1000 });
      h.a.dropPublished(1);
      h.a.set('/x', '4');
      h.b.copyFrom(h.a);
      h.a.set('/y', 'not on B'); // reaches the client, which sees the gap and asks A to resume
      h.a.setState('SILENT'); // ...but A answers nothing more
      await h.net.settle();
      expect(h.a.requestsOf(Native.RESUME).at(-1)!.fromSequence).to.equal(3);
      expect(h.client.get('/y'), 'held during the resume').to.equal(undefined);
      h.b.promote();
      h.b.onRequest = (request) => {
        if (request.command === Native.RESUME && !h.b.map.has('/z')) h.b.set('/z', 'B wrote this as 5');
      };
      await h.net.advance(1000 + 500);
      expect(h.client.server).to.equal(B);
      expect(h.b.sequence).to.equal(5);
      expect(h.client.get('/y'), 'no stale key from the old active').to.equal(undefined);
      expect(
        h.updates.filter((u) => u.key === '/y'),
        'a change the new active never had is not delivered',
      ).to.have.length(0);
      expect(
        h.updates.filter((u) => u.key === '/z'),
        'no skipped update',
      ).to.have.length(1);
      expect(asObject(h.client.entries()), 'replica equals the new active').to.deep.equal(serverState(h.b));
      expectInOrderOnce(h.updates);
    });

    it('after serverTimeoutMs of silence votes again, switches to the new active, emits failover, resumes with its last sequence and term, and delivers every change once in order', async () => {
      const h = await readyOnA();
      const termA = h.a.term;
      h.a.set('/k4', 'v4');
      h.a.dropPublished(1);
      h.a.set('/k5', 'v5'); // committed (and mirrored) but lost on the way to the client
      await h.net.settle();
      expect(h.client.sequence).to.equal(4);
      h.b.copyFrom(h.a);
      h.a.setState('SILENT');
      const votesBefore = h.b.syncRequests.length;

      await h.net.advance(SERVER_TIMEOUT - 50);
      expect(h.client.server, 'still on A before serverTimeoutMs').to.equal(A);
      expect(h.b.syncRequests.length).to.equal(votesBefore);

      h.b.promote();
      h.b.set('/k6', 'v6');
      h.b.delete('/k1');
      await h.net.advance(110);
      expect(h.client.server).to.equal(B);
      expect(h.failovers).to.deep.equal([{ from: A, to: B, sequence: 7 }]);
      const resume = h.b.syncRequests[votesBefore]!;
      expect(resume.command).to.equal(Native.RESUME);
      expect(resume.fromSequence).to.equal(4);
      expect(resume.term).to.equal(termA);
      expect(h.b.replies.find((r) => r.command === Native.SYNC_END)!.frames[4]!.toString()).to.equal(
        'resume',
      );

      await h.net.advance(300); // B's HUGZ confirm the subscription; one more resume changes nothing
      expect(keysOf(h.updates)).to.deep.equal([
        '/k1=v1@1',
        '/k2=v2@2',
        '/k3=v3@3',
        '/k4=v4@4',
        '/k5=v5@5',
        '/k6=v6@6',
        '/k1 (deleted)@7',
      ]);
      expectInOrderOnce(h.updates);
      expect(asObject(h.client.entries())).to.deep.equal(serverState(h.b));
      expect(h.client.sequence).to.equal(h.b.sequence);
      // the silent server's publisher is no longer followed
      expect(h.a.followers.size).to.equal(0);
    });

    it('a search that restarts while syncing with the new active still reports one failover, from the old active', async () => {
      const h = await readyOnA();
      h.b.copyFrom(h.a);
      h.a.setState('DEAD');
      h.b.promote();
      // B says it is active and then freezes before the resume arrives: the client gives up on B
      // and searches again, starting from B this time.
      h.b.onRequest = (request) => {
        if (request.command === Native.PING || request.command === Native.VOTE) h.b.setState('SILENT');
      };
      await h.net.advance(SERVER_TIMEOUT + 200);
      expect(h.b.requestsOf(Native.RESUME), 'the client chose B and asked it to resume').to.have.length(1);
      expect(h.client.server, 'not ready anywhere while B is frozen').to.not.equal(A);
      h.b.onRequest = undefined;
      await h.net.advance(2 * SERVER_TIMEOUT);
      expect(h.failovers, 'nothing reported while no server is ready').to.deep.equal([]);
      h.b.setState('ACTIVE');
      await h.net.advance(2 * SERVER_TIMEOUT);
      expect(h.client.server).to.equal(B);
      expect(h.failovers.map((f) => [f.from, f.to])).to.deep.equal([[A, B]]);
    });

    it('the active falling silent while a resume is in flight is also noticed after serverTimeoutMs', async () => {
      const h = await readyOnA();
      h.a.dropPublished(1);
      h.a.set('/x', '1');
      h.a.set('/y', '2'); // the gap makes the client resume from A...
      h.a.setState('SILENT'); // ...which freezes before answering
      await h.net.settle();
      expect(h.a.requestsOf(Native.RESUME).at(-1)!.fromSequence).to.equal(3);
      h.b.copyFrom(h.a);
      h.b.promote();
      await h.net.advance(SERVER_TIMEOUT + 100);
      expect(h.client.server, 'switched within serverTimeoutMs, not requestTimeoutMs').to.equal(B);
      expect(keysOf(h.updates.slice(3))).to.deep.equal(['/x=1@4', '/y=2@5']);
    });

    it('updates published by the new active after the failover keep flowing, once each', async () => {
      const h = await readyOnA();
      h.b.copyFrom(h.a);
      h.a.setState('DEAD');
      h.b.promote();
      await h.net.advance(SERVER_TIMEOUT + 100);
      expect(h.client.server).to.equal(B);
      const before = h.updates.length;
      h.b.set('/n1', '1');
      h.b.set('/n2', '2');
      await h.net.advance(200);
      expect(keysOf(h.updates.slice(before))).to.deep.equal(['/n1=1@4', '/n2=2@5']);
      expectInOrderOnce(h.updates);
    });
  });

  describe('writes', () => {
    it('an acknowledged write resolves with its sequence number', async () => {
      const h = await readyOnA();
      const seq = await h.client.set('/w', 'x');
      expect(seq).to.equal(4);
      expect(h.a.map.get('/w')!.sequence).to.equal(4);
      const [request] = h.a.requestsOf(Native.SET);
      expect(request!.writes).to.have.length(1);
      expect(request!.writes[0]!.uuid).to.have.length(16);
      expect(await h.client.delete('/w')).to.equal(5);
      await h.net.settle();
      expect(h.client.get('/w')).to.equal(undefined);
    });

    it('unacknowledged writes are re-sent to the new active with their original uuid and applied once', async () => {
      const h = await readyOnA();
      h.a.holdAcks = true; // applied on A, acknowledgement pending (waiting for the passive)
      const w2 = track(h.client.set('/w2', '2'));
      await h.net.settle();
      expect(h.a.changesOf('/w2')).to.equal(1);
      const seqW2 = h.a.map.get('/w2')!.sequence;
      expect(w2.status).to.equal('pending');
      h.b.copyFrom(h.a); // the passive mirrored w2
      h.a.setState('SILENT');
      const w3 = track(h.client.set('/w3', '3')); // reaches the frozen A, never applied there
      await h.net.settle();
      const uuidsOnA = h.a.writeUuids;
      expect(uuidsOnA).to.have.length(2);
      expect(h.a.changesOf('/w3')).to.equal(0);

      h.b.promote();
      await h.net.advance(SERVER_TIMEOUT + 100);
      expect(h.client.server).to.equal(B);
      expect(h.b.writeUuids, 'same uuids, same order').to.deep.equal(uuidsOnA);
      expect(w2.status).to.equal('resolved');
      expect(w2.value, 'the de-duplicated write keeps its first sequence').to.equal(seqW2);
      expect(w3.status).to.equal('resolved');
      expect(w3.value).to.equal(h.b.map.get('/w3')!.sequence);
      expect(h.b.changesOf('/w2')).to.equal(1);
      expect(h.b.changesOf('/w3')).to.equal(1);
      expect(h.updates.filter((u) => u.key === '/w2')).to.have.length(1);
      expect(h.updates.filter((u) => u.key === '/w3')).to.have.length(1);
      expectInOrderOnce(h.updates);
      expect(h.client.pendingWrites).to.equal(0);
    });

    it("emits 'degraded' when a TACK says degraded, and again when durability is back", async () => {
      const h = await readyOnA({ a: { durability: 'degraded' } });
      await h.client.set('/w1', '1');
      expect(h.degraded).to.deep.equal([true]);
      expect(h.client.degraded).to.equal(true);
      await h.client.set('/w2', '2');
      expect(h.degraded, 'no repeat while it stays degraded').to.deep.equal([true]);
      h.a.durability = 'replicated';
      await h.client.set('/w3', '3');
      expect(h.degraded).to.deep.equal([true, false]);
      expect(h.client.degraded).to.equal(false);
    });

    it('writes issued during a failover wait in the queue and go to the new active; beyond maxPendingWrites they reject with QueueFullError', async () => {
      const h = await readyOnA({}, undefined, { maxPendingWrites: 3 });
      h.a.setState('DEAD');
      await h.net.advance(SERVER_TIMEOUT + 100);
      expect(h.client.server, 'looking for the active').to.equal(undefined);
      const writes = [
        track(h.client.set('/q1', '1')),
        track(h.client.set('/q2', '2')),
        track(h.client.set('/q3', '3')),
      ];
      const overflow = track(h.client.set('/q4', '4'));
      await h.net.advance(200);
      expect(overflow.status).to.equal('rejected');
      expect(overflow.error).to.be.instanceOf(QueueFullError);
      expect(writes.map((w) => w.status)).to.deep.equal(['pending', 'pending', 'pending']);
      expect(h.client.pendingWrites).to.equal(3);
      expect(h.b.requestsOf(Native.SET)).to.have.length(0);
      expect(h.a.requestsOf(Native.SET)).to.have.length(0);

      h.b.copyFrom(h.a);
      h.b.promote();
      await h.net.advance(100);
      expect(h.client.server).to.equal(B);
      expect(h.failovers.map((f) => [f.from, f.to])).to.deep.equal([[A, B]]);
      expect(h.b.requestsOf(Native.SET).flatMap((r) => r.writes.map((w) => w.key))).to.deep.equal([
        '/q1',
        '/q2',
        '/q3',
      ]);
      expect(writes.map((w) => w.status)).to.deep.equal(['resolved', 'resolved', 'resolved']);
      expect(writes.map((w) => w.value)).to.deep.equal([4, 5, 6]);
      expect(h.b.map.has('/q4')).to.equal(false);
      expect(h.client.pendingWrites).to.equal(0);
    });

    it('past writeTimeoutMs of fake time with no active a queued write rejects with TimeoutError', async () => {
      const h = await readyOnA({}, undefined, { writeTimeoutMs: 1000 });
      h.a.setState('DEAD');
      await h.net.advance(SERVER_TIMEOUT + 100);
      const w = track(h.client.set('/t', '1'));
      await h.net.advance(900);
      expect(w.status, 'not before writeTimeoutMs').to.equal('pending');
      await h.net.advance(200);
      expect(w.status).to.equal('rejected');
      expect(w.error).to.be.instanceOf(TimeoutError);
      expect(h.client.pendingWrites).to.equal(0);
    });

    it('past writeTimeoutMs a write sent to a server that never answers rejects with TimeoutError (no promise hangs)', async () => {
      const h = await readyOnA({}, undefined, { writeTimeoutMs: 1000 });
      h.a.setState('SILENT');
      h.b.setState('SILENT');
      const w = track(h.client.set('/t', '1'));
      await h.net.settle();
      expect(h.a.requestsOf(Native.SET)).to.have.length(1);
      await h.net.advance(1100);
      expect(w.status).to.equal('rejected');
      expect(w.error).to.be.instanceOf(TimeoutError);
    });

    it('TNOTACTIVE on a write from the current server makes the client find the active again and re-send it there', async () => {
      const h = await readyOnA();
      h.b.copyFrom(h.a);
      h.a.setState('PASSIVE'); // A was demoted; the client has not noticed yet
      h.b.promote();
      const w = track(h.client.set('/w', 'x'));
      await h.net.settle();
      const [onA] = h.a.requestsOf(Native.SET);
      expect(onA).to.not.equal(undefined);
      expect(h.a.replies.some((r) => r.command === Native.NOT_ACTIVE && r.reqId === onA!.reqId)).to.equal(
        true,
      );
      expect(h.a.changesOf('/w')).to.equal(0);
      expect(h.client.server).to.equal(B);
      expect(h.b.writeUuids).to.deep.equal([onA!.writes[0]!.uuid]);
      expect(w.status).to.equal('resolved');
      expect(w.value).to.equal(h.b.map.get('/w')!.sequence);
      expect(h.b.changesOf('/w')).to.equal(1);
      expect(h.failovers.map((f) => [f.from, f.to])).to.deep.equal([[A, B]]);
    });
  });

  describe('gaps on the live stream', () => {
    it('a dropped KVPUB (subtree "") triggers a resume that recovers the missed update, delivered once, in order', async () => {
      const h = await readyOnA();
      const resumes = h.a.requestsOf(Native.RESUME).length;
      const before = h.updates.length;
      h.a.dropPublished(1);
      h.a.set('/x', '1');
      h.a.set('/y', '2');
      await h.net.settle();
      const resume = h.a.requestsOf(Native.RESUME)[resumes];
      expect(resume, 'a resume was sent').to.not.equal(undefined);
      expect(resume!.fromSequence).to.equal(3);
      expect(keysOf(h.updates.slice(before))).to.deep.equal(['/x=1@4', '/y=2@5']);
      await h.net.advance(300);
      expect(h.updates.length - before).to.equal(2);
      expectInOrderOnce(h.updates);
      expect(h.client.sequence).to.equal(5);
      expect(h.resyncs).to.deep.equal([]);
    });

    it('reordered KVPUBs are delivered once each, in sequence order', async () => {
      const h = await readyOnA();
      const before = h.updates.length;
      h.a.holdPublished();
      h.a.set('/p', '1');
      h.a.set('/q', '2');
      h.a.set('/r', '3');
      h.a.releasePublished([2, 0, 1]);
      await h.net.advance(300);
      expect(keysOf(h.updates.slice(before))).to.deep.equal(['/p=1@4', '/q=2@5', '/r=3@6']);
      expectInOrderOnce(h.updates);
    });

    it('a HUGZ with a higher sequence (the last KVPUB dropped) also recovers the missed update', async () => {
      const h = await readyOnA();
      const before = h.updates.length;
      h.a.dropPublished(1);
      h.a.set('/x', '1');
      await h.net.advance(200);
      expect(keysOf(h.updates.slice(before))).to.deep.equal(['/x=1@4']);
    });
  });

  describe('resync', () => {
    it("a resume the server can't serve is answered with a snapshot: 'resync' event, stale keys produce deleted updates, no stale key survives", async () => {
      const h = await readyOnA();
      const before = h.updates.length;
      h.a.dropPublished(2);
      h.a.delete('/k2'); // 4, lost
      h.a.set('/d', '4'); // 5, lost
      h.a.forgetHistory(); // the replay log no longer reaches back to 3
      h.a.set('/e', '5'); // 6, seen: a gap
      await h.net.settle();
      const lastSync = h.a.replies.filter((r) => r.command === Native.SYNC_END).at(-1)!;
      expect(lastSync.frames[4]!.toString()).to.equal('snapshot');
      expect(h.resyncs).to.deep.equal([{ sequence: 6, server: A }]);
      const after = h.updates.slice(before);
      expect(after.find((u) => u.key === '/k2')).to.include({
        deleted: true,
        resync: true,
        value: undefined,
      });
      expect(after.filter((u) => u.key === '/k2')).to.have.length(1);
      expect(after.filter((u) => u.key === '/d')).to.have.length(1);
      expect(after.filter((u) => u.key === '/e')).to.have.length(1);
      expect(h.client.get('/k2')).to.equal(undefined);
      expect(asObject(h.client.entries())).to.deep.equal(serverState(h.a));
      expect(h.client.sequence).to.equal(6);
      await h.net.advance(300);
      expect(h.updates.length - before).to.equal(3);
    });

    it('a client that saw a change the new active never got (ahead of it) converges by snapshot: the stale key is deleted', async () => {
      const h = await readyOnA();
      h.b.copyFrom(h.a);
      h.a.set('/y', 'never replicated'); // 4, seen by the client only
      await h.net.settle();
      expect(h.client.getString('/y')).to.equal('never replicated');
      h.a.setState('DEAD');
      h.b.promote(); // B's term starts at 4
      await h.net.advance(SERVER_TIMEOUT + 100);
      h.b.set('/z', 'B wrote this as 4');
      await h.net.advance(300);
      expect(h.client.server).to.equal(B);
      expect(h.resyncs.map((r) => r.server)).to.deep.equal([B]);
      expect(h.client.get('/y')).to.equal(undefined);
      expect(h.updates.filter((u) => u.key === '/y').map((u) => u.deleted)).to.deep.equal([false, true]);
      expect(h.updates.filter((u) => u.key === '/z')).to.have.length(1);
      expect(asObject(h.client.entries())).to.deep.equal(serverState(h.b));
    });

    it('after a failover to a server on another timeline the snapshot replaces the replica: no stale key survives', async () => {
      const h = await readyOnA({}, (a, b) => {
        a.set('/k1', 'v1');
        a.set('/k2', 'v2');
        a.set('/k3', 'v3');
        // B went its own way (split brain): different history, same sequence numbers
        b.promote();
        b.set('/k1', 'other');
        b.set('/z', '26');
        b.set('/k3', 'v3');
        b.set('/y', '25');
        b.setState('PASSIVE');
      });
      h.a.setState('DEAD');
      h.b.setState('ACTIVE');
      await h.net.advance(SERVER_TIMEOUT + 100);
      expect(h.client.server).to.equal(B);
      expect(h.b.requestsOf(Native.RESUME)[0]!.fromSequence).to.equal(3);
      expect(h.resyncs).to.deep.equal([{ sequence: 4, server: B }]);
      expect(h.failovers.map((f) => [f.from, f.to])).to.deep.equal([[A, B]]);
      expect(asObject(h.client.entries())).to.deep.equal({
        '/k1': 'other',
        '/z': '26',
        '/k3': 'v3',
        '/y': '25',
      });
      const resync = h.updates.filter((u) => u.resync);
      expect(resync.find((u) => u.key === '/k2')).to.include({ deleted: true });
      expect(resync.find((u) => u.key === '/k1')!.value!.toString()).to.equal('other');
      expect(
        resync.some((u) => u.key === '/k3'),
        'unchanged keys are not re-delivered',
      ).to.equal(false);
    });
  });

  describe('close()', () => {
    it('rejects pending writes with ClosedError, ends watch() iterators, clears its timer and closes its links', async () => {
      const h = await readyOnA();
      expect(h.net.clock.timerCount).to.equal(1);
      const seen: Update[] = [];
      let ended = false;
      const watcher = (async () => {
        for await (const u of h.client.watch()) seen.push(u);
        ended = true;
      })();
      h.a.holdAcks = true;
      const inflight = track(h.client.set('/w1', '1'));
      await h.net.settle();
      expect(h.a.requestsOf(Native.SET)).to.have.length(1);
      const queued = track(h.client.set('/w2', '2')); // not flushed yet
      await h.client.close();
      await h.net.settle();
      await watcher;

      expect(inflight.status).to.equal('rejected');
      expect(inflight.error).to.be.instanceOf(ClosedError);
      expect(queued.status).to.equal('rejected');
      expect(queued.error).to.be.instanceOf(ClosedError);
      expect(ended).to.equal(true);
      expect(seen.map((u) => u.key)).to.include.members(['/k1', '/k2', '/k3', '/w1']);
      expect(h.net.clock.timerCount).to.equal(0);
      expect(h.net.links.every((l) => l.closed)).to.equal(true);
      expect(h.a.followers.size).to.equal(0);
      expect(h.client.pendingWrites).to.equal(0);

      // after close: nothing hangs, nothing arrives
      h.a.releaseAcks();
      h.a.set('/late', 'x');
      await h.net.advance(200);
      const late = track(h.client.set('/w3', '3'));
      const ready = track(h.client.ready(1000));
      await h.net.settle();
      expect(late.error).to.be.instanceOf(ClosedError);
      expect(ready.error).to.be.instanceOf(ClosedError);
      expect(h.client.get('/late')).to.equal(undefined);
      // a watch() on a closed client gives the replica's values and ends
      const after: string[] = [];
      for await (const u of h.client.watch()) after.push(u.key);
      expect(after).to.include.members(['/k1', '/w1']);
      expect((await h.client.watch('', { initial: false }).next()).done).to.equal(true);
    });

    it('rejects a pending ready() with ClosedError', async () => {
      const h = harness({ a: { state: 'PASSIVE' } });
      const ready = track(h.client.ready(5000));
      await h.net.advance(100);
      await h.client.close();
      await h.net.settle();
      expect(ready.error).to.be.instanceOf(ClosedError);
      expect(h.net.clock.timerCount).to.equal(0);
    });
  });

  describe('invalid API use', () => {
    it('rejects with InvalidArgumentError an empty key, an empty value, a negative ttl; throws it for a bad endpoint, no servers', async () => {
      const h = await readyOnA();
      await expectRejects(() => h.client.set('', 'v'), InvalidArgumentError);
      await expectRejects(() => h.client.delete(''), InvalidArgumentError);
      await expectRejects(() => h.client.set('/k', ''), InvalidArgumentError);
      await expectRejects(() => h.client.set('/k', Buffer.alloc(0)), InvalidArgumentError);
      await expectRejects(() => h.client.set('/k', 'v', { ttl: -1 }), InvalidArgumentError);
      await expectRejects(() => h.client.set('/k', 'v', { ttl: Number.NaN }), InvalidArgumentError);
      const net = new FakeNetwork();
      const base = { transport: net.transport, clock: net.clock };
      expect(() => new Client({ ...base, servers: ['127.0.0.1:5556'] })).to.throw(InvalidArgumentError);
      expect(() => new Client({ ...base, servers: [A, 'tcp://h:0'] })).to.throw(InvalidArgumentError);
      expect(() => new Client({ ...base, servers: [] })).to.throw(InvalidArgumentError);
      expect(() => new Client({ ...base, servers: undefined as unknown as string[] })).to.throw(
        InvalidArgumentError,
      );
      // a string, the CLI's form, says what the option takes instead
      expect(() => new Client({ ...base, servers: A as unknown as string[] })).to.throw(
        InvalidArgumentError,
        `servers is an array of tcp://HOST:PORT endpoints, not a string: ["${A}"]`,
      );
      expect(() => new Client({ ...base, servers: [A], mode: 'bogus' as 'chp' })).to.throw(
        InvalidArgumentError,
      );
      // nothing was left behind by the refused constructions
      expect(net.clock.timerCount).to.equal(0);
      expect(net.links).to.have.length(0);
      // and nothing was sent for the refused writes
      await h.net.settle();
      expect(h.a.requestsOf(Native.SET)).to.have.length(0);
    });
  });

  describe('invalid API use (beyond the basics)', () => {
    it('a key or value over the wire limits (1 KiB key, 1 MiB value) rejects with InvalidArgumentError and never poisons the other writes of its batch', async () => {
      const h = await readyOnA();
      const ok = track(h.client.set('/ok', 'x'));
      const refused = [
        track(h.client.set('/big', Buffer.alloc(1024 * 1024 + 1, 1))),
        track(h.client.set('/'.padEnd(1025, 'k'), 'v')),
      ];
      await h.net.advance(300);
      for (const t of refused) {
        expect(t.status, 'oversized write').to.equal('rejected');
        expect(t.error).to.be.instanceOf(InvalidArgumentError);
      }
      expect(h.a.malformed, 'the server dropped a whole TSET as malformed').to.deep.equal([]);
      expect(ok.status, 'a valid write is acknowledged').to.equal('resolved');
    });

    it('setJson with a value JSON cannot represent (undefined) rejects with InvalidArgumentError, not a TypeError', async () => {
      const h = await readyOnA();
      await expectRejects(() => h.client.setJson('/j', undefined), InvalidArgumentError);
    });

    it('nonsensical timing and queue options throw InvalidArgumentError', () => {
      const net = new FakeNetwork();
      const base = { transport: net.transport, clock: net.clock, servers: [A] };
      const bad: Partial<ClientOptions>[] = [
        { serverTimeoutMs: 0 },
        { serverTimeoutMs: -1 },
        { serverTimeoutMs: Number.NaN },
        { requestTimeoutMs: 0 },
        { writeTimeoutMs: -5 },
        { maxPendingWrites: 0 },
        { maxPendingWrites: 1.5 },
      ];
      const accepted: string[] = [];
      for (const options of bad) {
        try {
          const client = new Client({ ...base, ...options });
          clients.push(client);
          accepted.push(
            JSON.stringify(options, (_k, v: unknown) =>
              typeof v === 'number' && Number.isNaN(v) ? 'NaN' : v,
            ),
          );
        } catch (error) {
          expect(error, JSON.stringify(options)).to.be.instanceOf(InvalidArgumentError);
        }
      }
      expect(accepted, 'options accepted without complaint').to.deep.equal([]);
    });
  });

  describe("plain CHP mode ('chp')", () => {
    it('loads the ICANHAZ? snapshot (KVSYNC... KTHXBAI); writes publish KVSET to every collector and resolve with 0', async () => {
      const h = harness(
        { a: { state: 'PASSIVE', plainChp: true }, b: { state: 'ACTIVE', plainChp: true } },
        (_a, b) => {
          b.set('/k1', 'v1');
          b.set('/k2', 'v2');
        },
        { mode: 'chp' },
      );
      // Binary Star order: A (listed first) is asked; B only once A has been silent for the
      // timeout, 3 x the 1 s HUGZ interval RFC 12 servers are assumed to have until one is seen.
      await h.net.advance(2900);
      expect(h.a.requests.map((r) => r.command)).to.deep.equal([ICANHAZ]);
      expect(h.b.requests, 'B not asked while A may still answer').to.have.length(0);
      await h.net.advance(200);
      await h.client.ready(1000);
      expect(h.client.server).to.equal(B);
      expect(h.client.mode).to.equal('chp');
      expect(h.client.sequence).to.equal(2);
      expect(asObject(h.client.entries())).to.deep.equal({ '/k1': 'v1', '/k2': 'v2' });
      expect(h.a.requests.map((r) => r.command)).to.deep.equal([ICANHAZ]);
      expect(h.b.requests.map((r) => r.command)).to.deep.equal([ICANHAZ]);
      expect(h.b.replies.map((r) => r.command)).to.deep.equal(['/k1', '/k2', 'KTHXBAI']);

      expect(await h.client.set('/w', 'x')).to.equal(0);
      expect(await h.client.set('/t', 'y', { ttl: 5 })).to.equal(0);
      await h.net.advance(100);
      for (const server of [h.a, h.b]) {
        expect(
          server.collected.map((m) => [m.key, m.sequence, m.body.toString(), m.properties]),
        ).to.deep.equal([
          ['/w', 0, 'x', ''],
          ['/t', 0, 'y', 'ttl=5\n'],
        ]);
      }
      expect(h.a.collected[0]!.uuid).to.have.length(16);
      expect(h.a.collected[0]!.uuid).to.equal(h.b.collected[0]!.uuid);
      expect(h.a.pending, 'the passive holds it on its pending list').to.have.length(2);
      expect(keysOf(h.updates)).to.deep.equal(['/k1=v1@1', '/k2=v2@2', '/w=x@3', '/t=y@4']);
      expect(h.client.getString('/w')).to.equal('x');
      // nothing native ever went out
      expect([...h.a.requests, ...h.b.requests].every((r) => r.command === ICANHAZ)).to.equal(true);
    });

    it('an update published after the snapshot was taken is applied after it, whether it arrives before the first KVSYNC or amid the snapshot (RFC 12: subscribe, then ask; 86 of 100 real clients lost some)', async () => {
      const h = harness(
        { a: { state: 'ACTIVE', plainChp: true }, b: { state: 'PASSIVE', plainChp: true } },
        (a) => {
          a.set('/k1', 'v1');
          a.set('/k2', 'v2');
          // published as the stream starts, and between its two KVSYNCs: both newer than it
          a.duringChpSnapshot = (sent) => {
            if (sent === 0) a.set('/early', 'e');
            if (sent === 1) a.set('/k1', 'v1-mid');
          };
        },
        { mode: 'chp' },
      );
      await h.net.advance(200);
      await h.client.ready(1000);
      h.a.duringChpSnapshot = undefined;
      expect(
        h.a.replies.map((r) => r.command),
        'the snapshot, as sent',
      ).to.deep.equal(['/k1', '/k2', 'KTHXBAI']);
      expect(h.client.sequence).to.equal(4);
      expect(asObject(h.client.entries())).to.deep.equal({ '/k1': 'v1-mid', '/k2': 'v2', '/early': 'e' });
      // the channel that carried them still works: the next update is applied as it comes
      h.a.set('/late', 'l');
      await h.net.advance(50);
      expect(h.client.getString('/late')).to.equal('l');
    });

    it('updates held from a server asked first are dropped when the other server answers: only what the answering server publishes is applied after its snapshot', async () => {
      const h = harness(
        { a: { state: 'ACTIVE', plainChp: true }, b: { state: 'PASSIVE', plainChp: true } },
        (a) => {
          a.set('/k1', 'v1');
          a.set('/k2', 'v2');
          a.loseRequests(ICANHAZ, 1); // A never answers
        },
        { mode: 'chp' },
      );
      await h.net.advance(100);
      expect(h.a.requestsOf(ICANHAZ), 'A was asked').to.have.length(1);
      h.b.copyFrom(h.a); // B holds /k1 and /k2, sequence 2
      h.a.set('/ghost', 'x'); // sequence 3, on A only
      const toClient = [...h.a.followers].filter((link) => link.subscribed(Buffer.from('/ghost')));
      expect(toClient, "A published it to the client's subscription").to.have.length(1);
      expect(h.a.published.map((m) => m[0]!.toString())).to.include('/ghost');
      await h.net.advance(50);
      h.a.setState('DEAD');
      h.b.promote();
      await h.net.advance(3500); // A silent for its timeout: B is asked, and answers at sequence 2
      await h.client.ready(1000);
      expect(h.client.server).to.equal(B);
      expect(asObject(h.client.entries())).to.deep.equal({ '/k1': 'v1', '/k2': 'v2' });
    });

    it('a resync whose ICANHAZ? is lost is asked again although HUGZ keep coming', async () => {
      const h = harness(
        { a: { state: 'ACTIVE', plainChp: true }, b: { state: 'PASSIVE', plainChp: true } },
        (a) => a.set('/k1', 'v1'),
        { mode: 'chp' },
      );
      await h.net.advance(200);
      await h.client.ready(1000);
      expect(h.a.requestsOf(ICANHAZ)).to.have.length(1);
      // An update is lost (a gap the client will see from the next HUGZ), and so is the ICANHAZ?
      // of the resync it triggers; HUGZ go on every second.
      h.a.dropPublished(1);
      h.a.set('/k2', 'v2');
      h.a.loseRequests(ICANHAZ, 1);
      await h.net.advance(1500);
      expect(h.a.requestsOf(ICANHAZ), 'the resync asked once (lost)').to.have.length(2);
      expect(h.client.getString('/k2')).to.equal(undefined);
      await h.net.advance(3000);
      expect(h.a.requestsOf(ICANHAZ).length, 'asked again after requestTimeoutMs').to.be.greaterThan(2);
      expect(
        h.b.requestsOf(ICANHAZ),
        'no ICANHAZ? (a vote) to the passive while the active answers',
      ).to.deep.equal([]);
      expect(h.client.getString('/k2')).to.equal('v2');
    });

    it('fails over to the other server: its ICANHAZ? snapshot replaces the replica (resync), stale keys deleted', async () => {
      const h = harness(
        { a: { state: 'ACTIVE', plainChp: true }, b: { state: 'PASSIVE', plainChp: true } },
        (a) => {
          a.set('/k1', 'v1');
          a.set('/k2', 'v2');
        },
        { mode: 'chp' },
      );
      await h.net.settle();
      await h.client.ready(1000);
      await h.net.advance(400); // a few HUGZ gaps: the client learns A's 100 ms interval
      expect(h.client.server).to.equal(A);
      h.b.copyFrom(h.a);
      h.a.setState('DEAD');
      h.b.promote();
      h.b.delete('/k1');
      h.b.set('/k3', 'v3');
      await h.net.advance(SERVER_TIMEOUT + 700);
      expect(h.client.server).to.equal(B);
      expect(h.failovers.map((f) => [f.from, f.to])).to.deep.equal([[A, B]]);
      expect(h.resyncs).to.have.length(1);
      expect(asObject(h.client.entries())).to.deep.equal({ '/k2': 'v2', '/k3': 'v3' });
      expect(h.updates.find((u) => u.key === '/k1' && u.deleted)).to.include({ resync: true });
      expect([...h.a.requests, ...h.b.requests].every((r) => r.command === ICANHAZ)).to.equal(true);
    });

    it("'auto' mode settles on plain CHP against servers whose HUGZ advertise nothing, and sends them nothing native", async () => {
      const h = harness(
        {
          a: { state: 'ACTIVE', plainChp: true },
          b: { state: 'PASSIVE', plainChp: true, passiveHugz: true },
        },
        (a) => a.set('/k', 'v'),
        { mode: 'auto' },
      );
      const ready = track(h.client.ready(5000));
      const early = track(h.client.set('/early', 'e')); // issued before the mode is known
      await h.net.advance(2 * SERVER_TIMEOUT + 200);
      expect(ready.status).to.equal('resolved');
      expect(early.status).to.equal('resolved');
      expect(early.value).to.equal(0);
      expect(h.a.collected.map((m) => m.key)).to.deep.equal(['/early']);
      expect(h.modes).to.deep.equal(['chp']);
      expect(h.client.mode).to.equal('chp');
      expect(h.client.getString('/k')).to.equal('v');
      expect(await h.client.set('/w', 'x')).to.equal(0);
      const native = [...h.a.requests, ...h.b.requests].filter((r) => r.command.startsWith('T'));
      expect(
        native.map((r) => r.command),
        'a plain server would abort on these',
      ).to.deep.equal([]);
    });
  });
});
