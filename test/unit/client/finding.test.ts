/**
 * How the client finds the active server, on the fake clock and transport (fake-server.ts):
 * votes only after silence (promise 3), heartbeat learning, 'auto' detection that a plain RFC 12
 * server cannot see, the no-history answer, status signals, and close() draining CHP writes.
 */
import { expect } from 'chai';
import { Client, type ClientOptions } from '../../../src/client/client.js';
import type { Status } from '../../../src/client/session.js';
import { ICANHAZ, Native } from '../../../src/wire/index.js';
import { InvalidArgumentError, NoActiveError, TimeoutError, UnavailableError } from '../../../src/errors.js';
import { FakeNetwork, type FakeServer, type FakeServerOptions } from './fake-server.js';

const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';

interface Setup {
  net: FakeNetwork;
  a: FakeServer;
  b: FakeServer;
  client: Client;
  statuses: Status[];
  failovers: string[];
  modes: string[];
}

const clients: Client[] = [];

function setup(
  servers: { a?: FakeServerOptions; b?: FakeServerOptions; heartbeatMs?: number },
  options: Partial<ClientOptions> = {},
): Setup {
  const net = new FakeNetwork({ heartbeatMs: servers.heartbeatMs ?? 100 });
  const a = net.addServer(A, { state: 'ACTIVE', ...servers.a });
  const b = net.addServer(B, { state: 'PASSIVE', ...servers.b });
  a.set('/k', 'v');
  b.copyFrom(a);
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: 500,
    transport: net.transport,
    clock: net.clock,
    ...options,
  });
  clients.push(client);
  const s: Setup = { net, a, b, client, statuses: [], failovers: [], modes: [] };
  client.on('status', (status) => s.statuses.push(status));
  client.on('failover', (f) => s.failovers.push(`${f.from}->${f.to}`));
  client.on('mode', (m) => s.modes.push(m));
  return s;
}

/** Advances fake time in steps until `done()` or `maxMs` (bounded). */
async function advanceUntil(
  net: FakeNetwork,
  done: () => boolean,
  maxMs: number,
  stepMs = 50,
): Promise<number> {
  const start = net.clock.now();
  while (!done() && net.clock.now() - start < maxMs) await net.advance(stepMs);
  return net.clock.now() - start;
}

function outcome(promise: Promise<unknown>): { settled: boolean; error?: unknown } {
  const o: { settled: boolean; error?: unknown } = { settled: false };
  promise.then(
    () => (o.settled = true),
    (error: unknown) => {
      o.settled = true;
      o.error = error;
    },
  );
  return o;
}

const nativeCommands = (server: FakeServer) =>
  server.requests.map((r) => r.command).filter((c) => c.startsWith('T'));

describe('Client: finding the active', function () {
  this.timeout(20_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  describe('votes (promise 3)', () => {
    it('a ping refused because the connection is not up yet goes again as soon as it is, not a probe interval later', async () => {
      const net = new FakeNetwork({ heartbeatMs: 100 });
      const a = net.addServer(A, { state: 'ACTIVE' });
      a.set('/k', 'v');
      // The DEALER refuses every request (immediate) until its handshake completes.
      let up = false;
      let connected: (() => void) | undefined;
      const transport: typeof net.transport = (address, handlers) => {
        const link = net.transport(address, handlers);
        connected = handlers.connected;
        const request = link.request.bind(link);
        link.request = (frames, onFail) => (up ? request(frames, onFail) : onFail?.());
        return link;
      };
      const client = new Client({
        servers: [A],
        mode: 'native',
        serverTimeoutMs: 500,
        transport,
        clock: net.clock,
      });
      clients.push(client);
      await net.advance(5, 1);
      expect(nativeCommands(a), 'refused before the connection is up').to.deep.equal([]);
      up = true;
      connected?.();
      await net.advance(2, 1); // far less than the probe interval (50 ms)
      expect(nativeCommands(a)).to.deep.equal([Native.PING, Native.SNAPSHOT]);
      await advanceUntil(net, () => client.get('/k') !== undefined, 1_000);
    });

    it('a server just chosen as active is not called silent before the server timeout: its snapshot may be slow to start (a restarted node reading its map)', async () => {
      const { net, a, client, statuses } = setup({});
      a.loseRequests(Native.SNAPSHOT, 1); // stands for a snapshot that has not started streaming yet
      a.holdPublished(); // and its HUGZ have not reached the new subscriber yet (the SUB connects)
      await net.advance(300, 5); // the pong came back, the client chose A and asked for a snapshot
      // within the server timeout (500 ms) the client keeps its choice: one ping, one snapshot asked
      expect(nativeCommands(a), 'A dropped and found again').to.deep.equal([Native.PING, Native.SNAPSHOT]);
      const silent = () => statuses.filter((s) => s.type === 'disconnected');
      expect(silent(), 'called silent at once, although it answered the ping just now').to.deep.equal([]);
      a.releasePublished();
      // HUGZ keep it alive meanwhile; the lost request is asked again, and the client gets ready
      await advanceUntil(net, () => client.get('/k') !== undefined, 5_000);
      expect(client.get('/k')?.toString()).to.equal('v');
      expect(silent()).to.deep.equal([]);
    });

    it('a connecting watcher never votes while the active answers: a passive that would accept a vote (peer link cut) gets only pings', async () => {
      // B lost its peer link: any vote would promote it next to the live A (two actives).
      const s = setup({ b: { acceptVotes: true } }, { mode: 'native' });
      await s.client.ready(1000);
      const seen: string[] = [];
      const watching = (async () => {
        for await (const u of s.client.watch()) seen.push(u.key);
      })();
      await s.net.advance(5000);
      expect(s.client.server).to.equal(A);
      expect(seen, 'the watch works').to.include('/k');
      expect(s.b.requestsOf(Native.PING).length, 'B was reachable and probed').to.be.greaterThan(0);
      expect(s.b.votes, 'no TVOTE').to.have.length(0);
      expect(
        s.b.syncRequests.map((r) => r.command),
        'no sync request (the old vote)',
      ).to.deep.equal([]);
      expect(s.b.state, 'B stayed passive').to.equal('PASSIVE');
      await s.client.close();
      await watching;
    });

    it('after the active dies, votes for the passive once A has been silent ~500 ms (twinstar 100 ms HUGZ), and the accepted vote makes it the active', async () => {
      const s = setup({ b: { acceptVotes: true } }, { mode: 'native' });
      await s.client.ready(1000);
      await s.net.advance(300);
      s.a.setState('DEAD');
      await s.net.advance(400);
      expect(s.b.votes, 'no vote before the timeout').to.have.length(0);
      const took = await advanceUntil(s.net, () => s.client.server === B, 2000);
      expect(s.client.server).to.equal(B);
      expect(took, 'failover within ~500 ms of silence').to.be.at.most(600);
      expect(s.b.votes).to.have.length(1);
      expect(s.failovers).to.deep.equal([`${A}->${B}`]);
      expect(s.client.getString('/k')).to.equal('v');
    });

    it('the first vote goes out as soon as the active is silent, whatever the random option draws (votes.ts)', async () => {
      const voteDelay = async (draw: number) => {
        const s = setup({ b: { acceptVotes: true } }, { mode: 'native', random: () => draw });
        await s.client.ready(1000);
        await s.net.advance(300);
        s.a.setState('DEAD');
        const died = s.net.clock.now();
        await advanceUntil(s.net, () => s.b.votes.length > 0, 3000, 10);
        expect(s.b.votes, `draw ${draw}: voted`).to.have.length(1);
        return s.b.votes[0]!.at - died;
      };
      const early = await voteDelay(0);
      const late = await voteDelay(0.98);
      expect(late, 'fake time: a late draw does not delay the first vote').to.equal(early);
    });

    it('rejects a random option that is not a function', () => {
      expect(() => new Client({ servers: [A], random: 0.5 as unknown as () => number })).to.throw(
        InvalidArgumentError,
      );
    });

    it('the only reachable node has no complete history: connect gets UnavailableError(no-history) at once, not after the connect timeout, and no vote is sent', async () => {
      const s = setup(
        { a: { state: 'DEAD' }, b: { history: 'incomplete', acceptVotes: true } },
        { mode: 'native' },
      );
      const ready = outcome(s.client.ready(60_000));
      const took = await advanceUntil(s.net, () => ready.settled, 3000);
      expect(ready.error).to.be.instanceOf(UnavailableError);
      expect((ready.error as UnavailableError).reason).to.equal('no-history');
      expect((ready.error as Error).message).to.match(/5566 answered PASSIVE without a complete history/);
      expect(took).to.be.at.most(1000);
      expect(s.b.votes).to.have.length(0);
    });

    it('a vote refused with no-history stops the votes; a connected client keeps trying and says unavailable', async () => {
      const s = setup({ b: { history: 'incomplete' } }, { mode: 'native' });
      await s.client.ready(1000);
      await s.net.advance(300);
      s.a.setState('DEAD');
      await advanceUntil(s.net, () => s.statuses.some((x) => x.type === 'unavailable'), 3000);
      const types = s.statuses.map((x) => x.type);
      expect(types.slice(0, 2)).to.deep.equal(['disconnected', 'unavailable']);
      // A comes back: the client still looks, and takes it
      s.a.setState('ACTIVE');
      await advanceUntil(s.net, () => s.client.server === A, 3000);
      expect(s.client.server).to.equal(A);
      expect(s.statuses.at(-1)!.type).to.equal('reconnected');
    });
  });

  describe('heartbeat learning', () => {
    it('a plain server with 1 s HUGZ and no advertisement: no failover and no resync in 10 s of idle fake time (serverTimeoutMs 500)', async () => {
      const s = setup(
        { heartbeatMs: 1000, a: { plainChp: true }, b: { plainChp: true, passiveHugz: true } },
        { mode: 'chp' },
      );
      await s.net.advance(200);
      await s.client.ready(1000);
      await s.net.advance(10_000);
      expect(s.a.published.length, 'HUGZ flowed').to.be.greaterThan(8);
      expect(s.failovers).to.deep.equal([]);
      expect(s.statuses).to.deep.equal([]);
      expect(s.a.requestsOf(ICANHAZ), 'one snapshot, no resync').to.have.length(1);
      expect(s.b.requests).to.have.length(0);
      expect(s.client.server).to.equal(A);
    });

    it('the same plain server does fail over once it stops: after 3 intervals of silence', async () => {
      const s = setup({ heartbeatMs: 1000, a: { plainChp: true }, b: { plainChp: true } }, { mode: 'chp' });
      await s.net.advance(200);
      await s.client.ready(1000);
      await s.net.advance(4000);
      s.a.setState('DEAD');
      s.b.promote();
      const took = await advanceUntil(s.net, () => s.client.server === B, 10_000, 100);
      expect(s.client.server).to.equal(B);
      expect(took).to.be.within(2500, 4500);
    });
  });

  describe('plain CHP order', () => {
    it('an ICANHAZ? that could not be sent (no connection yet) goes again to the same server, not to the next', async () => {
      const s = setup({ a: { plainChp: true, state: 'DEAD' }, b: { plainChp: true } }, { mode: 'chp' });
      await s.net.advance(300);
      expect(s.a.requests, 'nothing reached A while it was down').to.have.length(0);
      s.a.setState('ACTIVE'); // the server comes up (a single server, or the primary starting)
      await advanceUntil(s.net, () => s.client.sequence >= 0, 1000);
      expect(s.client.server).to.equal(A);
      expect(s.a.requestsOf(ICANHAZ)).to.have.length(1);
      expect(s.b.requests, 'B is not asked while A has not been silent for the timeout').to.have.length(0);
    });
  });

  describe('plain CHP: subscribed before the snapshot', () => {
    // RFC 12 has no resume: an update published between the snapshot and a subscription made
    // after it never reaches the client (strict-chp.test.ts lost writes made right after connect).
    it('an update the server publishes right after answering ICANHAZ? reaches the client', async () => {
      const s = setup({ a: { plainChp: true }, b: { plainChp: true } }, { mode: 'chp', subtree: '/w/' });
      s.a.set('/w/before', 'in the snapshot');
      let published = false;
      s.a.onRequest = (request) => {
        if (request.command !== ICANHAZ || published) return;
        published = true; // the snapshot is on its way; this update follows it at once
        s.a.set('/w/after', 'published after the snapshot');
      };
      await advanceUntil(s.net, () => s.client.sequence >= 0, 1000);
      await advanceUntil(s.net, () => s.client.getString('/w/after') !== undefined, 1000);
      expect(published).to.equal(true);
      expect(s.client.getString('/w/before')).to.equal('in the snapshot');
      expect(s.client.getString('/w/after')).to.equal('published after the snapshot');
      expect(s.b.requests, 'only the server it asked').to.have.length(0);
    });
  });

  describe("'auto' mode", () => {
    it('sends nothing native before a HUGZ advertised twinstar=1, then goes native', async () => {
      const s = setup({}, { mode: 'auto' });
      await advanceUntil(s.net, () => s.client.sequence >= 0, 3000, 10);
      expect(s.client.mode).to.equal('native');
      expect(s.modes).to.deep.equal(['native']);
      const firstNative = [...s.a.requests, ...s.b.requests].filter((r) => r.command.startsWith('T'))[0]!;
      expect(s.a.hugzAt.length).to.be.greaterThan(0);
      expect(firstNative.at, 'the first native request follows an advertisement').to.be.at.least(
        s.a.hugzAt[0]!,
      );
      expect(firstNative.command).to.equal(Native.PING);
      expect(s.a.requests.filter((r) => r.command === ICANHAZ)).to.have.length(0);
      expect(await s.client.set('/w', 'x')).to.be.greaterThan(0);
    });

    it('without HUGZ, asks ICANHAZ? in Binary Star order and switches to native when KTHXBAI advertises twinstar=1', async () => {
      const s = setup({}, { mode: 'auto' });
      s.net.heartbeats = false;
      await advanceUntil(s.net, () => s.client.sequence >= 0, 5000);
      expect(s.client.mode).to.equal('native');
      expect(s.a.requests.map((r) => r.command)).to.deep.equal([ICANHAZ, Native.SNAPSHOT]);
      expect(s.b.requests).to.have.length(0);
    });

    it('active dead, twinstar passive (which sends no HUGZ): after the listening period asks the passive ICANHAZ? (a legitimate vote) and goes native from its KTHXBAI', async () => {
      const s = setup({ a: { state: 'DEAD' }, b: { acceptVotes: true } }, { mode: 'auto' });
      const took = await advanceUntil(s.net, () => s.client.sequence >= 0, 8000);
      expect(s.client.server).to.equal(B);
      expect(s.client.mode).to.equal('native');
      expect(s.b.requests.map((r) => r.command)).to.deep.equal([ICANHAZ, Native.SNAPSHOT]);
      expect(
        s.b.requests[0]!.at - s.net.clock.now() + took,
        'not before the listening period',
      ).to.be.at.least(3000);
      expect(took, 'A, never reached, counts as silent since the start: no second wait').to.be.below(4000);
    });

    it('against guide-style servers (HUGZ from both, no advertisement) never sends a native request', async () => {
      const s = setup(
        { heartbeatMs: 1000, a: { plainChp: true }, b: { plainChp: true, passiveHugz: true } },
        { mode: 'auto' },
      );
      await advanceUntil(s.net, () => s.client.sequence >= 0, 5000);
      await s.net.advance(3000);
      expect(s.client.mode).to.equal('chp');
      expect([...nativeCommands(s.a), ...nativeCommands(s.b)]).to.deep.equal([]);
      expect(s.b.requests, 'the passive was never asked').to.have.length(0);
    });
  });

  describe('status signals and errors', () => {
    it('a 12 s outage of both servers: disconnected, reconnecting while it lasts, reconnected; status() yields the same', async () => {
      const s = setup({}, { mode: 'native' });
      await s.client.ready(1000);
      const iterated: string[] = [];
      const iterating = (async () => {
        for await (const st of s.client.status()) iterated.push(st.type);
      })();
      await s.net.advance(300);
      expect(s.statuses, 'nothing while all is well').to.deep.equal([]);
      s.a.setState('DEAD');
      s.b.setState('DEAD');
      await s.net.advance(12_000);
      s.a.setState('ACTIVE');
      await advanceUntil(s.net, () => s.client.server === A, 3000);
      const types = s.statuses.map((x) => x.type);
      expect(types[0]).to.equal('disconnected');
      expect(types.at(-1)).to.equal('reconnected');
      expect(types.filter((t) => t === 'reconnecting').length).to.be.greaterThan(3);
      const back = s.statuses.at(-1) as Extract<Status, { type: 'reconnected' }>;
      expect(back.server).to.equal(A);
      expect(back.downMs, 'from the silence noticed to the sync').to.be.greaterThan(11_000);
      await s.client.close();
      await iterating;
      expect(iterated).to.deep.equal(types);
    });

    it("ready()'s timeout is on the injected clock: pending through 999 ms of fake time, NoActiveError at 1000 ms", async () => {
      const s = setup({ a: { state: 'DEAD' }, b: { state: 'DEAD' } }, { mode: 'native' });
      const ready = outcome(s.client.ready(1000));
      await s.net.advance(990);
      expect(ready.settled, 'still waiting before its timeout').to.equal(false);
      await s.net.advance(100);
      expect(ready.settled, 'timed out in fake time, no real timer needed').to.equal(true);
      expect(ready.error).to.be.instanceOf(NoActiveError);
      expect((ready.error as Error).message).to.match(/within 1000 ms/);
    });

    it('connect times out with NoActiveError saying what each server did: no connection, answered PASSIVE', async () => {
      const s = setup({ a: { state: 'DEAD' } }, { mode: 'native' });
      await s.net.advance(1500);
      // ready()'s timeout runs on the injected clock: fake time decides it, not a real timer
      const waiting = s.client.ready(20).then(
        () => undefined,
        (e: unknown) => e,
      );
      await s.net.advance(100);
      const error = await waiting;
      expect(error).to.be.instanceOf(NoActiveError);
      expect(error).to.be.instanceOf(TimeoutError);
      expect((error as NoActiveError).seen).to.deep.equal([
        { server: A, seen: 'unreachable' },
        { server: B, seen: 'answered', state: 'PASSIVE' },
      ]);
      expect((error as Error).message).to.match(/5556 no connection.*5566 answered PASSIVE/);
    });
  });

  describe('close() in chp mode', () => {
    it('waits until the collector connection is up and the KVSET went out', async () => {
      const s = setup({ a: { plainChp: true }, b: { plainChp: true } }, { mode: 'chp' });
      await s.net.advance(100);
      await s.client.ready(1000);
      s.net.collectorsUp = false; // the PUB to the collector has not connected yet
      expect(await s.client.set('/w', 'x')).to.equal(0);
      const closed = outcome(s.client.close());
      await s.net.settle();
      expect(closed.settled, 'close() waits for the collector').to.equal(false);
      s.net.connectCollectors();
      await s.client.close();
      await s.net.settle();
      expect(s.a.collected.map((m) => m.key)).to.deep.equal(['/w']);
      expect(s.b.collected.map((m) => m.key)).to.deep.equal(['/w']);
    });

    it('gives up after lingerMs when a collector never comes up', async () => {
      const s = setup({ a: { plainChp: true }, b: { plainChp: true } }, { mode: 'chp', lingerMs: 30 });
      await s.net.advance(100);
      await s.client.ready(1000);
      s.net.collectorsUp = false;
      await s.client.set('/w', 'x');
      await s.client.close();
      expect(s.net.links.every((l) => l.closed)).to.equal(true);
      expect(s.a.collected).to.have.length(0);
    });
  });
});
