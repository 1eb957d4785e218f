/**
 * Read-your-writes (src/client/read-your-writes.ts and its use in client.ts): once set() or
 * delete() resolves, the client's own get() sees the write or something newer. The fake server
 * can hold its published updates back, so the acknowledgement overtakes the update, the race a
 * real pair runs on every write (acknowledgements on the snapshot socket, updates on the SUB).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Client, type ClientOptions } from '../../../src/client/client.js';
import { AppliedWaiters } from '../../../src/client/read-your-writes.js';
import { Native } from '../../../src/wire/index.js';
import { ClosedError, TimeoutError } from '../../../src/errors.js';
import { FakeNetwork, type FakeServer } from './fake-server.js';

const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';
const SERVER_TIMEOUT = 500;

interface Outcome {
  status: 'pending' | 'resolved' | 'rejected';
  seq?: number;
  error?: unknown;
  /** what get() returned at the moment the write resolved */
  seenAtResolve?: string | undefined;
}

const clients: Client[] = [];

async function readyOnA(
  options: Partial<ClientOptions> = {},
): Promise<{ net: FakeNetwork; a: FakeServer; b: FakeServer; client: Client }> {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE' });
  const b = net.addServer(B, { state: 'PASSIVE' });
  a.set('/k1', 'v1');
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: SERVER_TIMEOUT,
    mode: 'native', // 'auto' waits for an advertisement (tests of its own)
    transport: net.transport,
    clock: net.clock,
    ...options,
  });
  clients.push(client);
  await net.settle();
  await client.ready(1000);
  await net.advance(200);
  expect(client.server).to.equal(A);
  return { net, a, b, client };
}

/** Writes and records what get() returned when the write resolved. */
function write(client: Client, key: string, value: string | undefined): Outcome {
  const o: Outcome = { status: 'pending' };
  const p = value === undefined ? client.delete(key) : client.set(key, value);
  p.then(
    (seq) => {
      o.status = 'resolved';
      o.seq = seq;
      o.seenAtResolve = client.getString(key);
    },
    (error: unknown) => {
      o.status = 'rejected';
      o.error = error;
    },
  );
  return o;
}

describe('Client: read-your-writes', function () {
  this.timeout(10_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  it('a write acknowledged before its update arrives resolves only once the replica has applied it', async () => {
    const { net, a, client } = await readyOnA();
    a.holdPublished();
    const w = write(client, '/k1', 'new');
    await net.settle();
    expect(a.heldCount, 'the update is held back').to.equal(1);
    expect(
      a.replies.some((r) => r.command === Native.ACK),
      'the ack went out',
    ).to.equal(true);
    expect(w.status, 'resolved before the replica had it').to.equal('pending');
    a.releasePublished();
    await net.settle();
    expect(w).to.deep.include({ status: 'resolved', seq: 2, seenAtResolve: 'new' });
  });

  it('a delete resolves once get() no longer sees the key', async () => {
    const { net, a, client } = await readyOnA();
    a.holdPublished();
    const w = write(client, '/k1', undefined);
    await net.settle();
    expect(w.status).to.equal('pending');
    a.releasePublished();
    await net.settle();
    expect(w).to.deep.include({ status: 'resolved', seq: 2, seenAtResolve: undefined });
  });

  it('when the update is lost (subtree client: no gap to see), a resume after requestTimeoutMs brings it and the write resolves', async () => {
    const { net, a, client } = await readyOnA({ subtree: '/', requestTimeoutMs: 300 });
    a.dropPublished(1);
    const w = write(client, '/k2', 'x');
    await net.settle();
    expect(w.status).to.equal('pending');
    const resumes = a.requestsOf(Native.RESUME).length;
    await net.advance(500);
    expect(a.requestsOf(Native.RESUME).length, 'a resume').to.be.greaterThan(resumes);
    expect(w).to.deep.include({ status: 'resolved', seq: 2, seenAtResolve: 'x' });
  });

  it('across a failover: the new active has the write, the resync brings it, the write resolves with its sequence', async () => {
    const { net, a, b, client } = await readyOnA();
    a.holdPublished();
    const w = write(client, '/k3', 'kept');
    await net.settle();
    expect(w.status).to.equal('pending');
    b.copyFrom(a); // the passive holds the write (it was acknowledged)
    a.setState('DEAD');
    b.promote();
    await net.advance(SERVER_TIMEOUT + 300);
    expect(client.server).to.equal(B);
    expect(w).to.deep.include({ status: 'resolved', seq: 2, seenAtResolve: 'kept' });
  });

  it('a write whose sequence the replica never reaches rejects with TimeoutError at writeTimeoutMs (no promise hangs)', async () => {
    const { net, a, client } = await readyOnA({ writeTimeoutMs: 1500 });
    a.holdPublished();
    const w = write(client, '/k4', 'lost');
    await net.settle();
    expect(w.status).to.equal('pending');
    a.setState('SILENT'); // acknowledged, then the pair is gone: no active to resync from
    await net.advance(1000);
    expect(w.status).to.equal('pending');
    await net.advance(700);
    expect(w.status).to.equal('rejected');
    expect(w.error).to.be.instanceOf(TimeoutError);
    expect(String(w.error)).to.contain('sequence 2');
    expect(client.pendingWrites).to.equal(0);
  });

  it('close() rejects writes still waiting for the replica with ClosedError', async () => {
    const { net, a, client } = await readyOnA();
    a.holdPublished();
    const w = write(client, '/k5', 'v');
    await net.settle();
    expect(w.status).to.equal('pending');
    await client.close();
    await net.settle();
    expect(w.status).to.equal('rejected');
    expect(w.error).to.be.instanceOf(ClosedError);
  });

  it('many writes whose updates come back in a shuffled order each resolve once the replica has them', async () => {
    const { net, a, client } = await readyOnA();
    a.holdPublished();
    const writes = Array.from({ length: 50 }, (_, i) => write(client, `/m${i}`, `v${i}`));
    await net.settle();
    expect(writes.every((w) => w.status === 'pending')).to.equal(true);
    // Released in reverse: the subtree '' replica holds them after the gap and resumes.
    a.releasePublished(writes.map((_, i) => writes.length - 1 - i));
    await net.advance(300);
    for (const [i, w] of writes.entries())
      expect(w, `write ${i}`).to.deep.include({ status: 'resolved', seenAtResolve: `v${i}` });
  });
});

describe('AppliedWaiters', () => {
  it('releases exactly the waiters at or below the applied sequence, lowest first, whatever the order of adding', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(1000), { maxLength: 200 }),
        fc.array(fc.nat(1100), { maxLength: 10 }),
        (seqs, steps) => {
          const waiters = new AppliedWaiters<number>();
          seqs.forEach((s, i) => waiters.add(s, Infinity, i, 0));
          const released: number[] = [];
          let applied = -1;
          for (const step of [...steps].sort((x, y) => x - y)) {
            applied = step;
            waiters.release(applied, 0, (_item, seq) => released.push(seq));
          }
          const expected = seqs.filter((s) => s <= applied).sort((x, y) => x - y);
          expect(released).to.deep.equal(expected);
          expect(waiters.size).to.equal(seqs.length - expected.length);
          expect(waiters.lowest).to.equal(Math.min(...seqs.filter((s) => s > applied), Infinity));
        },
      ),
    );
  });

  it('expires exactly the waiters whose deadline has come, and keeps the rest in order', () => {
    const waiters = new AppliedWaiters<string>();
    waiters.add(5, 100, 'a', 0);
    waiters.add(3, 300, 'b', 0);
    waiters.add(9, 50, 'c', 0);
    waiters.add(1, 200, 'd', 0);
    const expired: string[] = [];
    waiters.expire(40, (item) => expired.push(item));
    expect(expired).to.deep.equal([]);
    waiters.expire(150, (item) => expired.push(item));
    expect(expired.sort()).to.deep.equal(['a', 'c']);
    const released: string[] = [];
    waiters.release(10, 0, (item) => released.push(item));
    expect(released).to.deep.equal(['d', 'b']);
    expect(waiters.size).to.equal(0);
  });

  it('says it is stalled once per period while writes wait with none released', () => {
    const waiters = new AppliedWaiters<string>();
    expect(waiters.stalled(1000, 100), 'nothing waits').to.equal(false);
    waiters.add(5, Infinity, 'a', 1000);
    expect(waiters.stalled(1100, 100)).to.equal(false);
    expect(waiters.stalled(1101, 100)).to.equal(true);
    expect(waiters.stalled(1150, 100), 'not again at once').to.equal(false);
    waiters.release(4, 1190, () => undefined); // nothing released: no progress
    expect(waiters.stalled(1202, 100)).to.equal(true);
    waiters.add(3, Infinity, 'b', 1210);
    waiters.release(3, 1250, () => undefined); // 'b' released: progress
    expect(waiters.stalled(1340, 100)).to.equal(false);
    expect(waiters.stalled(1351, 100)).to.equal(true);
  });
});
