/**
 * The sequencer (src/core/sequencer.ts) with more than one state machine and a storage other than
 * memory: every machine sees every change in order, deadlines of any machine become sequenced
 * changes, a staged snapshot swaps machines and storage at once, and a storage's stored state is
 * restored at start. The key-value behaviour itself is tested through Store (store.test.ts).
 */
import { expect } from 'chai';
import { KvMachine } from '../../../src/core/kv-machine.js';
import { Sequencer } from '../../../src/core/sequencer.js';
import type { DueChange, StateMachine } from '../../../src/core/state-machine.js';
import { MemoryStorage, type Storage, type StoredState } from '../../../src/core/storage.js';
import type { Entry } from '../../../src/kv/kvmap.js';

const OPTIONS = { replayLogSize: 100, dedupeSize: 100, dedupeMs: 60_000 };

let uuids = 0;
function uuid(): string {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0xc0de0000, 0);
  b.writeUInt32BE(++uuids, 12);
  return b.toString('latin1');
}

/** A second machine, as the event bus will add: it records what it is fed and asks for changes. */
class Recorder implements StateMachine {
  readonly seen: string[] = [];
  readonly wants: DueChange[] = [];
  snapshot(): Promise<Entry[]> {
    return Promise.resolve([]);
  }
  apply(entry: Entry, now: number): void {
    this.seen.push(`${entry.sequence}:${entry.key}@${now}`);
  }
  empty(): Recorder {
    return new Recorder();
  }
  restore(entries: Iterable<Entry>): void {
    for (const e of entries) this.seen.push(`restored ${e.sequence}:${e.key}`);
  }
  due(now: number, max: number): DueChange[] {
    return this.wants.splice(0, max).filter((c) => c.expiresAt <= now);
  }
}

function change(key: string, body = 'v', expiresAt = 0) {
  return { key, uuid: uuid(), properties: '', body: Buffer.from(body), expiresAt };
}

/** A storage that records what it is asked to persist, as a durable engine would write it. */
class RecordingStorage extends MemoryStorage implements Storage {
  readonly appended: number[] = [];
  constructor(private readonly stored?: StoredState) {
    super(OPTIONS);
    if (stored) this.install(this.stage(), stored.sequence);
  }
  override load(): StoredState {
    return this.stored ?? super.load();
  }
  override append(entry: Entry, now: number): void {
    this.appended.push(entry.sequence);
    super.append(entry, now);
  }
}

describe('Sequencer', () => {
  it('feeds every machine every change in sequence order, then writes it to storage', () => {
    const kv = new KvMachine();
    const rec = new Recorder();
    const storage = new RecordingStorage();
    const seq = new Sequencer([kv, rec] as const, storage);
    seq.commit(change('/a'), 10);
    seq.commit(change('/b'), 20);
    expect(seq.replicate({ ...change('/c'), sequence: 3 }, 30)).to.equal('applied');
    expect(rec.seen).to.deep.equal(['1:/a@10', '2:/b@20', '3:/c@30']);
    expect(kv.map.size).to.equal(3);
    expect(storage.appended).to.deep.equal([1, 2, 3]);
    expect(seq.sequence).to.equal(3);
  });

  it('a duplicate write reaches no machine and no storage', () => {
    const rec = new Recorder();
    const storage = new RecordingStorage();
    const seq = new Sequencer([rec] as const, storage);
    const c = change('/a');
    expect(seq.commit(c, 0).duplicate).to.equal(false);
    expect(seq.commit(c, 1)).to.deep.equal({ duplicate: true, sequence: 1 });
    expect(rec.seen).to.have.length(1);
    expect(storage.appended).to.deep.equal([1]);
  });

  it("expire sequences what any machine's deadlines call for, each with a fresh uuid", () => {
    const kv = new KvMachine();
    const rec = new Recorder();
    const seq = new Sequencer([kv, rec] as const, new MemoryStorage(OPTIONS));
    seq.commit(change('/ttl', 'v', 1_000), 0);
    rec.wants.push({ key: '/redeliver', properties: '', body: Buffer.from('x'), expiresAt: 0 });
    const first = seq.expire(999, uuid);
    expect(
      first.map((e) => [e.sequence, e.key]),
      'the TTL is not due yet',
    ).to.deep.equal([[2, '/redeliver']]);
    expect(rec.seen.at(-1), 'every machine sees a due change like any other').to.equal('2:/redeliver@999');
    const done = seq.expire(1_000, uuid);
    expect(done.map((e) => [e.sequence, e.key, e.body.length])).to.deep.equal([[3, '/ttl', 0]]);
    expect(new Set([...first, ...done].map((e) => e.uuid)).size, 'fresh uuids').to.equal(2);
    expect(kv.map.get('/ttl')).to.equal(undefined);
  });

  it('replaceWith swaps every machine and the storage at once; until then the old state serves', () => {
    const rec = new Recorder();
    const seq = new Sequencer([new KvMachine(), rec] as const, new MemoryStorage(OPTIONS));
    seq.commit(change('/old'), 0);
    const stage = seq.stage();
    const id = uuid();
    stage.add(
      [{ key: '/new', sequence: 7, uuid: id, properties: '', body: Buffer.from('n'), expiresAt: 0 }],
      0,
    );
    expect(seq.machines[0].map.get('/new'), 'staged, not live').to.equal(undefined);
    expect(seq.appliedSequence(id, '/new')).to.equal(undefined);
    seq.replaceWith(stage, 9);
    expect(seq.sequence).to.equal(9);
    expect(seq.machines[0].map.get('/old')).to.equal(undefined);
    expect(seq.machines[0].map.get('/new')!.sequence).to.equal(7);
    expect(seq.machines[1]).to.not.equal(rec);
    expect(seq.machines[1].seen).to.deep.equal(['restored 7:/new']);
    expect(seq.appliedSequence(id, '/new')).to.equal(7);
    expect(seq.commit(change('/next'), 0)).to.include({ duplicate: false });
    expect(seq.sequence).to.equal(10);
  });

  it('restores the machines from what the storage held at start and continues its sequence', () => {
    const stored: StoredState = {
      sequence: 5,
      entries: [
        { key: '/kept', sequence: 4, uuid: '', properties: '', body: Buffer.from('k'), expiresAt: 900 },
      ],
    };
    const kv = new KvMachine();
    const seq = new Sequencer([kv] as const, new RecordingStorage(stored));
    expect(seq.sequence).to.equal(5);
    expect(kv.map.get('/kept')!.sequence).to.equal(4);
    expect(kv.nextDeadline(), 'deadlines come back too').to.equal(900);
    expect(seq.commit(change('/a'), 0)).to.have.nested.property('entry.sequence', 6);
  });

  it("snapshot() holds every machine's state, and the sequence it was taken at", async () => {
    const seq = new Sequencer([new KvMachine(), new KvMachine()] as const, new MemoryStorage(OPTIONS));
    seq.commit(change('/a'), 0);
    const snap = await seq.snapshot();
    expect(snap.entries.map((e) => e.key)).to.deep.equal(['/a', '/a']);
    expect(snap.sequence).to.equal(1);
  });
});
