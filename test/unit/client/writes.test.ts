/**
 * The write pipeline on its own (src/client/writes.ts), with a recording link and a hand-driven
 * clock: batches, read-your-writes by subtree, malformed acknowledgements, re-sending with the
 * same uuids.
 */
import { expect } from 'chai';
import { ReplyError } from '../../../src/client/drops.js';
import type { Link } from '../../../src/client/link.js';
import { Writes } from '../../../src/client/writes.js';
import { decodeRequest, DEFAULT_LIMITS, type NativeRequest } from '../../../src/wire/index.js';
import { ClientSocketError, TimeoutError } from '../../../src/errors.js';

function setup() {
  const sent: Buffer[][] = [];
  const link: Link = {
    request: (frames: Buffer[]) => {
      sent.push(frames);
    },
    follow: () => true,
    unfollow: () => undefined,
    publish: () => true,
    drain: () => Promise.resolve(),
    close: () => undefined,
  };
  const state = { now: 0, applied: 10, stalls: 0, reqId: 1 };
  const writes = new Writes({
    links: [link],
    subtree: '/app/',
    limits: DEFAULT_LIMITS,
    writeTimeoutMs: 1000,
    requestTimeoutMs: 200,
    maxPendingWrites: 100,
    now: () => state.now,
    mode: () => 'native',
    closed: () => false,
    target: () => link,
    reqId: () => state.reqId++,
    applied: () => state.applied,
    degraded: () => undefined,
    stalled: () => state.stalls++,
  });
  const outcomes = new Map<string, unknown>();
  const issue = (key: string) =>
    writes.write(key, Buffer.from('v'), '').then(
      (seq) => outcomes.set(key, seq),
      (error: unknown) => outcomes.set(key, error),
    );
  const flushed = () => new Promise((resolve) => setImmediate(resolve));
  return { sent, state, writes, outcomes, issue, flushed };
}

/** A TSET the pipeline sent, decoded by the codec. */
const tset = (frames: Buffer[]) => decodeRequest(frames) as Extract<NativeRequest, { command: 'TSET' }>;
const reqIdOf = (frames: Buffer[]) => tset(frames).reqId;
const keysOf = (frames: Buffer[]) => tset(frames).writes.map((e) => e.key);

describe('Writes (the client write pipeline)', () => {
  it('a key outside the subtree resolves on its acknowledgement; one inside waits until the replica has applied it', async () => {
    const w = setup();
    void w.issue('/app/k');
    void w.issue('/other/k');
    await w.flushed();
    expect(w.sent.map(keysOf)).to.deep.equal([['/app/k', '/other/k']]);
    w.writes.onAck(reqIdOf(w.sent[0]!), [11, 12], 'replicated');
    await w.flushed();
    expect(w.outcomes.get('/other/k')).to.equal(12);
    expect(w.outcomes.has('/app/k'), 'resolved before the replica had it').to.equal(false);
    w.state.applied = 11;
    w.writes.applied(11);
    await w.flushed();
    expect(w.outcomes.get('/app/k')).to.equal(11);
    expect(w.writes.pending).to.equal(0);
  });

  it('a TACK with too few sequences throws ReplyError and settles nothing; the batch goes again with the same uuids after requestTimeoutMs', async () => {
    const w = setup();
    void w.issue('/app/a');
    void w.issue('/app/b');
    await w.flushed();
    const first = w.sent[0]!;
    expect(() => w.writes.onAck(reqIdOf(first), [11], 'replicated')).to.throw(ReplyError);
    expect(w.writes.waiting(reqIdOf(first))).to.equal(true);
    expect(w.writes.pending).to.equal(2);
    w.state.now = 250;
    w.writes.retryUnanswered(w.state.now);
    await w.flushed();
    expect(w.sent).to.have.length(2);
    const uuids = (frames: Buffer[]) => tset(frames).writes.map((e) => e.uuid);
    expect(uuids(w.sent[1]!)).to.deep.equal(uuids(first));
  });

  it('an acknowledged write whose change never reaches the replica asks for a resume, then fails with TimeoutError at writeTimeoutMs', async () => {
    const w = setup();
    void w.issue('/app/k');
    await w.flushed();
    w.writes.onAck(reqIdOf(w.sent[0]!), [20], 'replicated');
    w.state.now = 300;
    w.writes.expire(w.state.now);
    expect(w.state.stalls, 'a resume asked for').to.equal(1);
    w.state.now = 1000;
    w.writes.expire(w.state.now);
    await w.flushed();
    expect(w.outcomes.get('/app/k')).to.be.instanceOf(TimeoutError);
    expect(String((w.outcomes.get('/app/k') as Error).message)).to.contain('sequence 20');
  });
});

describe('Writes: plain CHP', () => {
  /** two servers' links in plain CHP mode; `refuses` names those whose collector cannot be opened */
  function chp(refuses: Set<number>) {
    const published: number[] = [];
    const links: Link[] = [0, 1].map((server) => ({
      request: () => undefined,
      follow: () => true,
      unfollow: () => undefined,
      publish: () => {
        if (refuses.has(server)) return false;
        published.push(server);
        return true;
      },
      drain: () => Promise.resolve(),
      close: () => undefined,
    }));
    const writes = new Writes({
      links,
      subtree: '/app/',
      limits: DEFAULT_LIMITS,
      writeTimeoutMs: 1000,
      requestTimeoutMs: 200,
      maxPendingWrites: 100,
      now: () => 0,
      mode: () => 'chp',
      closed: () => false,
      target: () => links[0],
      reqId: () => 1,
      applied: () => 0,
      degraded: () => undefined,
      stalled: () => undefined,
    });
    return { writes, published };
  }

  it('a write goes to every collector and resolves with 0; one whose collector socket could not be opened (EMFILE) rejects with ClientSocketError saying how many it reached', async () => {
    const ok = chp(new Set());
    expect(await ok.writes.write('/app/a', Buffer.from('v'), '')).to.equal(0);
    expect(ok.published).to.deep.equal([0, 1]);

    const half = chp(new Set([1]));
    const error = await half.writes.write('/app/a', Buffer.from('v'), '').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(ClientSocketError);
    expect((error as ClientSocketError).code).to.equal('ERR_CLIENT_SOCKET');
    expect((error as Error).message).to.contain('reached 1 of 2');
    expect(half.published, 'the other collector got it').to.deep.equal([0]);
  });
});
