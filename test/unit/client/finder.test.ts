/**
 * The finder's side of the quarantine (src/client/finder.ts): a server the host says is not
 * usable (it sent a malformed reply) gets no TPING, TVOTE or ICANHAZ?, and its silence while the
 * client is not trying it does not count, so it justifies no vote for the other server. A fake
 * host with recording links and a hand-driven clock.
 */
import { expect } from 'chai';
import { Finder, FOLLOW_WAIT_MS } from '../../../src/client/finder.js';
import type { Link } from '../../../src/client/link.js';
import { ICANHAZ, Native } from '../../../src/wire/index.js';
import { silentLogger } from '../../../src/log/index.js';

const SERVER_TIMEOUT = 500;

function setup(mode: 'native' | 'chp') {
  const sent: { server: number; command: string }[] = [];
  /** the servers whose subscriber completed its handshake (fake `followReady`) */
  const subscribed = new Set<number>([0, 1]);
  const followed: number[] = [];
  /** the servers to which a subscriber cannot be opened (EMFILE: the fake `follow` returns false) */
  const unopenable = new Set<number>();
  const links: Link[] = [0, 1].map((server) => ({
    request: (frames: Buffer[]) => {
      sent.push({ server, command: frames[0]!.toString('latin1') });
    },
    follow: () => {
      followed.push(server);
      return !unopenable.has(server);
    },
    followReady: () => subscribed.has(server),
    unfollow: () => undefined,
    publish: () => true,
    drain: () => Promise.resolve(),
    close: () => undefined,
  }));
  const clock = { now: 0 };
  const quarantined = new Set<number>();
  let reqId = 1;
  const finder = new Finder(
    {
      links,
      subtree: '',
      log: silentLogger(),
      now: () => clock.now,
      mode: () => mode,
      reqId: () => reqId++,
      unavailable: () => undefined,
      usable: (server) => !quarantined.has(server),
      random: () => 0,
    },
    ['tcp://127.0.0.1:5556', 'tcp://127.0.0.1:5566'],
    SERVER_TIMEOUT,
  );
  /** probes every 50 ms for `ms` */
  const run = (ms: number) => {
    const end = clock.now + ms;
    for (; clock.now < end; clock.now += 50) finder.probe();
  };
  return { sent, clock, quarantined, finder, run, subscribed, followed, unopenable };
}

describe('Finder: quarantined servers', () => {
  it('native: pings only the usable server; a passive that answers gets no vote while the other is quarantined, and one once the other has been silent after its quarantine', () => {
    const f = setup('native');
    f.quarantined.add(0);
    f.finder.begin(undefined);
    f.run(50);
    expect(f.sent.map((s) => s.server)).to.deep.equal([1]);
    // B answers PASSIVE to its ping: a vote for it needs A silent for its timeout.
    f.finder.discovery.pong(1, { state: 'PASSIVE', heartbeatMs: 100, history: 'complete' });
    f.run(3 * SERVER_TIMEOUT);
    expect(
      f.sent.filter((s) => s.server === 0),
      'requests to the quarantined server',
    ).to.deep.equal([]);
    expect(
      f.sent.filter((s) => s.command === Native.VOTE),
      'votes while A was not tried',
    ).to.deep.equal([]);
    f.quarantined.clear();
    f.run(50);
    expect(f.sent.filter((s) => s.server === 0).map((s) => s.command)).to.deep.equal([Native.PING]);
    // A never answers: once silent for its timeout after the quarantine, B may be voted for.
    f.run(SERVER_TIMEOUT + 100);
    expect(f.sent.filter((s) => s.command === Native.VOTE).map((s) => s.server)).to.deep.equal([1]);
  });

  it('plain CHP: ICANHAZ? is held back while the server to ask is quarantined, the next server is not asked meanwhile, and it goes once the quarantine ends', () => {
    const f = setup('chp');
    f.quarantined.add(0);
    f.finder.begin(undefined);
    f.run(4000); // longer than A's timeout (3 x the assumed 1 s HUGZ interval)
    expect(f.sent, 'nothing to A (quarantined), nothing to B (A not yet silent)').to.deep.equal([]);
    f.quarantined.clear();
    f.run(100);
    expect(f.sent).to.deep.equal([{ server: 0, command: ICANHAZ }]);
    f.run(3100);
    expect(f.sent).to.deep.equal([
      { server: 0, command: ICANHAZ },
      { server: 1, command: ICANHAZ },
    ]);
  });
});

describe('Finder: plain CHP subscribes, then asks', () => {
  it("the asked server's HUGZ set its interval: a passive asked first (hugz-ms=100) is left after serverTimeoutMs, not the 3 s of an assumed 1 s", () => {
    const f = setup('chp');
    f.finder.begin(undefined);
    f.run(50);
    expect(f.sent).to.deep.equal([{ server: 0, command: ICANHAZ }]);
    expect(
      f.finder.onHugzElsewhere(0, 'twinstar=1\nhugz-ms=100\n'),
      'not listening: no mode to say',
    ).to.equal(undefined);
    expect(f.finder.timeout(0)).to.equal(SERVER_TIMEOUT);
    f.run(SERVER_TIMEOUT);
    expect(f.sent).to.deep.equal([
      { server: 0, command: ICANHAZ },
      { server: 1, command: ICANHAZ },
    ]);
  });

  it("ICANHAZ? waits for the subscriber's handshake with the server asked, and goes as soon as it is told of it", () => {
    const f = setup('chp');
    f.subscribed.clear();
    f.finder.begin(undefined);
    f.run(500);
    expect(f.followed, 'the subscriber to A was made').to.include(0);
    expect(f.sent, 'no ask before its subscriptions are in force').to.deep.equal([]);
    f.subscribed.add(0);
    expect(f.finder.followed(0), 'the ask is due on the handshake').to.equal(true);
    f.finder.probe(); // what the agent does when followed() is true, without waiting for a tick
    expect(f.sent).to.deep.equal([{ server: 0, command: ICANHAZ }]);
    expect(f.finder.followed(0), 'nothing waits any more').to.equal(false);
  });

  it('ICANHAZ? goes anyway once the subscriber has had FOLLOW_WAIT_MS to connect (a publisher port that cannot be reached must not keep the server from being asked)', () => {
    const f = setup('chp');
    f.subscribed.clear();
    f.finder.begin(undefined);
    f.run(FOLLOW_WAIT_MS - 50);
    expect(f.sent).to.deep.equal([]);
    f.run(100);
    expect(f.sent).to.deep.equal([{ server: 0, command: ICANHAZ }]);
  });

  it('a subscriber that could not be opened (EMFILE) holds the ICANHAZ? back past FOLLOW_WAIT_MS, tries again at each probe, and the ask goes once one opens', () => {
    const f = setup('chp');
    f.unopenable.add(0);
    f.finder.begin(undefined);
    f.run(FOLLOW_WAIT_MS + 500);
    expect(f.followed.filter((s) => s === 0).length, 'tried again at each probe').to.be.greaterThan(10);
    expect(f.sent, 'no ask without a subscription').to.deep.equal([]);
    f.unopenable.clear();
    f.run(50);
    expect(f.sent).to.deep.equal([{ server: 0, command: ICANHAZ }]);
  });
});
