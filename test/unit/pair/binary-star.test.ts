/**
 * The Binary Star reactor (src/pair/binary-star.ts) on a fake clock and a fake peer link: two
 * reactors form a pair, fail over on a client vote, resolve a dual active, survive a stall and
 * refuse a peer, deterministically (time moves only when a test moves it).
 */
import { expect } from 'chai';
import { BinaryStar } from '../../../src/pair/binary-star.js';
import { Timeline } from '../../../src/core/timeline.js';
import { RateLimitedLog, silentLogger } from '../../../src/log/index.js';
import type { Role } from '../../../src/fsm/index.js';
import { FakeClock, FakeWire } from './harness.js';

const HB = 50;
const FAILOVER = 250;

interface Sim {
  reactor: BinaryStar;
  /** the hooks the reactor called, in order */
  calls: string[];
  sequence: number;
  /** the application's replica is complete (a passive) or its passive attached (an active) */
  synced: boolean;
  timeline: Timeline;
}

function node(
  role: Role,
  wire: FakeWire,
  index: 0 | 1,
  clock: FakeClock,
  failoverMs = FAILOVER,
  timeline = new Timeline(),
): Sim {
  const log = silentLogger();
  const sim = { calls: [] as string[], sequence: 0, synced: false, timeline } as Sim;
  sim.reactor = new BinaryStar({
    name: role,
    role,
    heartbeatMs: HB,
    failoverMs,
    now: clock.now,
    log,
    refusals: new RateLimitedLog(log),
    channel: wire.end(index),
    timeline: sim.timeline,
    sequence: () => sim.sequence,
    synced: () => sim.synced,
    hooks: {
      onActive: (epoch, reason) => {
        sim.calls.push(`active ${epoch} ${reason}`);
        sim.timeline.open({ term: `${role}-${epoch}`, epoch, startSequence: sim.sequence + 1 });
      },
      onPassive: (reason, from) => {
        sim.calls.push(`passive ${reason} from ${from}`);
        sim.synced = false;
      },
      onSettled: (why) => sim.calls.push(`settled: ${why}`),
      onHistory: () => sim.calls.push('history'),
      onWake: () => sim.calls.push('wake'),
      onStall: () => sim.calls.push('stall'),
      onState: () => undefined,
      onRefused: (reason) => sim.calls.push(`refused: ${reason}`),
      onUnavailable: (reason) => sim.calls.push(`unavailable ${reason}`),
    },
  });
  wire.receiver(index, (msg) => sim.reactor.receive(msg));
  return sim;
}

/** A heartbeat as a freshly started node of `role` sends it. */
function heartbeatOf(role: Role, state: 'PRIMARY' | 'BACKUP') {
  return {
    name: role,
    role,
    state,
    epoch: 0,
    sequence: 0,
    term: '',
    timeline: [],
    heartbeatMs: HB,
    failoverMs: FAILOVER,
    synced: false,
    history: role === 'primary',
    fenced: false,
  };
}

class Pair {
  readonly clock = new FakeClock();
  readonly wire = new FakeWire();
  readonly a: Sim;
  readonly b: Sim;
  constructor(bFailoverMs = FAILOVER) {
    this.a = node('primary', this.wire, 0, this.clock);
    this.b = node('backup', this.wire, 1, this.clock, bFailoverMs);
  }
  /** One heartbeat period: both tick (as PairMode.tick does), then the wire delivers. */
  step(): void {
    this.clock.advance(HB);
    for (const n of [this.a, this.b]) {
      n.reactor.tick();
      n.reactor.updateAvailability();
    }
    this.wire.deliver();
  }
  run(ms: number): void {
    for (let t = 0; t < ms; t += HB) this.step();
  }
  /** Start both, and let the backup's sync complete once it follows. */
  form(): void {
    this.step();
    this.step();
    expect(this.states()).to.deep.equal(['ACTIVE', 'PASSIVE']);
    this.b.synced = true; // the passive's replica completed
    this.b.sequence = this.a.sequence;
    this.step();
    expect(this.b.reactor.history, 'the synced passive holds the history').to.equal(true);
  }
  states(): string[] {
    return [this.a.reactor.state, this.b.reactor.state];
  }
}

describe('Binary Star reactor (fake clock, fake peer link)', () => {
  it('a starting primary and backup form a pair: the primary serves, the backup follows and gains the history once synced', () => {
    const p = new Pair();
    p.step();
    expect(p.a.calls).to.deep.equal(['active 1 peer-is-backup']);
    expect(p.b.reactor.state, 'a backup does not follow a primary that is not active yet').to.equal('BACKUP');
    p.step();
    expect(p.b.calls).to.deep.equal(['passive peer-active from BACKUP']);
    expect(p.b.reactor.history).to.equal(false);
    p.b.synced = true;
    p.step();
    expect(p.b.calls).to.deep.equal(['passive peer-active from BACKUP', 'history']);
    expect(p.b.timeline.term, 'a synced passive follows the active terms').to.equal('primary-1');
    expect(p.b.reactor.epoch, 'a passive adopts the active epoch').to.equal(1);
    expect(p.a.reactor.serving()).to.equal(true);
    expect(p.b.reactor.serving()).to.equal(false);
  });

  it('a passive takes over on a client vote only once the peer has been silent for the failover timeout', () => {
    const p = new Pair();
    p.form();
    p.wire.cut();
    p.run(FAILOVER - HB);
    expect(p.b.reactor.vote()).to.deep.equal({ accepted: false, reason: 'peer-alive' });
    p.run(HB);
    expect(p.b.reactor.vote()).to.deep.equal({ accepted: true });
    expect(p.b.calls.at(-1)).to.equal('active 2 client-vote');
    expect(p.b.reactor.state).to.equal('ACTIVE');
  });

  for (const [winner, aServed, bServed] of [
    ['the promoted backup, which served more', 3, 10],
    ['the old active, which served more', 10, 3],
  ] as const) {
    it(`a dual active is fenced, then resolved within two exchanges for ${winner}`, () => {
      const p = new Pair();
      p.form();
      p.wire.cut();
      p.a.sequence += aServed; // the old active keeps serving its clients
      p.run(FAILOVER);
      expect(p.b.reactor.vote()).to.deep.equal({ accepted: true });
      p.b.sequence += bServed; // and so does the promoted backup
      expect(p.states()).to.deep.equal(['ACTIVE', 'ACTIVE']);
      p.wire.heal();
      p.step();
      expect([p.a.reactor.fenced, p.b.reactor.fenced], 'both fence on meeting').to.deep.equal([true, true]);
      expect([p.a.reactor.serving(), p.b.reactor.serving()]).to.deep.equal([false, false]);
      p.step();
      const [won, lost] = aServed > bServed ? [p.a, p.b] : [p.b, p.a];
      expect(lost.reactor.state).to.equal('PASSIVE');
      expect(lost.calls.at(-1)).to.equal('passive dual-active-lost from ACTIVE');
      expect(won.reactor.state).to.equal('ACTIVE');
      p.step();
      expect(won.calls.at(-1)).to.equal('settled: the peer demoted');
      expect(won.reactor.serving()).to.equal(true);
    });
  }

  it('an active woken from a stall past the failover timeout sequences nothing until a fresh heartbeat is heard', () => {
    const p = new Pair();
    p.form();
    expect(p.a.reactor.serving()).to.equal(true);
    p.clock.advance(FAILOVER); // nothing ran: the event loop was frozen
    expect(p.a.reactor.serving()).to.equal(false);
    expect(p.a.calls.slice(-2)).to.deep.equal(['stall', 'wake']);
    p.step(); // heartbeats read one period after the wake may have queued while it slept
    expect(p.a.reactor.serving()).to.equal(false);
    p.step();
    expect(p.a.reactor.serving()).to.equal(true);
  });

  it('now() reads the clock after the stall check: a freeze before it is noticed (stall, wake) by the time the reading is returned', () => {
    const p = new Pair();
    p.form();
    const calls = p.a.calls.length;
    expect(p.a.reactor.now()).to.equal(p.clock.t);
    expect(p.a.calls.length, 'no stall within a heartbeat').to.equal(calls);
    p.clock.advance(FAILOVER); // frozen between two decisions
    expect(p.a.reactor.now()).to.equal(p.clock.t);
    expect(p.a.calls.slice(-2), 'noticed within the reading').to.deep.equal(['stall', 'wake']);
    expect(p.a.reactor.serving(), 'and the active re-learns its peer first').to.equal(false);
  });

  it('a passive woken from a stall does not take over on a vote: the silence it slept through does not count', () => {
    // control: ticking through the same silence, the vote is accepted
    const control = new Pair();
    control.form();
    control.wire.cut();
    control.run(FAILOVER + HB);
    expect(control.b.reactor.vote()).to.deep.equal({ accepted: true });

    const p = new Pair();
    p.form();
    p.wire.cut();
    p.clock.advance(FAILOVER + HB); // frozen instead of ticking
    expect(p.b.reactor.vote()).to.deep.equal({ accepted: false, reason: 'peer-alive' });
    expect(p.b.reactor.state).to.equal('PASSIVE');
  });

  it('a peer with other timing settings is refused: its heartbeats do not promote this node', () => {
    const control = new Pair();
    control.step();
    expect(control.a.reactor.state).to.equal('ACTIVE');

    const p = new Pair(FAILOVER * 2);
    p.step();
    p.step();
    expect(p.a.reactor.state).to.equal('PRIMARY');
    expect(p.a.calls[0]).to.match(/^refused: timing differs/);
    expect(
      p.a.calls.filter((c) => c.startsWith('refused')),
      'announced once, not on every heartbeat',
    ).to.have.length(1);
    expect(p.a.reactor.peerUp()).to.equal(false);
  });

  it('a backup alone never serves: votes are refused for want of the history, and it says it is unavailable', () => {
    const p = new Pair();
    p.wire.cut();
    p.run(FAILOVER + HB);
    expect(p.b.reactor.vote()).to.deep.equal({ accepted: false, reason: 'no-history' });
    expect(p.b.reactor.state).to.equal('BACKUP');
    expect(p.b.calls).to.deep.equal(['unavailable no-history']);
    expect(p.b.reactor.unavailableBecause).to.equal('no-history');
  });

  it('the epoch is kept with the terms (where storage persists it), and a node never takes one below it', () => {
    const p = new Pair();
    p.form();
    expect(p.a.timeline.epoch).to.equal(1);
    expect(p.b.timeline.epoch, 'a passive keeps the epoch it learned from the active').to.equal(1);

    const clock = new FakeClock();
    const wire = new FakeWire();
    const restarted = node('primary', wire, 0, clock, FAILOVER, new Timeline({ epoch: 7 }));
    node('backup', wire, 1, clock);
    clock.advance(HB);
    restarted.reactor.tick();
    wire.deliver(); // (the backup has not ticked: the primary has heard nothing yet)
    expect(restarted.calls).to.deep.equal([]);
    wire.end(1).send({ type: 'heartbeat', heartbeat: heartbeatOf('backup', 'BACKUP') });
    wire.deliver();
    expect(restarted.calls).to.deep.equal(['active 8 peer-is-backup']);
  });

  it('force() promotes a node without the history, but never while the peer is heard active', () => {
    const p = new Pair();
    p.step();
    p.step();
    expect(p.b.reactor.force()).to.deep.equal({
      ok: false,
      reason: 'the peer primary is active: promoting would make two actives',
    });
    p.wire.cut();
    p.run(FAILOVER + HB);
    expect(p.b.reactor.force()).to.deep.equal({ ok: true, epoch: 2 });
    expect(p.b.reactor.state).to.equal('ACTIVE');
    expect(p.b.reactor.history).to.equal(true);
  });
});
