/**
 * Conditional writes, deletes by prefix and revisions (issue 17) against the fake pair:
 * ConflictError with the current sequence, create on an existing key, a CAS retry across a
 * failover applied once, deletePrefix on the wire, getEntry's TTL from a sync and from a live
 * update, lastSequence, keys and count.
 */
import { expect } from 'chai';
import {
  ConflictError,
  InvalidArgumentError,
  LeaseNotFoundError,
  ServerRejectedError,
} from '../../../src/errors.js';
import { Native } from '../../../src/wire/index.js';
import { failover, readyOnA, closeClients, track } from './kv-harness.js';
import { rejection } from './rejection.js';

describe('client: conditional writes and revisions (issue 17)', () => {
  afterEach(closeClients);

  it('set with ifSequence applies at the current sequence and rejects otherwise with ConflictError(currentSequence)', async () => {
    const h = await readyOnA((a) => {
      a.set('/k', 'v1'); // 1
      a.set('/other', 'x'); // 2
    });
    expect(h.client.getEntry('/k')?.sequence).to.equal(1);
    const seq = await h.client.set('/k', 'v2', { ifSequence: 1 });
    expect(seq).to.equal(3);
    expect(h.a.map.get('/k')?.body.toString()).to.equal('v2');
    expect(h.a.map.get('/k')?.properties, 'if-seq is not stored').to.equal('');
    const error = await rejection(() => h.client.set('/k', 'v3', { ifSequence: 1 }));
    expect(error).to.be.instanceOf(ConflictError);
    expect(error).to.include({ code: 'ERR_CONFLICT', key: '/k', currentSequence: 3 });
    expect(h.a.map.get('/k')?.body.toString()).to.equal('v2');
    const sent = h.a.requestsOf(Native.SET).map((r) => r.writes[0]!.properties);
    expect(sent).to.deep.equal(['if-seq=1\n', 'if-seq=1\n']);
  });

  it('create fails on an existing key with its sequence, succeeds on an absent one (if-seq=0)', async () => {
    const h = await readyOnA((a) => a.set('/k', 'v1'));
    const error = await rejection(() => h.client.create('/k', 'again'));
    expect(error).to.be.instanceOf(ConflictError);
    expect((error as ConflictError).currentSequence).to.equal(1);
    expect(await h.client.create('/new', 'n')).to.equal(2);
    expect(h.client.getString('/new')).to.equal('n');
    expect(h.a.requestsOf(Native.SET).map((r) => r.writes[0]!.properties)).to.deep.equal([
      'if-seq=0\n',
      'if-seq=0\n',
    ]);
  });

  it('delete with ifSequence: a stale one is a ConflictError, the right one deletes', async () => {
    const h = await readyOnA((a) => {
      a.set('/k', 'v1');
      a.set('/k', 'v2');
    });
    const error = await rejection(() => h.client.delete('/k', { ifSequence: 1 }));
    expect(error).to.be.instanceOf(ConflictError);
    expect((error as ConflictError).currentSequence).to.equal(2);
    expect(await h.client.delete('/k', { ifSequence: 2 })).to.equal(3);
    expect(h.client.get('/k')).to.equal(undefined);
    expect(await rejection(() => h.client.delete('/k', { ifSequence: 0 }))).to.be.instanceOf(
      InvalidArgumentError,
    );
  });

  it('a conflict fails only the refused write: the other writes of its batch are sent again and applied', async () => {
    const h = await readyOnA((a) => a.set('/k', 'v1'));
    const plain = track(h.client.set('/p', 'plain'));
    const stale = track(h.client.set('/k', 'v2', { ifSequence: 7 }));
    await h.net.advance(100);
    expect(h.a.requestsOf(Native.SET)[0]!.writes, 'one batch of both').to.have.length(2);
    expect(stale.status).to.equal('rejected');
    expect(stale.error).to.be.instanceOf(ConflictError);
    expect(plain.status).to.equal('resolved');
    expect(h.a.map.get('/p')?.body.toString()).to.equal('plain');
    expect(h.a.changesOf('/p')).to.equal(1);
  });

  it('a write attached to a lease the server lacks rejects with LeaseNotFoundError', async () => {
    const h = await readyOnA();
    const error = await rejection(() => h.client.set('/k', 'v', { lease: 4242 }));
    expect(error).to.be.instanceOf(LeaseNotFoundError);
    expect((error as LeaseNotFoundError).leaseId).to.equal(4242);
    expect(await rejection(() => h.client.set('/k', 'v', { lease: -1 }))).to.be.instanceOf(
      InvalidArgumentError,
    );
  });

  it('a CAS write applied by an active that died before its TACK is sent again with its uuid and applied once', async () => {
    const h = await readyOnA((a) => a.set('/counter', '1'));
    h.a.holdAcks = true;
    const cas = track(h.client.set('/counter', '2', { ifSequence: 1 }));
    await h.net.advance(50);
    expect(h.a.heldAckCount, 'A applied it and holds the answer').to.equal(1);
    await failover(h);
    await h.net.advance(200);
    expect(cas.status, String(cas.error)).to.equal('resolved');
    expect(cas.value).to.equal(2);
    expect(h.b.changesOf('/counter'), 'applied once: the retry was de-duplicated').to.equal(2);
    const uuids = [...h.a.writeUuids, ...h.b.writeUuids];
    expect(new Set(uuids).size, 'the same uuid went to both').to.equal(1);
    expect(h.b.requestsOf(Native.SET)).to.have.length(1);
  });

  it('deletePrefix sends one TSET write (key = prefix, empty body, delete-prefix=1) and resolves with its sequence', async () => {
    const h = await readyOnA((a) => {
      a.set('/p/1', 'a');
      a.set('/p/2', 'b');
      a.set('/q', 'c');
    });
    const seq = await h.client.deletePrefix('/p/');
    expect(seq).to.equal(4);
    const [request] = h.a.requestsOf(Native.SET);
    expect(request!.writes).to.have.length(1);
    expect(request!.writes[0]).to.include({ key: '/p/', properties: 'delete-prefix=1\n' });
    expect(request!.writes[0]!.body.length).to.equal(0);
    expect([...h.a.map.keys()]).to.deep.equal(['/q']);
    expect(h.client.lastSequence(), 'the replica applied the change').to.equal(4);
    expect(await rejection(() => h.client.deletePrefix(''))).to.be.instanceOf(InvalidArgumentError);
  });

  it('getEntry: value, sequence, lease, and the TTL left from a sync (expiresAt) and from a live update (ttl=)', async () => {
    let deadline = 0;
    const h = await readyOnA((a) => {
      const e = a.set('/synced', 's');
      deadline = a.net.clock.now() + 5000;
      a.map.set('/synced', { ...e, expiresAt: deadline });
    });
    const synced = h.client.getEntry('/synced')!;
    expect(synced.value.toString()).to.equal('s');
    expect(synced.sequence).to.equal(1);
    expect(synced.ttlRemainingMs).to.equal(deadline - h.net.clock.now());
    h.a.commit({
      key: '/live',
      uuid: 'u'.repeat(16),
      properties: 'ttl=10\nlease=7\n',
      body: Buffer.from('l'),
    });
    await h.net.settle();
    const receivedAt = h.net.clock.now();
    await h.net.advance(300);
    const live = h.client.getEntry('/live')!;
    expect(live).to.deep.include({ sequence: 2, lease: 7 });
    expect(live.ttlRemainingMs).to.equal(10_000 - (h.net.clock.now() - receivedAt));
    const update = h.updates.find((u) => u.key === '/live')!;
    expect(update.ttlRemainingMs).to.equal(10_000);
    expect(h.client.getEntry('/missing')).to.equal(undefined);
    h.a.set('/plain', 'p');
    await h.net.advance(50);
    expect(h.client.getEntry('/plain')!.ttlRemainingMs).to.equal(undefined);
    expect(h.client.getEntry('/plain')!).to.not.have.property('lease');
  });

  it("in plain CHP mode conditions, leases, deletes by prefix and watch from a sequence are refused 'plain-chp', nothing sent", async () => {
    const h = await readyOnA((a) => a.set('/k', 'v'), { mode: 'chp' });
    expect(await h.client.set('/plain', 'ok')).to.equal(0);
    await h.net.advance(50);
    expect(
      h.a.collected.map((m) => m.key),
      'the collector works',
    ).to.deep.equal(['/plain']);
    for (const call of [
      () => h.client.set('/k', 'x', { ifSequence: 1 }),
      () => h.client.create('/c', 'x'),
      () => h.client.delete('/k', { ifSequence: 1 }),
      () => h.client.deletePrefix('/'),
      () => h.client.lease({ ttlMs: 1000 }),
    ]) {
      const error = await rejection(call);
      expect(error).to.be.instanceOf(ServerRejectedError);
      expect(error).to.include({ reason: 'plain-chp' });
    }
    const it = h.client.watch('/', { fromSequence: 0 });
    expect(await it.next().catch((e: unknown) => e)).to.be.instanceOf(ServerRejectedError);
    await h.net.advance(50);
    expect(h.a.collected.map((m) => m.key)).to.deep.equal(['/plain']);
    expect(h.a.requests.filter((r) => r.command.startsWith('T'))).to.deep.equal([]);
  });

  it('lastSequence, keys and count come from the replica, within the subtree', async () => {
    const h = await readyOnA(
      (a) => {
        a.set('/s/b', '1');
        a.set('/s/a', '2');
        a.set('/t/x', '3');
        a.set('/s/sub/c', '4');
      },
      { subtree: '/s/' },
    );
    expect(h.client.lastSequence()).to.equal(4);
    expect(h.client.keys()).to.deep.equal(['/s/a', '/s/b', '/s/sub/c']);
    expect(h.client.keys('/s/sub/')).to.deep.equal(['/s/sub/c']);
    expect(h.client.count()).to.equal(3);
    expect(h.client.count('/s/zz')).to.equal(0);
    expect(() => h.client.keys('/t/')).to.throw(InvalidArgumentError);
    expect(() => h.client.count('/')).to.throw(InvalidArgumentError);
  });
});
