/**
 * KV parity on the server (issue 17) through the router, on a fake context around a real store:
 * conditional writes, leases, deletes by prefix and watches from a sequence.
 */
import { expect } from 'chai';
import type { PackedEntry } from '../../../src/wire/packed.js';
import type { NativeReply } from '../../../src/wire/native.js';
import { harness, turn } from './router-harness.js';

let uuids = 0;
const w = (key: string, value: string, properties = ''): PackedEntry => ({
  key,
  sequence: 0,
  uuid: `u${String(++uuids).padStart(15, '0')}`,
  properties,
  body: Buffer.from(value),
  expiresAt: 0,
});

function kv() {
  const h = harness();
  let reqId = 1;
  const set = (...writes: PackedEntry[]) => h.send({ command: 'TSET', reqId: reqId++, writes });
  const lease = (op: 'grant' | 'keepalive' | 'revoke' | 'list', id = 0, ttlMs = 0) =>
    h.send({ command: 'TLEASE', reqId: reqId++, op, id, ttlMs });
  const last = (): NativeReply => h.replies().at(-1)!;
  return { ...h, set, lease, last };
}

describe('server: KV parity through the router (fake context, real store)', () => {
  it('if-seq: a write applies only at the sequence it names; a conflict refuses the batch and tells where the keys are', async () => {
    const h = kv();
    h.set(w('/k', 'one'));
    await turn();
    expect(h.last()).to.deep.include({ command: 'TACK', sequences: [1] });
    h.set(w('/k', 'two', 'if-seq=1\n'));
    await turn();
    expect(h.last()).to.deep.include({ command: 'TACK', sequences: [2] });
    expect(h.store.map.get('/k')!.properties, 'if-seq is not stored').to.equal('');
    h.set(w('/other', 'x'), w('/k', 'three', 'if-seq=1\n'), w('/new', 'n', 'if-seq=0\n'));
    await turn();
    expect(h.last()).to.deep.include({ command: 'TERROR', reason: 'conflict', refused: [1], current: [2] });
    expect(h.store.sequence, 'nothing of the batch applied').to.equal(2);
    h.set(w('/k', 'again', 'if-seq=0\n'));
    await turn();
    expect(h.last()).to.deep.include({ command: 'TERROR', reason: 'conflict', refused: [0], current: [2] });
    expect((h.last() as { message: string }).message).to.match(
      /is at sequence 2; the write wanted it to be absent/,
    );
  });

  it('a compare-and-set retried with its uuid after it applied gets its first acknowledgement, not a conflict', async () => {
    const h = kv();
    h.set(w('/c', '1'));
    await turn();
    const cas = w('/c', '2', 'if-seq=1\n');
    h.set(cas);
    await turn();
    expect(h.last()).to.deep.include({ command: 'TACK', sequences: [2] });
    h.set(cas); // the same uuid: a retry after a lost answer
    await turn();
    expect(h.last()).to.deep.include({ command: 'TACK', sequences: [2] });
    expect(h.store.sequence).to.equal(2);
  });

  it('a retried plain write gets its first sequence, and a retried lease write its first answer after the lease is gone', async () => {
    const h = kv();
    const plain = w('/p', 'x');
    h.set(plain);
    await turn();
    expect(h.last()).to.deep.include({ command: 'TACK', sequences: [1] });
    h.set(w('/q', 'y'), plain); // a retry in a batch with a new write: only the new one applies
    await turn();
    expect(h.last()).to.deep.include({ command: 'TACK', sequences: [2, 1] });
    expect(h.store.sequence).to.equal(2);

    h.lease('grant', 0, 5_000);
    await turn();
    const { id } = h.last() as Extract<NativeReply, { command: 'TLEASEOK' }>;
    const leased = w('/l', 'up', `lease=${id}\n`);
    h.set(leased);
    await turn();
    const first = h.last() as Extract<NativeReply, { command: 'TACK' }>;
    expect(first.command).to.equal('TACK');
    h.lease('revoke', id);
    await turn();
    expect(h.store.map.get('/l'), 'the lease took its key').to.equal(undefined);
    const applied = h.store.sequence;
    h.set(leased); // its answer was lost: the retry is not refused for the lease being gone
    await turn();
    expect(h.last()).to.deep.include({ command: 'TACK', sequences: first.sequences });
    expect(h.store.sequence, 'nothing applied twice').to.equal(applied);
  });

  it('leases: grant, attach keys, keep alive (no key change), revoke deletes the keys; an unknown lease is refused', async () => {
    const h = kv();
    h.lease('grant', 0, 5_000);
    await turn();
    const granted = h.last() as Extract<NativeReply, { command: 'TLEASEOK' }>;
    expect(granted).to.deep.include({ command: 'TLEASEOK', ttlMs: 5_000, remainingMs: 5_000 });
    const id = granted.id;
    h.set(w('/svc/a', 'up', `lease=${id}\n`), w('/svc/b', 'up', `lease=${id}\n`), w('/plain', 'x'));
    await turn();
    expect(h.store.leases.info(id, 1_000)).to.deep.include({ keys: 2 });
    const before = h.store.lastKeySequence;
    h.lease('keepalive', id);
    await turn();
    expect(h.last()).to.deep.include({ command: 'TLEASEOK', id, remainingMs: 5_000 });
    expect(h.store.lastKeySequence, 'a keep-alive is not a key change').to.equal(before);
    h.set(w('/svc/c', 'up', 'lease=999\n'));
    await turn();
    expect(h.last()).to.deep.include({ command: 'TERROR', reason: 'lease-not-found', refused: [0] });
    h.lease('revoke', id);
    await turn();
    expect(h.last()).to.deep.include({ command: 'TLEASEOK', id });
    expect([h.store.map.get('/svc/a'), h.store.map.get('/svc/b')]).to.deep.equal([undefined, undefined]);
    expect(h.store.map.get('/plain')).to.not.equal(undefined);
    expect(h.store.leases.has(id)).to.equal(false);
    h.lease('keepalive', id);
    expect(h.last()).to.deep.include({ command: 'TERROR', reason: 'lease-not-found' });
    h.lease('grant', 0, 10);
    expect(h.last()).to.deep.include({ command: 'TERROR', reason: 'invalid-ttl' });
  });

  it('an expired lease: the active deletes its keys, then the lease, as sequenced deletes', async () => {
    const h = kv();
    h.lease('grant', 7, 1_000);
    await turn();
    h.set(w('/e/1', 'x', 'lease=7\n'));
    await turn();
    expect(
      h.store.expire(1_500, () => '\0'.repeat(16)),
      'not yet',
    ).to.deep.equal([]);
    const gone = h.store.expire(2_001, () => '\0'.repeat(16)).map((e) => e.key);
    expect(gone).to.deep.equal(['/e/1', '\u0000l/7']);
    expect(h.store.leases.has(7)).to.equal(false);
  });

  it('delete-prefix: one change deletes every key under the prefix (never the bus’s), and a watch from before sees it', async () => {
    const h = kv();
    h.set(w('/p/a', '1'), w('/p/b/c', '2'), w('/q', '3'));
    await turn();
    h.set({ ...w('/p/', ''), properties: 'delete-prefix=1\n' });
    await turn();
    expect(h.last()).to.deep.include({ command: 'TACK', sequences: [4] });
    expect(h.store.keyCount).to.equal(1);
    expect(h.store.map.get('/q')).to.not.equal(undefined);
    const since = h.store.keyChangesSince(3, '/p/b/')!;
    expect(since.map((e) => [e.key, e.sequence])).to.deep.equal([['/p/', 4]]);
    h.send({ command: 'TWATCH', reqId: 50, prefix: '/p/', fromSequence: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const watch = h.replies().filter((r) => (r as { reqId?: number }).reqId === 50);
    expect(watch.map((r) => r.command)).to.deep.equal(['TSYNC', 'TSYNCEND']);
    const batch = watch[0] as Extract<NativeReply, { command: 'TSYNC' }>;
    expect(batch.batch.entries().map((e) => e.key)).to.deep.equal(['/p/b/c', '/p/']);
    expect(watch[1]).to.deep.include({ sequence: 4, kind: 'resume' });
  });

  it('TWATCH from a sequence the window no longer holds: history-unavailable naming the oldest', async () => {
    const h = kv();
    for (let i = 0; i < 120; i++) h.set(w(`/h/${i}`, 'x')); // the harness window holds 100
    await turn();
    h.send({ command: 'TWATCH', reqId: 1000, prefix: '/h/', fromSequence: 5 });
    const reply = h.replies().find((r) => (r as { reqId?: number }).reqId === 1000)!;
    expect(reply).to.deep.include({ command: 'TERROR', reason: 'history-unavailable' });
    expect((reply as { message: string }).message).to.match(/oldest 20$/);
  });
});
