/**
 * Event publishing on its own (src/client/publishing.ts), with a recording link and a hand-driven
 * clock: batches, the server's refusals (TERROR), malformed acknowledgements, timeouts, and the
 * plain CHP refusal.
 */
import { expect } from 'chai';
import { ReplyError } from '../../../src/client/drops.js';
import { Publishes } from '../../../src/client/publishing.js';
import type { Link } from '../../../src/client/link.js';
import { decodeRequest, DEFAULT_LIMITS, type NativeRequest } from '../../../src/wire/index.js';
import { AccessDeniedError, ServerRejectedError, TimeoutError } from '../../../src/errors.js';

function setup() {
  const sent: Buffer[][] = [];
  const link: Link = {
    request: (frames: Buffer[]) => void sent.push(frames),
    follow: () => true,
    unfollow: () => undefined,
    publish: () => true,
    drain: () => Promise.resolve(),
    close: () => undefined,
  };
  const state = { now: 0, reqId: 1, mode: 'native' };
  const publishes = new Publishes({
    limits: DEFAULT_LIMITS,
    writeTimeoutMs: 1000,
    requestTimeoutMs: 200,
    maxPendingWrites: 100,
    now: () => state.now,
    mode: () => state.mode,
    closed: () => false,
    target: () => link,
    reqId: () => state.reqId++,
    later: (step) => step(),
  });
  const outcomes = new Map<string, unknown>();
  const issue = (topic: string) =>
    void publishes.publish(topic, 'd').then(
      (seq) => outcomes.set(topic, seq),
      (error: unknown) => outcomes.set(topic, error),
    );
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  return { sent, state, publishes, outcomes, issue, turn };
}

const tepub = (frames: Buffer[]) => decodeRequest(frames) as Extract<NativeRequest, { command: 'TEPUB' }>;
const topics = (frames: Buffer[]) => tepub(frames).events.map((e) => e.key);
const uuids = (frames: Buffer[]) => tepub(frames).events.map((e) => e.uuid);

describe('Publishes (the client event publishing)', () => {
  it('events of one turn go in one TEPUB and resolve with the TACK sequences; a TACK of the wrong size settles nothing', async () => {
    const p = setup();
    p.issue('a');
    p.issue('b');
    await p.turn();
    expect(p.sent.map(topics)).to.deep.equal([['a', 'b']]);
    const { reqId } = tepub(p.sent[0]!);
    expect(() => p.publishes.onAck(reqId, [1])).to.throw(ReplyError);
    expect(p.publishes.pending).to.equal(2);
    expect(p.publishes.onAck(reqId + 100, [1, 2]), 'not a publish batch').to.equal(false);
    expect(p.publishes.onAck(reqId, [7, 8])).to.equal(true);
    await p.turn();
    expect([p.outcomes.get('a'), p.outcomes.get('b')]).to.deep.equal([7, 8]);
  });

  it('access-denied fails the refused events and sends the others again with their uuids', async () => {
    const p = setup();
    p.issue('secret.x');
    p.issue('open.x');
    await p.turn();
    const first = p.sent[0]!;
    const message = 'may not publish';
    p.publishes.onError({
      command: 'TERROR',
      reqId: tepub(first).reqId,
      reason: 'access-denied',
      message,
      refused: [0],
    });
    await p.turn();
    expect(p.outcomes.get('secret.x')).to.be.instanceOf(AccessDeniedError);
    expect(p.sent.map(topics)).to.deep.equal([['secret.x', 'open.x'], ['open.x']]);
    expect(uuids(p.sent[1]!)).to.deep.equal([uuids(first)[1]]);
  });

  it('batch-too-large sends the events again in smaller batches; another refusal fails them with ServerRejectedError', async () => {
    const p = setup();
    for (const t of ['a', 'b', 'c', 'd']) p.issue(t);
    await p.turn();
    const fit = { maxBatchEntries: 2, maxBatchBytes: DEFAULT_LIMITS.maxBatchBytes };
    p.publishes.onError({
      command: 'TERROR',
      reqId: tepub(p.sent[0]!).reqId,
      reason: 'batch-too-large',
      message: '',
      fit,
    });
    expect(p.sent.slice(1).map(topics)).to.deep.equal([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    p.publishes.onError({
      command: 'TERROR',
      reqId: tepub(p.sent[1]!).reqId,
      reason: 'invalid-topic',
      message: 'no',
    });
    await p.turn();
    const error = p.outcomes.get('a') as ServerRejectedError;
    expect(error).to.be.instanceOf(ServerRejectedError);
    expect(error.reason).to.equal('invalid-topic');
    expect(p.outcomes.has('c')).to.equal(false);
  });

  it('unanswered batches go again after requestTimeoutMs with the same uuids, and fail at writeTimeoutMs', async () => {
    const p = setup();
    p.issue('a');
    await p.turn();
    p.state.now = 250;
    p.publishes.retryUnanswered(p.state.now);
    await p.turn();
    expect(p.sent).to.have.length(2);
    expect(uuids(p.sent[1]!)).to.deep.equal(uuids(p.sent[0]!));
    p.state.now = 1000;
    p.publishes.expire(p.state.now);
    await p.turn();
    expect(p.outcomes.get('a')).to.be.instanceOf(TimeoutError);
    expect(p.publishes.pending).to.equal(0);
  });

  it("waits while the mode is undecided, and fails with 'plain-chp' once the server turns out to speak plain CHP", async () => {
    const p = setup();
    p.state.mode = 'auto';
    p.issue('a');
    await p.turn();
    expect(p.sent).to.have.length(0);
    p.state.mode = 'chp';
    p.publishes.flush();
    await p.turn();
    expect((p.outcomes.get('a') as ServerRejectedError).reason).to.equal('plain-chp');
  });
});
