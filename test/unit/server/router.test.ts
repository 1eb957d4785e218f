/**
 * The snapshot socket's router (src/server/router.ts) and its handlers, on a fake ServerContext:
 * no sockets. Each test sends frames as a client would and reads the replies the server posts, so
 * the order of the checks (authentication, decoding, rate limits, rights, admission, dispatch) and
 * the bytes of every refusal are pinned without a real port.
 */
import { expect } from 'chai';
import { ID, UUID, harness, turn, write } from './router-harness.js';
import { Principal } from '../../../src/security/index.js';
import { DEFAULT_LIMITS, encodeIcanhaz } from '../../../src/wire/chp.js';
import { packBatch } from '../../../src/wire/packed.js';
import { type Durability, encodeRequest } from '../../../src/wire/native.js';
describe('server/router: requests on the snapshot socket, on a fake context', () => {
  it('a TSET is sequenced in request order and acknowledged once durable', async () => {
    const h = harness();
    h.send({ command: 'TSET', reqId: 7, writes: [write('/a'), write('/b')] });
    await turn();
    expect(h.replies()).to.deep.equal([
      { command: 'TACK', reqId: 7, sequences: [1, 2], durability: 'single' },
    ]);
    expect(h.named('acknowledged')).to.have.length(1);
    expect(h.drops).to.deep.equal([]);
  });

  it('a TSET whose batch breaks the layout is answered TERROR with the codec reason, counted, and nothing of it applied', () => {
    const h = harness();
    const batch = packBatch([write('/a'), write('/b')]);
    h.send([Buffer.from('TSET'), Buffer.from([0, 0, 0, 9]), batch.subarray(0, batch.length - 1)]);
    const [reply] = h.replies();
    expect(reply).to.deep.include({ command: 'TERROR', reqId: 9, reason: 'batch-truncated' });
    expect((reply as { message: string }).message).to.match(/^batch-truncated: /);
    expect(h.drops).to.deep.equal(['batch-truncated']);
    expect(h.store.sequence).to.equal(0);
  });

  it('a TSET over the entry limit is refused whole, naming the limits so the client can cut its batches', () => {
    const h = harness({ limits: { maxBatchEntries: 1 } });
    h.send({ command: 'TSET', reqId: 3, writes: [write('/a'), write('/b')] });
    expect(h.replies()).to.deep.equal([
      {
        command: 'TERROR',
        reqId: 3,
        reason: 'batch-too-large',
        message: 'batch-too-large: batch holds more than 1 entries',
        fit: { maxBatchEntries: 1, maxBatchBytes: DEFAULT_LIMITS.maxBatchBytes },
      },
    ]);
    expect(h.store.sequence).to.equal(0);
  });

  it('a TSET with one TTL out of range is refused whole (TERROR), nothing applied', () => {
    const h = harness();
    h.send({ command: 'TSET', reqId: 4, writes: [write('/a'), write('/b', 'ttl=999999999\n')] });
    expect(h.replies()).to.have.length(1);
    expect(h.replies()[0]).to.deep.include({ command: 'TERROR', reqId: 4, reason: 'ttl-out-of-range' });
    expect(h.drops).to.deep.equal(['ttl-out-of-range']);
    expect(h.store.sequence).to.equal(0);
  });

  it('a frame too many: a TSET is told (frame-count), a TSNAP or TPING is dropped in silence; both counted', () => {
    const h = harness();
    h.send([...encodeRequest({ command: 'TSET', reqId: 5, writes: [write('/a')] }), Buffer.alloc(0)]);
    h.send([...encodeRequest({ command: 'TSNAP', reqId: 6, subtree: '' }), Buffer.alloc(0)]);
    h.send([...encodeRequest({ command: 'TPING', reqId: 8 }), Buffer.alloc(0)]);
    expect(h.replies()).to.deep.equal([
      {
        command: 'TERROR',
        reqId: 5,
        reason: 'frame-count',
        message: 'frame-count: TSET has 4 frames, not 3',
      },
    ]);
    expect(h.drops).to.deep.equal(['frame-count', 'frame-count', 'frame-count']);
    expect(h.store.sequence).to.equal(0);
  });

  it('a subtree or prefix too long, or too many prefixes, is told why; an ICANHAZ? so sent gets silence', () => {
    const h = harness();
    h.send({ command: 'TSNAP', reqId: 1, subtree: '/123456789' });
    h.send({ command: 'TFOLLOW', reqId: 0, prefixes: ['/a', '/b', '/c'] });
    h.send(encodeIcanhaz('/123456789'));
    expect(h.replies()).to.deep.equal([
      {
        command: 'TERROR',
        reqId: 1,
        reason: 'subtree-too-long',
        message: 'subtree or prefix is 10 bytes, limit 8',
      },
      { command: 'TERROR', reqId: 0, reason: 'too-many-prefixes', message: '3 prefixes, limit 2' },
    ]);
    expect(h.drops).to.deep.equal(['subtree-too-long', 'too-many-prefixes', 'subtree-too-long']);
  });

  it('a node that does not sequence turns away TSET, TSNAP and TFOLLOW at once (TNOTACTIVE), never as a vote', () => {
    const h = harness({ active: false });
    h.send({ command: 'TSET', reqId: 1, writes: [write('/a')] });
    h.send({ command: 'TSNAP', reqId: 2, subtree: '' });
    h.send({ command: 'TFOLLOW', reqId: 0, prefixes: ['/'] });
    const notActive = (reqId: number) => ({
      command: 'TNOTACTIVE',
      reqId,
      state: 'PASSIVE',
      reason: 'not-active',
    });
    expect(h.replies()).to.deep.equal([notActive(1), notActive(2), notActive(0)]);
    expect(h.named('rejected').map((e) => e[1])).to.deep.equal(['TSET', 'TSNAP', 'TFOLLOW']);
    expect(h.state.admits, 'no vote').to.equal(0);
    expect(h.store.sequence).to.equal(0);
    // an active fenced by a meeting with another active says so
    const fenced = harness({ serving: false });
    fenced.send({ command: 'TSET', reqId: 1, writes: [write('/a')] });
    expect(fenced.replies()).to.deep.equal([{ ...notActive(1), reason: 'fenced' }]);
  });

  it('TVOTE asks the policy: refused is TNOTACTIVE with its reason, accepted is TPONG; TPING never votes', () => {
    const refused = harness({ active: false, admit: { accepted: false, reason: 'peer-alive' } });
    refused.send({ command: 'TPING', reqId: 1 });
    expect(refused.state.admits, 'TPING is no vote').to.equal(0);
    refused.send({ command: 'TVOTE', reqId: 2 });
    expect(refused.state.admits).to.equal(1);
    expect(refused.replies()).to.deep.equal([
      {
        command: 'TPONG',
        reqId: 1,
        state: 'PASSIVE',
        sequence: 0,
        term: 'T1',
        heartbeatMs: 1000,
        history: 'complete',
      },
      { command: 'TNOTACTIVE', reqId: 2, state: 'PASSIVE', reason: 'peer-alive' },
    ]);
    expect(refused.named('rejected').map((e) => e[1])).to.deep.equal(['TVOTE']);
    const accepted = harness();
    accepted.send({ command: 'TVOTE', reqId: 3 });
    expect(accepted.replies()).to.deep.include.members([
      {
        command: 'TPONG',
        reqId: 3,
        state: 'ACTIVE',
        sequence: 0,
        term: 'T1',
        heartbeatMs: 1000,
        history: 'complete',
      },
    ]);
  });

  it('ICANHAZ? is a vote: refused, the CHP client gets silence and the refusal is counted', () => {
    const h = harness({ active: false, admit: { accepted: false, reason: 'peer-alive' } });
    h.send(encodeIcanhaz(''));
    expect(h.state.admits).to.equal(1);
    expect(h.sent).to.deep.equal([]);
    expect(h.named('rejected').map((e) => e[1])).to.deep.equal(['ICANHAZ?']);
    // Refused or not, it tells the server a plain CHP client subscribed: KVPUBs go out for a while.
    expect(h.state.chpAsks).to.equal(1);
    h.send({ command: 'TPING', reqId: 1 });
    expect(h.state.chpAsks, 'only ICANHAZ? does').to.equal(1);
  });

  it('a TSNAP streams TSYNC then TSYNCEND; beyond the rate limit a request is dropped before it is admitted', async () => {
    const h = harness();
    h.store.commit({ key: '/a', uuid: UUID, properties: '', body: Buffer.from('x'), expiresAt: 0 }, 1);
    h.send({ command: 'TSNAP', reqId: 1, subtree: '' });
    for (let i = 0; i < 50 && h.sent.length < 2; i++) await turn();
    const [sync, end] = h.replies();
    expect(sync).to.deep.include({ command: 'TSYNC', reqId: 1 });
    expect(end).to.deep.equal({ command: 'TSYNCEND', reqId: 1, sequence: 1, term: 'T1', kind: 'snapshot' });
    h.send({ command: 'TSNAP', reqId: 2, subtree: '' });
    h.send({ command: 'TSNAP', reqId: 3, subtree: '' }); // the third in the same second: over the burst of 2
    expect(h.named('dropped').map((e) => e[2])).to.include('rate-limited');
  });

  it('write rights come before admission: a denied key is refused with its index even by a node that does not serve', () => {
    const bob = new Principal('bob', 'KEY', ['/pub/'], ['/pub/']);
    const h = harness({ active: false, guard: new Map([[ID.toString(), bob]]) });
    h.send({
      command: 'TSET',
      reqId: 1,
      writes: [write('/pub/a'), write('/secret'), write('/pub/b'), write('/x')],
    });
    expect(h.replies()).to.deep.equal([
      {
        command: 'TERROR',
        reqId: 1,
        reason: 'access-denied',
        message: 'client bob may not write "/secret"',
        refused: [1, 3],
      },
    ]);
    expect(h.named('denied')).to.have.length(2);
    expect(h.named('rejected'), 'never reached admission').to.deep.equal([]);
  });

  it('an unauthenticated connection is told so when its request id is readable, and counted', () => {
    const h = harness({ guard: new Map() });
    h.send({ command: 'TPING', reqId: 12 });
    h.send(encodeIcanhaz(''));
    expect(h.replies()).to.deep.equal([
      {
        command: 'TERROR',
        reqId: 12,
        reason: 'unauthenticated',
        message: 'this server requires a session token of a listed client key (docs/security.md)',
      },
    ]);
    expect(h.named('dropped').map((e) => e[2])).to.deep.equal(['unauthenticated', 'unauthenticated']);
  });

  describe('the generation guard: a snapshot prepared under one activity is not sent under another', () => {
    const snapshotOf = async (h: ReturnType<typeof harness>, reqId: number) => {
      for (let i = 0; i < 50 && !h.replies().some((r) => r.command === 'TSYNCEND'); i++) await turn();
      return h.replies().filter((r) => 'reqId' in r && r.reqId === reqId);
    };

    it('waiting for durability: served in the same generation, not after a demotion and promotion', async () => {
      for (const bump of [false, true]) {
        let durable!: (d: Durability) => void;
        const h = harness({
          publishableUpTo: 0,
          durable: () => new Promise((resolve) => (durable = resolve)),
        });
        h.store.commit({ key: '/a', uuid: UUID, properties: '', body: Buffer.from('x'), expiresAt: 0 }, 1);
        h.send({ command: 'TSNAP', reqId: 1, subtree: '' });
        await turn();
        expect(h.sent, 'nothing before the sequence is durable').to.deep.equal([]);
        if (bump) h.state.generation += 2; // demoted, then active again: still active, later term
        durable('replicated');
        const replies = await snapshotOf(h, 1);
        if (bump) expect(replies, 'not served under a later generation').to.deep.equal([]);
        else expect(replies.map((r) => r.command)).to.deep.equal(['TSYNC', 'TSYNCEND']);
      }
    });

    it('while the view is filtered across turns: not served once the generation changed', async () => {
      const h = harness();
      h.send({ command: 'TSNAP', reqId: 1, subtree: '' });
      h.state.generation++;
      expect(await snapshotOf(h, 1)).to.deep.equal([]);
      h.send(encodeIcanhaz(''));
      h.state.generation++;
      for (let i = 0; i < 10; i++) await turn();
      expect(h.sent, 'no KVSYNC or KTHXBAI either').to.deep.equal([]);
    });
  });
});
