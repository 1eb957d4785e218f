/**
 * Watch from a sequence (issue 17; src/client/history.ts): the HistoryWatch's ordering rules on
 * their own (replay, held live updates, no gap, no duplicate), then the client against the fake
 * pair: replay then live, a change both replayed and published told once, history-unavailable,
 * a replay cut by a failover asked again, a prefix outside the subtree.
 */
import { expect } from 'chai';
import type { Update } from '../../../src/client/events.js';
import { HistoryWatch } from '../../../src/client/history.js';
import { WatchStream } from '../../../src/client/watch.js';
import { HistoryUnavailableError, InvalidArgumentError } from '../../../src/errors.js';
import { Native, type PackedEntry } from '../../../src/wire/index.js';
import { closeClients, failover, readyOnA, take, track } from './kv-harness.js';

const entry = (key: string, sequence: number, body = 'v', properties = ''): PackedEntry => ({
  key,
  sequence,
  uuid: '',
  properties,
  body: Buffer.from(body),
  expiresAt: 0,
});
const live = (key: string, seq: number): Update => ({
  key,
  value: Buffer.from('v'),
  seq,
  deleted: false,
  resync: false,
});
const host = {
  now: () => 0,
  reqId: () => 1,
  target: () => undefined,
  mode: () => 'native',
  ttlRemainingMs: () => undefined,
};

function drain(stream: WatchStream<Update>): Update[] {
  const out: Update[] = [];
  stream.push = ((push) => (u: Update) => {
    out.push(u);
    push.call(stream, u);
  })(stream.push);
  return out;
}

describe('client: watch from a sequence (issue 17)', () => {
  afterEach(closeClients);

  describe('HistoryWatch', () => {
    it('tells the replay, then held live updates above the replay end, then live ones: no gap, no duplicate', () => {
      const stream = new WatchStream<Update>(() => undefined);
      const told = drain(stream);
      const w = new HistoryWatch('/p/', 2, stream);
      w.live(live('/p/a', 4)); // already in the replay below
      w.batch([entry('/p/a', 3), entry('/p/a', 4), entry('/q/x', 5)], host);
      w.live(live('/p/b', 7)); // above the replay's end: held, then told
      w.live(live('/p/c', 6));
      expect(
        told.map((u) => u.seq),
        'the replay goes out as it comes',
      ).to.deep.equal([3, 4]);
      w.batch([entry('/p/c', 6)], host);
      w.end(6);
      w.live(live('/p/b', 7)); // published again after a resync: told once
      w.live(live('/p/d', 8));
      w.live(live('/q/y', 9));
      expect(told.map((u) => `${u.key}@${u.seq}`)).to.deep.equal([
        '/p/a@3',
        '/p/a@4',
        '/p/c@6',
        '/p/b@7',
        '/p/d@8',
      ]);
    });

    it('a replayed delete by prefix deletes each key the replay set under it, at its sequence', () => {
      const stream = new WatchStream<Update>(() => undefined);
      const told = drain(stream);
      const w = new HistoryWatch('/p/', 0, stream);
      w.batch(
        [
          entry('/p/a', 1),
          entry('/p/b', 2),
          entry('/p/b', 3, ''),
          entry('/p/c', 4),
          entry('/', 5, '', 'twinstar-delete-prefix=1\n'),
        ],
        host,
      );
      w.end(5);
      expect(told.map((u) => `${u.key}@${u.seq}${u.deleted ? '-' : ''}`)).to.deep.equal([
        '/p/a@1',
        '/p/b@2',
        '/p/b@3-',
        '/p/c@4',
        '/p/a@5-',
        '/p/c@5-',
      ]);
    });
  });

  it('replays the changes after fromSequence under the prefix, then goes live', async () => {
    const h = await readyOnA((a) => {
      a.set('/p/a', '1'); // 1
      a.set('/q/x', '2'); // 2
      a.set('/p/b', '3'); // 3
      a.delete('/p/a'); // 4
    });
    const it = h.client.watch('/p/', { fromSequence: 1 });
    const replayed = await take(it, 2, h.net);
    expect(replayed.map((u) => [u.key, u.seq, u.deleted])).to.deep.equal([
      ['/p/b', 3, false],
      ['/p/a', 4, true],
    ]);
    expect(h.a.requestsOf(Native.WATCH)[0]!.frames[2]!.toString()).to.equal('/p/');
    h.a.set('/q/y', 'no');
    h.a.set('/p/c', '5');
    const [next] = await take(it, 1, h.net);
    expect([next!.key, next!.seq]).to.deep.equal(['/p/c', 6]);
    await it.return?.();
  });

  it('a change both replayed and published (held on the wire) is told once', async () => {
    const h = await readyOnA((a) => a.set('/p/a', '1'));
    h.a.holdPublished();
    h.a.set('/p/b', '2'); // seq 2: in the log, its KVPUB held back
    const it = h.client.watch('/p/', { fromSequence: 0 });
    const replayed = await take(it, 2, h.net);
    expect(replayed.map((u) => u.seq)).to.deep.equal([1, 2]);
    h.a.releasePublished(); // the live copy of seq 2 arrives after the replay
    h.a.set('/p/c', '3');
    const [next] = await take(it, 1, h.net);
    expect(next!.seq).to.equal(3);
    expect(
      h.updates.filter((u) => u.key === '/p/b'),
      'the client itself saw the live copy',
    ).to.have.length(1);
    const rest = track(it.next());
    await h.net.advance(100);
    expect(rest.status, 'nothing more: no duplicate of seq 2').to.equal('pending');
    await it.return?.();
  });

  it('history-unavailable ends the watch with HistoryUnavailableError naming the oldest sequence', async () => {
    const h = await readyOnA((a) => {
      a.set('/p/a', '1');
      a.set('/p/a', '2');
    });
    h.a.kv.historyFrom = 1;
    const ok = h.client.watch('/p/', { fromSequence: 1 });
    expect((await take(ok, 1, h.net))[0]!.seq, 'a sequence still held replays').to.equal(2);
    await ok.return?.();
    const it = h.client.watch('/p/', { fromSequence: 0 });
    const next = track(it.next());
    await h.net.advance(50);
    expect(next.status).to.equal('rejected');
    expect(next.error).to.be.instanceOf(HistoryUnavailableError);
    expect(next.error).to.include({ code: 'ERR_HISTORY_UNAVAILABLE', oldestAvailable: 1 });
    expect(await it.next()).to.deep.equal({ value: undefined, done: true });
  });

  it('a replay cut by a failover is asked of the new active from the last change told: no gap, no duplicate', async () => {
    const h = await readyOnA((a) => {
      for (let i = 1; i <= 4; i++) a.set(`/p/${i}`, String(i));
    });
    h.a.loseRequests(Native.WATCH, 1);
    const it = h.client.watch('/p/', { fromSequence: 2 });
    await h.net.advance(50);
    expect(h.a.requestsOf(Native.WATCH)).to.have.length(1);
    await failover(h);
    h.b.set('/p/5', '5');
    const got = await take(it, 3, h.net);
    expect(got.map((u) => u.seq)).to.deep.equal([3, 4, 5]);
    expect(h.b.requestsOf(Native.WATCH)[0]!.frames[3]!.readUInt32BE(4)).to.equal(2);
    const rest = track(it.next());
    await h.net.advance(100);
    expect(rest.status).to.equal('pending');
    await it.return?.();
  });

  it('a replay in flight is not asked again by a resync with the same server, only after requestTimeoutMs unanswered', async () => {
    const h = await readyOnA((a) => a.set('/p/1', '1'));
    h.a.loseRequests(Native.WATCH, 1);
    const it = h.client.watch('/p/', { fromSequence: 0 });
    await h.net.advance(50);
    const resumes = h.a.requestsOf(Native.RESUME).length;
    h.a.dropPublished(1);
    h.a.set('/p/2', '2'); // lost on the wire
    h.a.set('/p/3', '3'); // the gap: the client resumes
    await h.net.advance(100);
    expect(h.a.requestsOf(Native.RESUME).length, 'a resync happened').to.equal(resumes + 1);
    expect(h.a.requestsOf(Native.WATCH), 'the replay was not asked again').to.have.length(1);
    const first = track(it.next());
    await h.net.advance(500);
    expect(first.status, 'nothing before the request timeout').to.equal('pending');
    await h.net.advance(2000);
    expect(h.a.requestsOf(Native.WATCH)).to.have.length(2);
    expect(first.status).to.equal('resolved');
    expect((first.value as IteratorResult<Update>).value.seq).to.equal(1);
    expect((await take(it, 2, h.net)).map((u) => u.seq)).to.deep.equal([2, 3]);
    await it.return?.();
  });

  it("a replay refused 'busy' (the server's cap of streams) is asked again later, not ended", async () => {
    const h = await readyOnA((a) => a.set('/p/1', '1'));
    h.a.loseRequests(Native.WATCH, 1); // received, unanswered: the refusal is sent by hand below
    const it = h.client.watch('/p/', { fromSequence: 0 });
    await h.net.advance(20);
    const [request] = h.a.requestsOf(Native.WATCH);
    h.a.reply(h.a.followers.values().next().value!, {
      command: 'TERROR',
      reqId: request!.reqId!,
      reason: 'busy',
      message: 'at cap',
    });
    const first = track(it.next());
    await h.net.advance(500);
    expect(first.status, 'not ended by busy').to.equal('pending');
    await h.net.advance(2000);
    expect(h.a.requestsOf(Native.WATCH)).to.have.length(2);
    expect(first.status).to.equal('resolved');
    expect((first.value as IteratorResult<Update>).value.seq).to.equal(1);
    await it.return?.();
  });

  it('a prefix outside the subtree throws InvalidArgumentError; a bad fromSequence too', async () => {
    const h = await readyOnA(() => undefined, { subtree: '/s/' });
    expect(() => h.client.watch('/t/', { fromSequence: 0 })).to.throw(InvalidArgumentError);
    expect(() => h.client.watch('/s/', { fromSequence: -1 })).to.throw(InvalidArgumentError);
    expect(h.a.requestsOf(Native.WATCH)).to.have.length(0);
  });
});
