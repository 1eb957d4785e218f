/**
 * A model test of the consumer group machine (issue 16): random runs of publishes, joins, leaves,
 * time passing, member acks/naks/working/terms (of events they hold, or stale ones) and the
 * active's decisions, against a reference model made of arrays and plain loops. A second machine,
 * the passive, is fed only the sequenced ops. Invariants are checked after every step.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { GroupMachine } from '../../../src/events/group.js';
import type {
  ApplyResult,
  GroupConfig,
  GroupJson,
  GroupOp,
  StreamView,
} from '../../../src/events/group-ops.js';

const T0 = 1_700_000_000_000;
const MEMBERS = ['m0', 'm1', 'm2', 'm3'];

type Status = 'new' | 'skipped' | 'inflight' | 'waiting' | 'acked' | 'termed' | 'dead';
const DONE: Status[] = ['acked', 'termed', 'dead', 'skipped'];

interface ModelEvent {
  seq: number;
  matches: boolean;
  status: Status;
  member: string | null;
  at: number;
  deliveries: number;
  acks: number;
}

/** The reference: the rules of issue 16 written the plainest way, on arrays. */
class Model {
  events: ModelEvent[] = [];
  members: { id: string; since: number }[] = [];
  cursor = 0;
  counts = { acked: 0, termed: 0, deadLetters: 0, redeliveries: 0, ignored: 0 };

  constructor(readonly config: GroupConfig) {}

  event(seq: number): ModelEvent | undefined {
    return this.events.find((e) => e.seq === seq);
  }
  isMember(id: string): boolean {
    return this.members.some((m) => m.id === id);
  }
  inFlight(id: string): number {
    return this.events.filter((e) => e.status === 'inflight' && e.member === id).length;
  }

  apply(op: GroupOp): ApplyResult {
    const ok = this.change(op);
    if (!ok) this.counts.ignored++;
    return ok ? 'applied' : 'ignored';
  }

  private change(op: GroupOp): boolean {
    if (op.type === 'join') {
      if (this.isMember(op.member)) return false;
      this.members.push({ id: op.member, since: op.at });
      return true;
    }
    if (op.type === 'leave') {
      if (!this.isMember(op.member)) return false;
      this.members = this.members.filter((m) => m.id !== op.member);
      for (const e of this.events)
        if (e.status === 'inflight' && e.member === op.member) {
          e.status = 'waiting';
          e.member = null;
          e.at = op.at;
        }
      return true;
    }
    if (op.type === 'advance') {
      if (op.upTo <= this.cursor) return false;
      for (const e of this.events) if (e.seq > this.cursor && e.seq <= op.upTo) e.status = 'skipped';
      this.cursor = op.upTo;
      return true;
    }
    const e = this.event(op.event);
    if (e === undefined) return false;
    switch (op.type) {
      case 'deliver': {
        if (!this.isMember(op.member) || this.inFlight(op.member) >= this.config.maxAckPending) return false;
        const fresh = e.status === 'new' && e.seq > this.cursor;
        if (!fresh && !(e.status === 'waiting' && e.deliveries < this.config.maxDeliver)) return false;
        if (fresh) {
          for (const o of this.events) if (o.seq > this.cursor && o.seq < e.seq) o.status = 'skipped';
          this.cursor = e.seq;
        }
        if (e.deliveries > 0) this.counts.redeliveries++;
        e.deliveries++;
        e.status = 'inflight';
        e.member = op.member;
        e.at = op.deadline;
        return true;
      }
      case 'expire':
        if (e.status !== 'inflight') return false;
        e.status = 'waiting';
        e.member = null;
        return true;
      case 'dead-letter':
        if (e.status !== 'inflight' && e.status !== 'waiting') return false;
        e.status = 'dead';
        e.member = null;
        this.counts.deadLetters++;
        return true;
    }
    if (e.status !== 'inflight' || e.member !== op.member) return false;
    if (op.type === 'ack' || op.type === 'term') {
      e.status = op.type === 'ack' ? 'acked' : 'termed';
      e.member = null;
      if (op.type === 'ack') e.acks++;
      this.counts[op.type === 'ack' ? 'acked' : 'termed']++;
    } else if (op.type === 'nak') {
      e.status = 'waiting';
      e.member = null;
      e.at = op.notBefore;
    } else e.at = op.deadline;
    return true;
  }

  /** What the active should sequence at `now`: expiries, then due waiting events, then new ones. */
  decide(now: number, view: StreamView): GroupOp[] {
    const ops: GroupOp[] = [];
    const load: Record<string, number> = {};
    for (const m of this.members) load[m.id] = this.inFlight(m.id);
    const pick = (avoid: string | undefined): string | undefined => {
      const open = this.members.map((m) => m.id).filter((id) => load[id]! < this.config.maxAckPending);
      open.sort(
        (a, b) => (a === avoid ? 1 : 0) - (b === avoid ? 1 : 0) || load[a]! - load[b]! || (a < b ? -1 : 1),
      );
      return open[0];
    };
    const expired = this.events
      .filter((e) => e.status === 'inflight' && e.at <= now)
      .sort((a, b) => a.at - b.at || a.seq - b.seq);
    const holder: Record<number, string> = {};
    for (const e of expired) {
      load[e.member!]!--;
      if (e.deliveries >= this.config.maxDeliver) ops.push({ type: 'dead-letter', event: e.seq });
      else {
        ops.push({ type: 'expire', event: e.seq });
        holder[e.seq] = e.member!;
      }
    }
    const due = this.events
      .filter((e) => (e.status === 'waiting' && e.at <= now) || e.seq in holder)
      .sort((a, b) => a.seq - b.seq);
    let room = true;
    for (const e of due) {
      if (e.deliveries >= this.config.maxDeliver) ops.push({ type: 'dead-letter', event: e.seq });
      else if (room) {
        const member = pick(holder[e.seq]);
        if (member === undefined) room = false;
        else {
          load[member]!++;
          ops.push({ type: 'deliver', event: e.seq, member, deadline: now + this.config.ackWaitMs });
        }
      }
    }
    let cursor = this.cursor;
    for (const seq of view.candidates) {
      const member = room ? pick(undefined) : undefined;
      if (member === undefined) return ops;
      load[member]!++;
      ops.push({ type: 'deliver', event: seq, member, deadline: now + this.config.ackWaitMs });
      cursor = seq;
    }
    if (view.upTo > cursor) ops.push({ type: 'advance', upTo: view.upTo });
    return ops;
  }

  /** The view the node would pass: matching events above the cursor, covering the whole stream. */
  view(): StreamView {
    const candidates = this.events.filter((e) => e.matches && e.seq > this.cursor).map((e) => e.seq);
    return { candidates, upTo: this.events.length };
  }
}

type Action =
  | { kind: 'publish'; matches: boolean[] }
  | { kind: 'join' | 'leave'; member: number }
  | { kind: 'wait'; ms: number }
  | {
      kind: 'act';
      op: 'ack' | 'nak' | 'working' | 'term';
      member: number;
      pick: number;
      stale: boolean;
      ms: number;
    }
  | { kind: 'decide' }
  | {
      kind: 'rogue';
      op: 'expire' | 'dead-letter' | 'deliver' | 'advance';
      event: number;
      member: number;
      ms: number;
    };

/**
 * Ops the active would not decide at that point (a duplicate, an op from an older term, a skip):
 * both the machine and the model must treat them alike, applying or ignoring them.
 */
const rogue = fc.record({
  kind: fc.constant('rogue' as const),
  op: fc.constantFrom('expire' as const, 'dead-letter' as const, 'deliver' as const, 'advance' as const),
  event: fc.nat(40),
  member: fc.nat(MEMBERS.length - 1),
  ms: fc.integer({ min: 0, max: 1_500 }),
});

const actions = (memberOps: Array<'ack' | 'nak' | 'working' | 'term'>, rogues = 0): fc.Arbitrary<Action> =>
  fc.oneof(
    { arbitrary: rogue, weight: rogues },
    {
      arbitrary: fc.record({
        kind: fc.constant('publish'),
        matches: fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({ kind: fc.constantFrom('join', 'leave'), member: fc.nat(MEMBERS.length - 1) }),
      weight: 2,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('wait'), ms: fc.integer({ min: 0, max: 1_500 }) }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('act'),
        op: fc.constantFrom(...memberOps),
        member: fc.nat(MEMBERS.length - 1),
        pick: fc.nat(50),
        stale: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
        ms: fc.integer({ min: 0, max: 1_500 }),
      }),
      weight: 4,
    },
    { arbitrary: fc.constant({ kind: 'decide' }), weight: 4 },
  ) as fc.Arbitrary<Action>;
const action = actions(['ack', 'nak', 'working', 'term'], 2);

const config: fc.Arbitrary<GroupConfig> = fc.record({
  name: fc.constant('g'),
  ackWaitMs: fc.integer({ min: 1, max: 1_000 }),
  maxDeliver: fc.integer({ min: 1, max: 4 }),
  maxAckPending: fc.integer({ min: 1, max: 3 }),
  durable: fc.boolean(),
});

/** The state of each event as the machine shows it, in the model's words. */
function machineView(json: GroupJson, seqs: number[]): string[] {
  return seqs.map((seq) => {
    const p = json.pending.find((x) => x.event === seq);
    if (p !== undefined)
      return p.member === null
        ? `waiting ${p.deliveries} ${p.at}`
        : `inflight ${p.member} ${p.deliveries} ${p.at}`;
    return seq > json.cursor ? 'new' : 'out';
  });
}
function modelView(model: Model): string[] {
  return model.events.map((e) => {
    if (e.status === 'waiting') return `waiting ${e.deliveries} ${e.at}`;
    if (e.status === 'inflight') return `inflight ${e.member} ${e.deliveries} ${e.at}`;
    return e.status === 'new' ? 'new' : 'out';
  });
}

/** One run: the machine (active), its passive and the model; every op goes to all three. */
class Run {
  readonly active: GroupMachine;
  readonly passive: GroupMachine;
  readonly model: Model;
  now = T0;

  constructor(readonly config: GroupConfig) {
    this.active = new GroupMachine(config);
    this.passive = new GroupMachine(config);
    this.model = new Model(config);
  }

  apply(op: GroupOp): ApplyResult {
    const result = this.active.apply(op);
    expect(this.passive.apply(op), 'the passive applies as the active').to.equal(result);
    expect(this.model.apply(op), `the model agrees on ${JSON.stringify(op)}`).to.equal(result);
    return result;
  }

  decide(): void {
    const view = this.model.view();
    const ops = this.active.decide(this.now, view);
    expect(ops, 'decide as the model').to.deep.equal(this.model.decide(this.now, view));
    for (const max of [0, 1, ops.length - 1])
      expect(this.active.decide(this.now, view, Math.max(0, max)), 'max keeps a prefix').to.deep.equal(
        ops.slice(0, Math.max(0, max)),
      );
    const next = this.active.nextDeadline();
    const timed = this.active.decide(this.now, { candidates: [], upTo: 0 });
    if (next === undefined || next > this.now)
      expect(timed, 'nothing due before nextDeadline').to.deep.equal([]);
    else expect(timed, 'something due at nextDeadline').to.not.deep.equal([]);
    for (const op of ops) {
      if (op.type === 'deliver') {
        const e = this.model.event(op.event)!;
        expect(DONE, 'a finished event is never delivered again').to.not.include(e.status);
        if (e.status === 'waiting') expect(this.now, 'not before its not-before').to.be.at.least(e.at);
      }
      expect(this.apply(op), `a decided op applies: ${JSON.stringify(op)}`).to.equal('applied');
    }
  }

  act(a: Extract<Action, { kind: 'act' }>): void {
    // Mostly a member of the group acting on an event it holds; else anyone, on any event.
    const joined = this.model.members.map((m) => m.id).sort();
    const member = a.stale || joined.length === 0 ? MEMBERS[a.member]! : joined[a.member % joined.length]!;
    const held = this.model.events.filter((e) => e.status === 'inflight' && e.member === member);
    const pool = a.stale || held.length === 0 ? this.model.events : held;
    const event = pool.length === 0 ? a.pick + 1 : pool[a.pick % pool.length]!.seq;
    const at = this.now + a.ms;
    const op: GroupOp =
      a.op === 'nak'
        ? { type: 'nak', event, member, notBefore: at }
        : a.op === 'working'
          ? { type: 'working', event, member, deadline: at + this.config.ackWaitMs }
          : { type: a.op, event, member };
    this.apply(op);
  }

  step(a: Action): void {
    if (a.kind === 'publish')
      for (const matches of a.matches)
        this.model.events.push({
          seq: this.model.events.length + 1,
          matches,
          status: 'new',
          member: null,
          at: 0,
          deliveries: 0,
          acks: 0,
        });
    else if (a.kind === 'join' || a.kind === 'leave')
      this.apply({ type: a.kind, member: MEMBERS[a.member]!, at: this.now });
    else if (a.kind === 'wait') this.now += a.ms;
    else if (a.kind === 'act') this.act(a);
    else if (a.kind === 'rogue') this.apply(this.rogueOp(a));
    else this.decide();
    this.check();
  }

  rogueOp(a: Extract<Action, { kind: 'rogue' }>): GroupOp {
    // A sequenced op names only published events: the log orders a publish before any op on it.
    const published = a.event % (this.model.events.length + 1);
    if (a.op === 'advance') return { type: 'advance', upTo: published };
    if (a.op === 'deliver')
      return { type: 'deliver', event: published, member: MEMBERS[a.member]!, deadline: this.now + a.ms };
    return { type: a.op, event: published };
  }

  /** Every member acks every event it holds. */
  ackAll(): void {
    for (const e of this.model.events)
      if (e.status === 'inflight')
        this.step({
          kind: 'act',
          op: 'ack',
          member: MEMBERS.indexOf(e.member!),
          pick: 0,
          stale: false,
          ms: 0,
        } as Action);
  }

  finished(): boolean {
    const all = this.model.cursor === this.model.events.length;
    return all && this.model.events.every((e) => !e.matches || e.status === 'acked');
  }

  check(): void {
    const json = this.active.toJSON();
    expect(this.passive.toJSON(), 'the passive mirrors the active').to.deep.equal(json);
    expect(GroupMachine.fromJSON(json).toJSON(), 'toJSON/fromJSON round trip').to.deep.equal(json);
    const seqs = this.model.events.map((e) => e.seq);
    expect(machineView(json, seqs), 'each event where the model has it').to.deep.equal(modelView(this.model));
    // Exactly one place per event: pending ones were considered, and held by a member of the group.
    const ids = json.members.map((m) => m.id);
    for (const p of json.pending) {
      expect(p.event).to.be.at.most(json.cursor);
      if (p.member !== null) expect(ids).to.include(p.member);
      expect(p.deliveries, 'deliveries never exceed maxDeliver').to.be.within(1, this.config.maxDeliver);
    }
    const stats = this.active.stats(this.model.events.length);
    for (const m of stats.members) {
      expect(m.inFlight, 'no member over maxAckPending').to.be.at.most(this.config.maxAckPending);
      expect(m.inFlight).to.equal(json.pending.filter((p) => p.member === m.id).length);
    }
    expect(ids).to.deep.equal(this.model.members.map((m) => m.id).sort());
    expect(json.cursor).to.equal(this.model.cursor);
    expect(json.counters).to.deep.equal(this.model.counts);
    for (const e of this.model.events) expect(e.acks, 'acked at most once').to.be.at.most(1);
    expect(this.active.abandoned()).to.equal(!this.config.durable && ids.length === 0);
  }
}

describe('GroupMachine against a reference model', () => {
  it('agrees with the model and keeps every invariant over random runs', () => {
    fc.assert(
      fc.property(config, fc.array(action, { maxLength: 100, size: 'max' }), (cfg, actions) => {
        const run = new Run(cfg);
        for (const a of actions) run.step(a);
      }),
      { numRuns: 200 },
    );
  });

  it('with members that ack everything, every published event is acked exactly once', () => {
    // maxDeliver above the deliveries a bounded run can make: nothing is dead-lettered, all is acked.
    const liveConfig = config.map((c) => ({ ...c, maxDeliver: 1_000 }));
    fc.assert(
      fc.property(
        liveConfig,
        fc.array(actions(['ack', 'nak', 'working']), { maxLength: 60, size: 'max' }),
        (cfg, actions) => {
          const run = new Run(cfg);
          // Members ack, nak, extend, hold on or leave at random, then ack everything in the drain.
          for (const a of actions) run.step(a);
          // Drain: one member stays; decide, ack what it got, let time pass; bounded.
          run.step({ kind: 'join', member: 0 });
          for (let round = 0; round < 1_000 && !run.finished(); round++) {
            run.step({ kind: 'decide' });
            run.ackAll();
            run.step({ kind: 'wait', ms: 100 });
          }
          expect(run.model.events.map((e) => e.acks)).to.deep.equal(
            run.model.events.map((e) => (e.matches ? 1 : 0)),
          );
          expect(run.active.stats(run.model.events.length)).to.deep.include({
            lag: 0,
            pending: 0,
            waiting: 0,
            deadLetters: 0,
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
