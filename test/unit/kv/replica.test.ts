/**
 * The client protocol core (src/kv/replica.ts): holding updates during a sync, discarding
 * what the replica already has, gap detection, snapshot reconciliation and resume, and a model
 * test that the replica converges to the server's map (promise 4).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Replica, type Change, type ChangeList } from '../../../src/kv/replica.js';
import { listChanges } from '../../../src/kv/snapshot-load.js';
import { Store } from '../../../src/core/store.js';
import type { Entry } from '../../../src/kv/kvmap.js';
import type { PartitionedMap } from '../../../src/kv/partitioned.js';

function entry(key: string, sequence: number, body: string, properties = ''): Entry {
  return { key, sequence, uuid: '', properties, body: Buffer.from(body), expiresAt: 0 };
}
const del = (key: string, sequence: number) => entry(key, sequence, '');
const brief = (list: ChangeList) =>
  listChanges(list).map((c) => `${c.key}@${c.sequence}${c.deleted ? ' deleted' : `=${c.value!.toString()}`}`);

function contents(replica: Replica): string[] {
  return [...replica.values()].map((e) => `${e.key}=${e.body.toString()}`).sort();
}

/** A replica loaded from a snapshot of `entries` at `sequence`. */
function loaded(subtree: string, entries: Entry[], sequence: number): Replica {
  const replica = new Replica(subtree);
  replica.beginSync();
  replica.loadSnapshot(entries, sequence);
  return replica;
}

describe('Replica', () => {
  describe('syncing', () => {
    it('holds updates while a sync is in flight, then applies only those above the snapshot sequence, in order', () => {
      const replica = new Replica('');
      replica.beginSync();
      expect(replica.isSyncing).to.equal(true);
      for (const e of [
        entry('/a', 4, 'old-a'),
        entry('/b', 5, 'old-b'),
        entry('/a', 6, 'a6'),
        del('/b', 7),
        entry('/c', 8, 'c8'),
      ]) {
        expect(replica.offer(e)).to.deep.equal({ changes: [], gap: false }, 'held, not applied');
      }
      expect(replica.size).to.equal(0);
      const changes = replica.loadSnapshot([entry('/a', 4, 'old-a'), entry('/b', 5, 'old-b')], 5);
      expect(brief(changes)).to.deep.equal([
        '/a@4=old-a',
        '/b@5=old-b',
        '/a@6=a6',
        '/b@7 deleted',
        '/c@8=c8',
      ]);
      expect(replica.isSyncing).to.equal(false);
      expect(replica.sequence).to.equal(8);
      expect(contents(replica)).to.deep.equal(['/a=a6', '/c=c8']);
    });

    it('held updates at or below the snapshot sequence produce no events', () => {
      const replica = new Replica('');
      replica.beginSync();
      replica.offer(entry('/a', 3, 'x'));
      replica.offer(entry('/a', 5, 'y'));
      const changes = replica.loadSnapshot([entry('/a', 5, 'y')], 5);
      expect(brief(changes)).to.deep.equal(['/a@5=y']);
    });

    it('a resume releases held updates too and ends the sync', () => {
      const replica = loaded('', [entry('/a', 1, 'a')], 1);
      replica.beginSync();
      replica.offer(entry('/b', 3, 'b3'));
      const changes = replica.loadResume([entry('/a', 2, 'a2'), entry('/b', 3, 'b3')], 3);
      expect(brief(changes)).to.deep.equal(['/a@2=a2', '/b@3=b3']);
      expect(replica.isSyncing).to.equal(false);
      expect(replica.sequence).to.equal(3);
    });

    it('reports an overflow of held updates once, so the caller resumes again', () => {
      const replica = loaded('', [], 0);
      replica.beginSync();
      const LIMIT = 100_000;
      for (let i = 1; i <= LIMIT + 5; i++) replica.offer(entry('/k', i, 'v'));
      const changes = replica.loadResume([], 0);
      expect(changes).to.have.length(LIMIT, 'the held updates that fit are applied');
      expect(replica.sequence).to.equal(LIMIT);
      expect(replica.consumeOverflow()).to.equal(true);
      expect(replica.consumeOverflow()).to.equal(false);
    });

    it('ignores updates outside its subtree, held or not', () => {
      const replica = new Replica('/orders/');
      replica.beginSync();
      replica.offer(entry('/users/1', 2, 'u'));
      replica.loadSnapshot([entry('/users/9', 1, 'x'), entry('/orders/1', 1, 'o')], 1);
      expect(contents(replica)).to.deep.equal(['/orders/1=o']);
      expect(replica.offer(entry('/users/2', 3, 'u')).changes).to.deep.equal([]);
      expect(replica.get('/users/2')).to.equal(undefined);
    });
  });

  describe('following updates', () => {
    it('discards updates at or below its sequence: no duplicate change events', () => {
      const replica = loaded('', [entry('/a', 3, 'a')], 3);
      expect(replica.offer(entry('/a', 2, 'older')).changes).to.deep.equal([]);
      expect(replica.offer(entry('/a', 3, 'a')).changes).to.deep.equal([]);
      expect(brief(replica.offer(entry('/a', 4, 'new')).changes)).to.deep.equal(['/a@4=new']);
      expect(replica.offer(entry('/a', 4, 'new')).changes).to.deep.equal([]);
      expect(replica.get('/a')!.body.toString()).to.equal('new');
    });

    it('deleting an absent key yields no event but advances the sequence', () => {
      const replica = loaded('', [], 1);
      const result = replica.offer(del('/ghost', 2));
      expect(result).to.deep.equal({ changes: [], gap: false });
      expect(replica.sequence).to.equal(2);
    });

    it('deleting a present key yields one deleted change', () => {
      const replica = loaded('', [entry('/a', 1, 'a')], 1);
      const [c] = replica.offer(del('/a', 2)).changes;
      expect(c).to.deep.include({ key: '/a', value: undefined, sequence: 2, deleted: true });
      expect(replica.get('/a')).to.equal(undefined);
    });

    it("detects a gap when following the whole map ('' subtree)", () => {
      const replica = loaded('', [], 5);
      expect(replica.offer(entry('/a', 6, 'x')).gap).to.equal(false);
      expect(replica.offer(entry('/a', 8, 'y')).gap).to.equal(true);
    });

    it('twinstar-prev: sequences taken by events are no gap; a missed key change still is; the property is not kept', () => {
      const replica = loaded('', [], 5);
      // 6 and 7 were events of the bus (never published to key-value clients)
      const after = replica.offer(entry('/a', 8, 'x', 'ttl=60\ntwinstar-prev=5\n'));
      expect(after.gap).to.equal(false);
      expect(replica.get('/a')!.properties).to.equal('ttl=60\n');
      expect(replica.sequence).to.equal(8);
      // the key change before 12 was 10, which this replica never saw
      expect(replica.offer(entry('/b', 12, 'y', 'twinstar-prev=10\n')).gap).to.equal(true);
      expect(replica.get('/b'), 'held until the resume').to.equal(undefined);
      // a property merely named like it, elsewhere in a value, is left alone
      const other = loaded('', [], 1);
      expect(other.offer(entry('/c', 2, 'z', 'x-twinstar-prev=9\n')).gap).to.equal(false);
      expect(other.get('/c')!.properties).to.equal('x-twinstar-prev=9\n');
    });

    it('reports no gap for a prefix subtree, where other keys legitimately use the numbers', () => {
      const replica = loaded('/orders/', [], 5);
      expect(replica.offer(entry('/orders/1', 9, 'x')).gap).to.equal(false);
      expect(replica.offer(entry('/orders/1', 20, 'y')).gap).to.equal(false);
      expect(replica.sequence).to.equal(20);
    });

    it('heartbeat() reports missed updates only when following the whole map and not syncing', () => {
      const whole = loaded('', [], 5);
      expect(whole.heartbeat(5)).to.equal(false);
      expect(whole.heartbeat(4)).to.equal(false);
      expect(whole.heartbeat(6)).to.equal(true);
      whole.beginSync();
      expect(whole.heartbeat(9)).to.equal(false, 'a sync is already under way');
      expect(loaded('/orders/', [], 5).heartbeat(9)).to.equal(false);
      expect(new Replica('').heartbeat(9)).to.equal(false, 'no snapshot yet');
    });

    it('a gap does not lose the missed update: a resume from replica.sequence recovers it', () => {
      // The client reacts to `gap` by resuming from replica.sequence (client.ts resyncCurrent ->
      // sendSync). If offer() already moved the sequence past the hole, the resume starts after
      // the missing change and it is never delivered (promise 4: no update is skipped).
      const server = new Store({ replayLogSize: 100, dedupeSize: 100, dedupeMs: 60_000 });
      const published: Entry[] = [];
      for (const [key, body] of [
        ['/a', '1'],
        ['/b', '2'],
        ['/c', '3'],
      ] as const) {
        const r = server.commit({ key, uuid: '', properties: '', body: Buffer.from(body), expiresAt: 0 }, 0);
        if (!r.duplicate) published.push(r.entry);
      }
      const replica = loaded('', [], 0);
      replica.offer(published[0]!);
      const { gap } = replica.offer(published[2]!); // /b@2 was lost in transit
      expect(gap).to.equal(true);
      replica.beginSync();
      replica.loadResume(server.changesSince(replica.sequence) ?? [], server.sequence);
      expect(contents(replica)).to.deep.equal(['/a=1', '/b=2', '/c=3']);
    });
  });

  describe('loadSnapshot on an existing replica', () => {
    it('emits changes for changed and new keys and deletions for vanished keys, sorted by sequence', () => {
      const replica = loaded(
        '',
        [entry('/a', 1, 'a1'), entry('/b', 2, 'b2'), entry('/c', 3, 'c3'), entry('/p', 4, 'p', 'x=1\n')],
        4,
      );
      replica.beginSync();
      const changes = listChanges(
        replica.loadSnapshot(
          [entry('/a', 9, 'a9'), entry('/b', 2, 'b2'), entry('/d', 5, 'd5'), entry('/p', 7, 'p', 'x=2\n')],
          10,
        ),
      );
      expect(brief(changes)).to.deep.equal(['/d@5=d5', '/p@7=p', '/a@9=a9', '/c@10 deleted']);
      expect(changes.map((c) => c.sequence)).to.deep.equal(
        [...changes.map((c) => c.sequence)].sort((x, y) => x - y),
      );
      expect(contents(replica)).to.deep.equal(['/a=a9', '/b=b2', '/d=d5', '/p=p']);
      expect(replica.sequence).to.equal(10);
    });

    it('no stale key survives a snapshot from a server that is behind (failover)', () => {
      const replica = loaded('', [entry('/a', 1, 'a'), entry('/b', 8, 'b')], 8);
      replica.beginSync();
      const changes = replica.loadSnapshot([entry('/a', 1, 'a')], 6);
      expect(brief(changes)).to.deep.equal(['/b@6 deleted']);
      expect(contents(replica)).to.deep.equal(['/a=a']);
      expect(replica.sequence).to.equal(6);
    });

    it('tombstones in a snapshot are not stored and delete the key', () => {
      const replica = loaded('', [entry('/a', 1, 'a')], 1);
      replica.beginSync();
      const changes = replica.loadSnapshot([del('/a', 2)], 2);
      expect(brief(changes)).to.deep.equal(['/a@2 deleted']);
      expect(replica.size).to.equal(0);
    });
  });

  describe('loadResume', () => {
    it('applies only entries newer than the replica and moves to the resume sequence', () => {
      const replica = loaded('', [entry('/a', 5, 'a5')], 5);
      replica.beginSync();
      const changes = replica.loadResume(
        [entry('/a', 4, 'old'), entry('/a', 5, 'a5'), entry('/b', 6, 'b6'), del('/zz', 7)],
        9,
      );
      expect(brief(changes)).to.deep.equal(['/b@6=b6']);
      expect(replica.sequence).to.equal(9);
      expect(replica.get('/a')!.body.toString()).to.equal('a5');
    });

    it('never moves the sequence backwards', () => {
      const replica = loaded('', [], 9);
      replica.beginSync();
      replica.loadResume([], 3);
      expect(replica.sequence).to.equal(9);
    });

    it('a delete-prefix over 600,000 keys, in a resume or held during one, is 600,000 deletions (no stack overflow)', () => {
      const n = 600_000; // spreading that many arguments into push() overflows V8's stack
      const keys = Array.from({ length: n }, (_, i) => entry(`/p/${i}`, i + 1, 'v'));
      const wipe = entry('/p/', n + 1, '', 'twinstar-delete-prefix=1\n');
      const inResume = loaded('', keys, n);
      inResume.beginSync();
      const resumed = inResume.loadResume([wipe], n + 1);
      expect(resumed.length).to.equal(n);
      expect(resumed.every((c) => c.deleted && c.sequence === n + 1)).to.equal(true);
      expect(inResume.size).to.equal(0);
      const held = loaded('', keys, n);
      held.beginSync();
      held.offer(wipe);
      const released = held.loadResume([], n);
      expect(released.length).to.equal(n);
      expect(held.size).to.equal(0);
    });
  });

  describe('model: converges to the server map', () => {
    type Op =
      | { kind: 'set'; key: number; body: string }
      | { kind: 'del'; key: number }
      | { kind: 'hugz' }
      | { kind: 'deliver'; count: number; dup: boolean; swap: boolean }
      | { kind: 'resume' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('set' as const),
          key: fc.nat(4),
          body: fc.string({ minLength: 1, maxLength: 3 }),
        }),
      },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('del' as const), key: fc.nat(4) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('hugz' as const) }) },
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('deliver' as const),
          count: fc.integer({ min: 1, max: 3 }),
          dup: fc.boolean(),
          swap: fc.boolean(),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('resume' as const) }) },
    );

    /** What the publisher sent, in order: updates and HUGZ heartbeats. */
    type Published = { entry: Entry } | { hugz: number };

    /**
     * Drives a Replica the way src/client/client.ts does: published updates through offer(), a
     * resume from replica.sequence whenever offer() reports a gap or a HUGZ shows missed updates,
     * and a snapshot when the server's log no longer reaches back. The stream may deliver late
     * duplicates and (when allowed) swap neighbouring messages.
     */
    function run(ops: Op[], subtree: string, allowReorder: boolean, logSize: number): void {
      const server = new Store({ replayLogSize: logSize, dedupeSize: 100, dedupeMs: 60_000 });
      const replica = new Replica(subtree);
      const delivered: { sequence: number; resync: boolean }[] = [];
      const queue: Published[] = []; // published, not yet delivered
      const apply = (changes: Change[], resync = false) => {
        for (const c of changes) delivered.push({ sequence: c.sequence, resync });
      };
      const sync = () => {
        replica.beginSync();
        const since = replica.sequence >= 0 ? server.changesSince(replica.sequence, subtree) : undefined;
        // a message published earlier may arrive while the request is in flight
        receive(queue.splice(0, 1), false);
        const replacing = replica.size > 0;
        if (since === undefined)
          apply(
            listChanges(
              replica.loadSnapshot((server.map as PartitionedMap).snapshot(subtree), server.sequence),
            ),
            replacing,
          );
        else apply(replica.loadResume(since, server.sequence));
      };
      const receive = (messages: Published[], dup: boolean) => {
        for (const m of messages) {
          if ('hugz' in m) {
            if (replica.heartbeat(m.hugz)) sync();
            continue;
          }
          for (const copy of dup ? [m, m] : [m]) {
            const { changes, gap } = replica.offer(copy.entry);
            apply(changes);
            if (gap) sync();
          }
          if (dup) queue.push(m); // and a late duplicate
        }
      };
      sync();
      for (const op of ops) {
        if (op.kind === 'set' || op.kind === 'del') {
          const key = op.key % 2 === 0 ? `/s/${op.key}` : `/t/${op.key}`;
          const r = server.commit(
            {
              key,
              uuid: '',
              properties: '',
              body: Buffer.from(op.kind === 'set' ? op.body : ''),
              expiresAt: 0,
            },
            0,
          );
          if (!r.duplicate) queue.push({ entry: r.entry });
        } else if (op.kind === 'hugz') {
          queue.push({ hugz: server.sequence });
        } else if (op.kind === 'deliver') {
          if (allowReorder && op.swap && queue.length >= 2) [queue[0], queue[1]] = [queue[1]!, queue[0]!];
          receive(queue.splice(0, op.count), op.dup);
        } else {
          sync(); // a periodic resume
        }
      }
      // deliver everything still in flight, ending with a HUGZ
      queue.push({ hugz: server.sequence });
      while (queue.length > 0) receive(queue.splice(0, 1), false);
      const expected = (server.map as PartitionedMap)
        .snapshot(subtree)
        .map((e) => `${e.key}=${e.body.toString()}`)
        .sort();
      expect(contents(replica)).to.deep.equal(expected);
      // Each change reaches the application once: live event sequences strictly increase. A full
      // resync replacing a non-empty replica is the one exception: a snapshot does not say when a
      // vanished key was deleted, so its deletions carry the snapshot's own sequence and may share
      // it with the newest changed key (the client flags these events `resync`). Such a batch is
      // non-decreasing, and every event after it is newer than all of it.
      const events = delivered.map((d) => `${d.sequence}${d.resync ? 'r' : ''}`).join(',');
      for (let i = 1; i < delivered.length; i++) {
        const { sequence, resync } = delivered[i]!;
        const before = delivered[i - 1]!;
        if (resync && before.resync) expect(sequence, `events ${events}`).to.be.at.least(before.sequence);
        else expect(sequence, `events ${events}`).to.be.greaterThan(before.sequence);
      }
    }

    it('fast-check: duplicated deliveries plus resumes converge, each change delivered once', () => {
      fc.assert(
        fc.property(
          fc.array(opArb, { maxLength: 60 }),
          fc.constantFrom('', '/s/'),
          fc.constantFrom(3, 1000),
          (ops, subtree, logSize) => run(ops, subtree, false, logSize),
        ),
        { numRuns: Number(process.env.FC_RUNS ?? 300) },
      );
    });

    it('fast-check: duplicated and reordered deliveries plus resumes converge to the server map', () => {
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 60 }), fc.constantFrom(3, 1000), (ops, logSize) =>
          run(ops, '', true, logSize),
        ),
        { numRuns: Number(process.env.FC_RUNS ?? 300) },
      );
    });
  });
});
