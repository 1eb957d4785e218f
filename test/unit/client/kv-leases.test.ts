/**
 * Leases (issue 17; src/client/leases.ts) against the fake pair: grant, a keep-alive every ttl/3,
 * 'lost' on lease-not-found and after a whole TTL unanswered, revoke, keys attached with `set`,
 * and keep-alives going to the new active after a failover.
 */
import { expect } from 'chai';
import type { Lease } from '../../../src/client/leases.js';
import { InvalidArgumentError, LeaseNotFoundError } from '../../../src/errors.js';
import { Native } from '../../../src/wire/index.js';
import { B, closeClients, failover, readyOnA, track, type KvHarness } from './kv-harness.js';
import { rejection } from './rejection.js';

const TTL = 3000;

async function granted(h: KvHarness): Promise<{ lease: Lease; lost: string[] }> {
  const lease = await h.client.lease({ ttlMs: TTL });
  const lost: string[] = [];
  lease.on('lost', (reason) => lost.push(reason));
  return { lease, lost };
}

describe('client: leases (issue 17)', () => {
  afterEach(closeClients);

  it('grant returns a Lease with the id the server chose, its TTL and the time left', async () => {
    const h = await readyOnA();
    const { lease } = await granted(h);
    expect(lease.id).to.equal(100);
    expect(lease.ttlMs).to.equal(TTL);
    expect(lease.ttlRemainingMs()).to.equal(TTL);
    await h.net.advance(200);
    expect(lease.ttlRemainingMs()).to.be.within(TTL - 400, TTL - 200); // a keep-alive may not be due yet
    expect(h.a.kv.leaseRequests[0]).to.include({ op: 'grant', id: 0 });
    expect(await rejection(() => h.client.lease({ ttlMs: 999 }))).to.be.instanceOf(InvalidArgumentError);
    lease.close();
  });

  it('sends a keep-alive every ttl/3 while open, none after close()', async () => {
    const h = await readyOnA();
    const { lease, lost } = await granted(h);
    await h.net.advance(3 * TTL);
    const at = h.a.kv.keepAlives.map((k) => k.at);
    expect(at.length).to.be.within(8, 10);
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).to.be.within(TTL / 3, TTL / 3 + 100);
    expect(h.a.kv.keepAlives.every((k) => k.id === lease.id)).to.equal(true);
    expect(lost).to.deep.equal([]);
    expect(h.updates, 'a keep-alive is no key change').to.deep.equal([]);
    lease.close();
    const before = h.a.kv.keepAlives.length;
    await h.net.advance(2 * TTL);
    expect(h.a.kv.keepAlives.length).to.equal(before);
    expect(lost).to.deep.equal([]);
  });

  it("emits 'lost' once when a keep-alive is answered lease-not-found, and stops", async () => {
    const h = await readyOnA();
    const { lease, lost } = await granted(h);
    await h.net.advance(TTL / 3 + 100);
    expect(h.a.kv.keepAlives, 'keep-alives are answered').to.have.length(1);
    h.a.kv.expire(lease.id);
    await h.net.advance(TTL / 3 + 100);
    expect(lost).to.deep.equal(['not-found']);
    expect(lease.alive).to.equal(false);
    const sent = h.a.kv.keepAlives.length;
    await h.net.advance(TTL);
    expect(h.a.kv.keepAlives.length).to.equal(sent);
    expect(lost).to.deep.equal(['not-found']);
  });

  it("emits 'lost' when no keep-alive was answered for a whole TTL", async () => {
    const h = await readyOnA();
    const { lease, lost } = await granted(h);
    await h.net.advance(TTL / 3 + 100);
    const answered = h.a.replies.filter((r) => r.command === Native.LEASE_OK).length;
    expect(answered, 'the grant and one keep-alive answered').to.equal(2);
    h.a.loseRequests(Native.LEASE, 100);
    await h.net.advance(TTL / 2);
    expect(lost).to.deep.equal([]);
    await h.net.advance(TTL);
    expect(lost).to.deep.equal(['unanswered']);
    expect(lease.ttlRemainingMs()).to.equal(0);
  });

  it('revoke deletes the attached keys and stops the keep-alive; a second revoke is LeaseNotFoundError', async () => {
    const h = await readyOnA();
    const { lease, lost } = await granted(h);
    await h.client.set('/svc/1', 'up', { lease });
    await h.client.set('/svc/2', 'up', { lease: lease.id });
    expect(h.a.map.get('/svc/1')?.properties).to.equal(`lease=${lease.id}\n`);
    expect(h.client.getEntry('/svc/2')?.lease).to.equal(lease.id);
    expect(await h.client.leases.list()).to.deep.equal([
      { id: lease.id, ttlMs: TTL, remainingMs: TTL, keys: 2 },
    ]);
    await lease.revoke();
    await h.net.advance(50);
    expect(h.client.keys('/svc/')).to.deep.equal([]);
    const sent = h.a.kv.keepAlives.length;
    await h.net.advance(TTL);
    expect(h.a.kv.keepAlives.length).to.equal(sent);
    expect(lost).to.deep.equal([]);
    const error = await rejection(() => h.client.leases.revoke(lease.id));
    expect(error).to.be.instanceOf(LeaseNotFoundError);
    expect(await h.client.leases.list()).to.deep.equal([]);
  });

  it('keepAliveOnce by id answers the TTL and time left', async () => {
    const h = await readyOnA();
    const { lease } = await granted(h);
    lease.close();
    await h.net.advance(500);
    expect(await h.client.leases.keepAliveOnce(lease.id)).to.deep.equal({
      id: lease.id,
      ttlMs: TTL,
      remainingMs: TTL,
    });
    expect(await rejection(() => h.client.leases.keepAliveOnce(999))).to.be.instanceOf(LeaseNotFoundError);
  });

  it('after a failover the keep-alive goes at once to the new active, and the lease is not lost', async () => {
    const h = await readyOnA();
    const { lease, lost } = await granted(h);
    await h.net.advance(TTL / 3 + 100);
    expect(h.a.kv.keepAlives.length).to.equal(1);
    const readyAt: number[] = [];
    h.client.on('ready', () => readyAt.push(h.net.clock.now()));
    await failover(h);
    await h.net.advance(50);
    const onB = h.b.kv.keepAlives;
    expect(onB.length, 'a keep-alive reached B').to.be.at.least(1);
    expect(onB[0]!.id).to.equal(lease.id);
    expect(readyAt).to.have.length(1);
    expect(onB[0]!.at - readyAt[0]!, 'sent once ready on B, not a period later').to.be.below(60);
    await h.net.advance(2 * TTL);
    expect(h.b.kv.keepAlives.length).to.be.at.least(6);
    expect(lost).to.deep.equal([]);
    expect(h.client.server).to.equal(B);
    lease.close();
  });

  it('a grant asked of an active that dies before answering is asked again of the new one', async () => {
    const h = await readyOnA();
    h.a.loseRequests(Native.LEASE, 1);
    const grant = track(h.client.lease({ ttlMs: TTL }));
    await h.net.advance(50);
    expect(grant.status).to.equal('pending');
    await failover(h);
    await h.net.advance(100);
    expect(grant.status, String(grant.error)).to.equal('resolved');
    expect(h.b.kv.leaseRequests.filter((r) => r.op === 'grant')).to.have.length(1);
    (grant.value as Lease).close();
  });
});
