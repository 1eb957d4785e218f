/**
 * Replication (src/pair/replication-source.ts and replication-sink.ts) with the attachment rule
 * (src/pair/attachment.ts), on a fake clock and a fake peer link: an active store and a passive
 * store, no sockets. Resume, snapshot resync, acknowledgement and detaching are all driven step by
 * step; the only waiting is for replication's own next-turn batching (`turns`).
 */
import { expect } from 'chai';
import { ReplicationSource } from '../../../src/pair/replication-source.js';
import { ReplicationSink } from '../../../src/pair/replication-sink.js';
import { attachment } from '../../../src/pair/attachment.js';
import { Store, type Storage } from '../../../src/core/index.js';
import { Timeline } from '../../../src/core/timeline.js';
import { DEFAULT_LIMITS, chunkBytes, type Durability, type RelayedAck } from '../../../src/wire/index.js';
import type { PartitionedMap } from '../../../src/kv/index.js';
import { GatedStorage } from './gated-storage.js';
import type { CloneServer } from '../../../src/server/index.js';
import { FakeClock, FakeWire, turns } from './harness.js';

const FAILOVER = 250;
const STORE = { replayLogSize: 1000, dedupeSize: 1000, dedupeMs: 60_000 };

let uuids = 0;
function uuid(): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0xfeed0000, 0);
  b.writeUInt32BE(++uuids, 12);
  return b.toString('latin1');
}

class Replication {
  readonly clock = new FakeClock();
  readonly wire = new FakeWire();
  readonly active = new Store(STORE);
  readonly passive: Store;
  readonly activeTimeline = new Timeline();
  readonly passiveTimeline = new Timeline();
  readonly source: ReplicationSource;
  readonly sink: ReplicationSink;
  /** the TACKs the passive sent its clients on the active's behalf (TRRELAY) */
  readonly answered: RelayedAck[] = [];
  catchUpTo: number | undefined;

  constructor(passiveStorage?: Storage) {
    this.passive = new Store(STORE, passiveStorage);
    this.activeTimeline.open({ term: 'term-1', epoch: 1, startSequence: 1 });
    this.source = new ReplicationSource({
      channel: this.wire.end(0),
      store: this.active,
      timeline: this.activeTimeline,
      snapshotChunk: 4,
      chunkBytes: chunkBytes(DEFAULT_LIMITS),
      now: this.clock.now,
    });
    // the sink needs of the clone server only its store and the replicated apply
    const passive = this.passive;
    const server = { store: passive, applyReplicated: (e, now) => passive.replicate(e, now) } as Pick<
      CloneServer,
      'store' | 'applyReplicated'
    >;
    this.sink = new ReplicationSink({
      channel: this.wire.end(1),
      server: server as CloneServer,
      timeline: this.passiveTimeline,
      retryMs: FAILOVER,
      now: this.clock.now,
      onApplied: () => undefined,
      onMalformed: (error) => {
        throw error;
      },
      limits: DEFAULT_LIMITS,
      answer: (ack) => this.answered.push(ack),
    });
    this.wire.receiver(0, (msg) => {
      if (msg.type === 'request') this.source.onRequest(msg.streamId, msg.fromSequence, msg.term);
      if (msg.type === 'ack') this.source.onAck(msg.sequence, msg.term);
    });
    this.wire.receiver(1, (msg) => {
      if (msg.type === 'data') this.sink.onData(msg.batch, msg.term, msg.acks);
      if (msg.type === 'snapshot-chunk') this.sink.onSnapshotChunk(msg.streamId, msg.batch);
      if (msg.type === 'snapshot-end') this.sink.onSnapshotEnd(msg.streamId, msg.sequence, msg.timeline);
      if (msg.type === 'resume-end') this.sink.onResumeEnd(msg.streamId, msg.timeline);
      if (msg.type === 'relay') this.sink.onRelay(msg.term, msg.acks);
    });
    this.source.start();
  }

  /** The active commits `n` changes, as the clone server does (store, then replication). */
  commit(n: number, prefix = 'k'): number {
    for (let i = 0; i < n; i++) {
      const key = `${prefix}${this.active.sequence + 1}`;
      const change = { key, uuid: uuid(), properties: '', body: Buffer.from(key), expiresAt: 0 };
      const result = this.active.commit(change, this.clock.now());
      if (result.duplicate) throw new Error('unexpected duplicate');
      this.source.onChange(result.entry);
    }
    return this.active.sequence;
  }

  /** Run replication until it is quiet: next-turn flushes and acks, then delivery, bounded. */
  async settle(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      await turns(2);
      if (this.wire.deliver() === 0) {
        await turns(2);
        if (this.wire.deliver() === 0) return;
      }
    }
    throw new Error('replication never went quiet');
  }

  /** The active's periodic attachment decision, with a passive heard just now and synced. */
  attach(
    peer: { state: 'PASSIVE'; synced: boolean } | undefined = { state: 'PASSIVE', synced: this.sink.synced },
  ) {
    const now = this.clock.now();
    const decision = attachment({
      now,
      failoverMs: FAILOVER,
      sequence: this.active.sequence,
      acked: this.source.acked,
      attached: this.source.attached,
      oldestWaitMs: this.source.oldestWaitMs(now),
      catchUpTo: this.catchUpTo,
      fenced: false,
      relearning: false,
      peer,
      peerExpiresAt: now + FAILOVER,
    });
    if (decision.hold) return decision;
    this.catchUpTo = decision.catchUpTo;
    this.source.setAttached(decision.attach);
    return decision;
  }

  entries(store: Store): [string, number][] {
    return (store.map as PartitionedMap).snapshot('').map((e) => [e.key, e.sequence]);
  }

  sentBy(end: 0 | 1, since: number): string[] {
    return this.wire.sent[end]!.slice(since).map((m) => m.type);
  }
}

function track(p: Promise<Durability>): { result: Durability | Error | undefined } {
  const box: { result: Durability | Error | undefined } = { result: undefined };
  p.then(
    (d) => (box.result = d),
    (e: Error) => (box.result = e),
  );
  return box;
}

describe('replication with the attachment rule (fake clock, fake peer link)', () => {
  it("a passive acknowledges a change only once its own storage flushed it (under fsync always, after the passive's fsync)", async () => {
    const storage = new GatedStorage(STORE);
    const r = new Replication(storage);
    r.commit(3);
    r.sink.start();
    await r.settle();
    expect(r.attach()).to.deep.include({ attach: true });
    const acksBefore = r.wire.sent[1]!.filter((m) => m.type === 'ack').length;
    expect(acksBefore, 'the passive acks what its storage flushed').to.be.above(0);
    storage.hold();
    const seq = r.commit(1);
    const acked = track(r.source.durable(seq));
    await r.settle();
    expect(r.passive.sequence, 'the passive applied the change').to.equal(seq);
    expect(r.sentBy(1, 0).filter((t) => t === 'ack')).to.have.length(acksBefore);
    expect(acked.result, 'not acknowledged before the passive flushed it').to.equal(undefined);
    storage.release();
    await r.settle();
    expect(acked.result).to.equal('replicated');
    expect(r.source.acked).to.equal(seq);
    // A passive whose storage failed never acknowledges again.
    storage.hold();
    const failed = track(r.source.durable(r.commit(1)));
    storage.reject(new Error('disk full'));
    await r.settle();
    expect(failed.result).to.equal(undefined);
    expect(r.passive.failed?.message).to.equal('disk full');
  });

  it('a passive syncs, follows in order and acks; a write attached to it is acknowledged only once it holds it', async () => {
    const r = new Replication();
    r.commit(6);
    r.sink.start();
    await r.settle();
    expect(r.sink.synced).to.equal(true);
    expect(r.passive.sequence).to.equal(6);
    expect(r.attach()).to.deep.include({ attach: true });
    const seq = r.commit(1);
    const acked = track(r.source.durable(seq));
    await turns(2);
    expect(acked.result, 'not acknowledged before the passive holds it').to.equal(undefined);
    await r.settle();
    expect(acked.result).to.equal('replicated');
    expect(r.source.acked).to.equal(7);
    expect(r.entries(r.passive)).to.deep.equal(r.entries(r.active));
    expect(r.source.caughtUp, 'the pair is no longer degraded').to.equal(true);
  });

  it('after a lost stretch of the stream the passive resumes from its own sequence, not a snapshot', async () => {
    const r = new Replication();
    r.sink.start();
    r.commit(3);
    await r.settle();
    expect(r.passive.sequence).to.equal(3);
    r.wire.cut();
    r.commit(5);
    await turns(2); // the batch went out and was lost
    r.wire.heal();
    const since = r.wire.sent[0]!.length;
    r.commit(1); // starts after a gap: the passive asks for what it lacks
    await r.settle();
    const answers = r.sentBy(0, since);
    expect(answers).to.include('resume-end');
    expect(answers).to.not.include('snapshot-end');
    expect(r.passive.sequence).to.equal(9);
    expect(r.entries(r.passive)).to.deep.equal(r.entries(r.active));
    expect(r.sink.synced).to.equal(true);
  });

  it('a passive whose history forked from the active (it lost a dual active) resyncs by snapshot', async () => {
    const r = new Replication();
    r.commit(10, 'winner-');
    // the loser sequenced 1..4 on a term the winner never had
    r.passiveTimeline.open({ term: 'lost-term', epoch: 1, startSequence: 1 });
    for (let i = 1; i <= 4; i++)
      r.passive.commit(
        { key: `loser-${i}`, uuid: uuid(), properties: '', body: Buffer.from('x'), expiresAt: 0 },
        0,
      );
    r.sink.start();
    await r.settle();
    expect(r.sentBy(0, 0)).to.include('snapshot-end');
    expect(r.entries(r.passive)).to.deep.equal(r.entries(r.active));
    expect(r.passiveTimeline.term).to.equal('term-1');
    expect(r.sink.synced).to.equal(true);
  });

  it('a passive that leaves a write waiting past the failover timeout is detached (the write is acknowledged degraded) until it has caught up', async () => {
    const r = new Replication();
    r.sink.start();
    await r.settle();
    r.attach();
    expect(r.source.attached).to.equal(true);
    r.wire.cut(); // the passive hears nothing more and acks nothing
    const seq = r.commit(1);
    const acked = track(r.source.durable(seq));
    r.clock.advance(FAILOVER);
    expect(r.attach()).to.deep.include({ attach: true, detachedSlow: false });
    await turns(2);
    expect(acked.result, 'waiting exactly the failover timeout still waits').to.equal(undefined);
    r.clock.advance(1);
    expect(r.attach()).to.deep.include({ attach: false, detachedSlow: true, catchUpTo: seq });
    await turns(1);
    expect(acked.result).to.equal('degraded');
    expect(r.source.caughtUp).to.equal(false);
    // the link heals; the passive says it is synced but has not acked `seq` yet: still detached
    r.wire.heal();
    expect(r.attach()).to.deep.include({ attach: false, catchUpTo: seq });
    r.commit(1); // a gap for the passive: it resumes and acks everything
    await r.settle();
    expect(r.passive.sequence).to.equal(r.active.sequence);
    expect(r.attach()).to.deep.include({ attach: true, catchUpTo: undefined });
  });

  it('a stall is not the passive being slow: after forgiveWaits the waiting write keeps waiting', async () => {
    const r = new Replication();
    r.sink.start();
    await r.settle();
    r.attach();
    r.wire.cut();
    const acked = track(r.source.durable(r.commit(1)));
    r.clock.advance(10 * FAILOVER); // frozen: the timer did not run
    r.source.forgiveWaits(r.clock.now());
    expect(r.attach()).to.deep.include({ attach: true, detachedSlow: false });
    await turns(2);
    expect(acked.result).to.equal(undefined);
  });
});

describe('relayed acknowledgements: the passive answers a write it holds (issue 18)', () => {
  const client = Buffer.from('tABCDEFGHIJKLMNO', 'latin1');
  const ackOf = (reqId: number, sequences: number[]): RelayedAck => ({ identity: client, reqId, sequences });

  async function attached(passiveStorage?: Storage): Promise<Replication> {
    const r = new Replication(passiveStorage);
    r.commit(3);
    r.sink.start();
    await r.settle();
    expect(r.attach()).to.deep.include({ attach: true });
    r.source.peerRelays = true;
    return r;
  }

  it('rides with the changes, and the passive sends it once it has applied and flushed them', async () => {
    const storage = new GatedStorage(STORE);
    const r = await attached(storage);
    const before = r.wire.sent[0]!.length;
    const seq = r.commit(2);
    expect(r.source.relay(ackOf(7, [seq - 1, seq]))).to.equal(true);
    await turns(2);
    const sent = r.wire.sent[0]!.slice(before);
    expect(
      sent.map((m) => m.type),
      'one message: the changes and the acknowledgement',
    ).to.deep.equal(['data']);
    expect(sent[0]!.type === 'data' && sent[0]!.acks).to.deep.equal([ackOf(7, [seq - 1, seq])]);
    storage.hold();
    r.wire.deliver();
    await turns(4);
    expect(r.passive.sequence).to.equal(seq);
    expect(r.answered, 'not before its own storage flushed the writes').to.deep.equal([]);
    storage.release();
    await r.settle();
    expect(r.answered).to.deep.equal([ackOf(7, [seq - 1, seq])]);
  });

  it('handed over after its changes left (the active flushed its own storage first) it goes on its own, and is answered', async () => {
    const r = await attached();
    const seq = r.commit(1);
    await turns(2); // the changes leave
    const before = r.wire.sent[0]!.length;
    r.source.relay(ackOf(8, [seq]));
    await turns(2);
    expect(r.sentBy(0, before)).to.deep.equal(['relay']);
    await r.settle();
    expect(r.answered).to.deep.equal([ackOf(8, [seq])]);
  });

  it('is not handed over without an attached passive that relays, and a passive drops one for a write it does not hold', async () => {
    const r = await attached();
    r.source.peerRelays = false;
    expect(r.source.relay(ackOf(1, [r.commit(1)])), 'a peer that does not relay').to.equal(false);
    r.source.peerRelays = true;
    r.source.setAttached(false);
    expect(r.source.relay(ackOf(2, [r.commit(1)])), 'no passive attached').to.equal(false);
    await r.settle();
    expect(r.answered).to.deep.equal([]);
    // A relay for a sequence past what the passive applied (its data was lost: a gap) is dropped.
    r.sink.onRelay(r.passiveTimeline.term, [ackOf(3, [r.passive.sequence + 1])]);
    r.sink.onRelay('another-term', [ackOf(4, [r.passive.sequence])]);
    await r.settle();
    expect(r.answered).to.deep.equal([]);
    // The channel works: one it holds, on its term, is answered.
    r.sink.onRelay(r.passiveTimeline.term, [ackOf(5, [r.passive.sequence])]);
    await r.settle();
    expect(r.answered.map((a) => a.reqId)).to.deep.equal([5]);
  });

  it('a passive that is resyncing answers nothing: the active does', async () => {
    const r = await attached();
    r.wire.cut();
    r.commit(2); // lost: the passive will find a gap
    await turns(2);
    r.wire.heal();
    const seq = r.commit(1);
    r.source.relay(ackOf(9, [seq]));
    // The write comes after a gap: the passive asks to resume, and the relay behind it finds it
    // not in step, so it is dropped (the active answers on the passive's acknowledgement).
    await r.settle();
    expect(r.passive.sequence, 'resumed').to.equal(seq);
    expect(r.source.acked).to.equal(seq);
    expect(r.answered).to.deep.equal([]);
    // In step again, the next one is answered.
    const next = r.commit(1);
    r.source.relay(ackOf(11, [next]));
    await r.settle();
    expect(r.answered.map((a) => a.reqId)).to.deep.equal([11]);
  });
});
