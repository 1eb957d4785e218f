/** The client's bookkeeping for finding the active (src/client/discovery.ts): pure, given `now`. */
import { expect } from 'chai';
import { describeSeen, Discovery, pongOf } from '../../../src/client/discovery.js';
import {
  decodeReply,
  encodeRequestId,
  encodeSequence,
  Native,
  type PongReply,
} from '../../../src/wire/index.js';

const A = 'tcp://a:1';
const B = 'tcp://b:1';
const props = (o: Record<string, string>) => new Map(Object.entries(o));

describe('Discovery', () => {
  it('the effective timeout: 3 x the 1 s assumed interval until learned; advertised, measured or the pair-mate interval once known', () => {
    const d = new Discovery([A, B], 500);
    expect(d.timeout(0)).to.equal(3000);
    d.hugz(0, 0, props({}));
    d.hugz(0, 100, props({}));
    expect(d.timeout(0), 'one gap is not enough').to.equal(3000);
    d.hugz(0, 220, props({}));
    expect(d.heartbeatMs(0)).to.equal(120);
    expect(d.timeout(0), 'never under serverTimeoutMs').to.equal(500);
    d.pong(1, { state: 'PASSIVE', heartbeatMs: 1000, history: 'complete' });
    expect(d.timeout(1)).to.equal(3000);
    const e = new Discovery([A, B], 500);
    e.advertised(1, props({ twinstar: '1', 'hugz-ms': '100' }));
    expect(e.native(1)).to.equal(true);
    expect(e.heartbeatMs(0), "A's interval from B's advertisement (same pair)").to.equal(100);
    e.advertised(0, props({}));
    expect(e.native(0)).to.equal(false);
  });

  it('a vote is justified only for a non-active server with history once every other server is silent', () => {
    const d = new Discovery([A, B], 500);
    d.begin(0);
    d.pong(1, { state: 'PASSIVE', heartbeatMs: 100, history: 'complete' });
    expect(d.voteCandidates(499)).to.deep.equal([]);
    expect(d.voteCandidates(500)).to.deep.equal([1]);
    d.heard(0, 450); // A said something: its silence starts again
    expect(d.voteCandidates(900)).to.deep.equal([]);
    expect(d.voteCandidates(950)).to.deep.equal([1]);
    d.thaw(2000); // the client was frozen: no silence is proved
    expect(d.voteCandidates(2100)).to.deep.equal([]);
    d.pong(1, { state: 'PASSIVE', history: 'incomplete' });
    expect(d.voteCandidates(5000), 'no history, no vote').to.deep.equal([]);
    expect(d.unavailable(5000)).to.equal(true);
  });

  it('after a failover the lost server already counts as silent; its pair-mate is asked first in chp order', () => {
    const d = new Discovery([A, B], 500);
    d.begin(0);
    d.heard(0, 100);
    d.begin(700, 0); // A (in use) went silent at 100
    d.pong(1, { state: 'PASSIVE', heartbeatMs: 100 });
    expect(d.voteCandidates(700)).to.deep.equal([1]);
    expect(d.chpAsk(700)).to.equal(1);
    expect(d.chpAsk(1000), 'B may still answer').to.equal(undefined);
    expect(d.chpAsk(1200)).to.equal(0);
  });

  it('pings: one outstanding per server, re-sent after the probe period once answered', () => {
    const d = new Discovery([A, B], 500);
    d.begin(0);
    expect(d.pingsDue(0, 50)).to.deep.equal([0, 1]);
    d.pinged(0, 7, 0);
    d.pinged(1, 8, 0);
    expect(d.pingsDue(60, 50)).to.deep.equal([]);
    expect(d.isPing(1, 8)).to.equal(true);
    expect(d.isPing(1, 8)).to.equal(false);
    expect(d.pingsDue(60, 50)).to.deep.equal([1]);
    d.unreachable(0);
    expect(describeSeen(d.seen())).to.equal(`${A} no connection (refused or down); ${B} no answer`);
  });

  it('an unanswered ping goes again after 100 ms, then 200, 400, 800, and every 1,000 ms after that; an answer starts over', () => {
    const d = new Discovery([A], 500);
    d.begin(0);
    let reqId = 0;
    let at = 0;
    const sentAt: number[] = [];
    // every ms for 4 s: a ping goes whenever one is due, none is answered
    for (; at <= 4000; at++)
      if (d.pingsDue(at, 50).length > 0) {
        d.pinged(0, ++reqId, at);
        sentAt.push(at);
      }
    expect(sentAt).to.deep.equal([0, 100, 300, 700, 1500, 2500, 3500]);
    // answered: the next one waits the probe period, and an unanswered one 100 ms again
    expect(d.isPing(0, reqId)).to.equal(true);
    expect(d.pingsDue(3549, 50)).to.deep.equal([]);
    expect(d.pingsDue(3550, 50)).to.deep.equal([0]);
    d.pinged(0, ++reqId, 3550);
    expect(d.pingsDue(3649, 50)).to.deep.equal([]);
    expect(d.pingsDue(3650, 50)).to.deep.equal([0]);
  });

  it('a plain CHP ask refused by the socket goes as soon as the connection completes, and an ask that went out is not repeated while the server may answer', () => {
    const d = new Discovery([A], 500);
    d.begin(0);
    expect(d.chpAsk(0)).to.equal(0);
    d.chpNotSent(0);
    expect(d.chpAsk(10), 'refused: retried after the probe period').to.equal(undefined);
    expect(d.reachable(0), 'its connection completed').to.equal(true);
    expect(d.chpAsk(11)).to.equal(0);
    // a second ICANHAZ? would stop the first one's stream (one per client): silence until the timeout
    for (let at = 12; at < 3000; at += 7) expect(d.chpAsk(at), `at ${at}`).to.equal(undefined);
    expect(d.chpAsk(3000), 'silent for its timeout since the first ask: the next (here, itself)').to.equal(0);
  });

  it('plain CHP: an ask held back while the subscriber connects is no silence; a server with no connection at all is left after serverTimeoutMs', () => {
    // Two servers, no interval learned: 3 s each. A (asked first) stays silent.
    const d = new Discovery([A, B], 500);
    d.begin(0);
    expect(d.chpAsk(0)).to.equal(0);
    expect(d.chpAsk(2999)).to.equal(undefined);
    expect(d.chpAsk(3000), 'A silent for its timeout').to.equal(1);
    d.chpDeferred(1); // the finder waits for its subscriber to B to connect
    // B's silence counts from its ask, not from the search's start (which skipped it at once)
    expect(d.chpAsk(3010), 'B is not silent: the client has not asked it yet').to.equal(undefined);
    expect(d.chpAsk(3050), 'the held ask, tried again').to.equal(1);
    expect(d.chpAsk(5999), 'B asked: it may answer').to.equal(undefined);
    expect(d.chpAsk(6000)).to.equal(0);

    // A refuses connections: its ask cannot be sent, and after serverTimeoutMs B is asked.
    const e = new Discovery([A, B], 500);
    e.begin(0);
    expect(e.chpAsk(0)).to.equal(0);
    e.chpNotSent(0);
    for (let at = 50; at < 500; at += 50) {
      expect(e.chpAsk(at), `at ${at}: the ask, not sent, goes again`).to.equal(0);
      e.chpNotSent(0);
    }
    expect(e.chpAsk(500), 'no connection: no heartbeat to wait 3 x for').to.equal(1);
  });

  it('pongOf reads the optional heartbeat and history of a decoded TPONG, and takes old 5-frame replies', () => {
    const pong = (...frames: Buffer[]) =>
      decodeReply([Buffer.from(Native.PONG), encodeRequestId(7), ...frames]) as PongReply;
    const head = [Buffer.from('ACTIVE'), encodeSequence(3), Buffer.from('term')];
    expect(pongOf(pong(...head, Buffer.from('100'), Buffer.from('complete')))).to.deep.equal({
      state: 'ACTIVE',
      heartbeatMs: 100,
      history: 'complete',
    });
    expect(pongOf(pong(...head))).to.deep.equal({ state: 'ACTIVE' });
  });
});
