/**
 * A freeze must never turn into a failover or a lost acknowledgement (issue: "decisions taken on
 * stale time after a freeze"). Real processes, SIGSTOP/SIGCONT, raw native requests:
 *   - a frozen passive wakes with a client vote queued: it refuses it (it slept through the
 *     silence it would be judging), and stays passive;
 *   - a frozen active under write load wakes: it does not detach its healthy passive for time it
 *     did not observe, so every write is acknowledged `replicated`;
 *   - a flood of /digest requests on a 100k-key map does not stall the node.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { decodeRequestId, encodeRequestId, packBatch } from '../../src/wire/index.js';
import { newUuid } from '../../src/core/index.js';
import {
  metric,
  pairOptions,
  pairPorts,
  ServerProcess,
  waitFor,
  within,
  type PairPorts,
} from '../helpers/index.js';

describe('freezes decide nothing (real processes)', function () {
  this.timeout(120_000);
  let ports: PairPorts;
  let procs: ServerProcess[] = [];
  const sockets: zmq.Dealer[] = [];

  async function startPair(): Promise<{ primary: ServerProcess; backup: ServerProcess }> {
    const options = pairOptions(ports);
    const primary = new ServerProcess(options.primary);
    const backup = new ServerProcess(options.backup);
    procs.push(primary, backup);
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 10_000, 'the passive to attach');
    return { primary, backup };
  }

  /** Every node's log lines at warn or above, for a failure message. */
  function warnings(nodes: ServerProcess[]): string {
    const lines = nodes.flatMap((node, i) =>
      node.logs((line) => Number(line.level) >= 40).map((line) => `node ${i}: ${JSON.stringify(line)}`),
    );
    return lines.join('\n').slice(0, 8000);
  }

  function dealer(endpoint: string): zmq.Dealer {
    const socket = new zmq.Dealer({ linger: 0, receiveTimeout: 10_000 });
    socket.connect(endpoint);
    sockets.push(socket);
    return socket;
  }

  function writes(count: number, prefix: string): Buffer {
    return packBatch(
      Array.from({ length: count }, (_, i) => ({
        key: `${prefix}${i}`,
        sequence: 0,
        uuid: newUuid(),
        properties: '',
        body: Buffer.alloc(100, 'v'),
        expiresAt: 0,
      })),
    );
  }

  beforeEach(async () => {
    ports = await pairPorts();
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    for (const p of procs) p.signal('SIGCONT');
    await Promise.all(procs.map((p) => p.kill()));
    procs = [];
  });

  it('a frozen passive refuses a client vote that queued while it slept, and stays passive', async () => {
    const { primary, backup } = await startPair();
    // the passive adopts the active's epoch from the heartbeats after it turned passive
    const epoch = (await primary.status()).epoch;
    await waitFor(async () => (await backup.status()).epoch === epoch, 5000, 'the backup to adopt the epoch');
    const voter = dealer(backup.endpoint);
    // the channel works: a ping is answered before the freeze
    await voter.send(['TPING', encodeRequestId(1)]);
    expect((await voter.receive())[2]!.toString()).to.equal('PASSIVE');

    backup.signal('SIGSTOP');
    await voter.send(['TVOTE', encodeRequestId(2)]);
    // The fault: frozen for four failover timeouts, so its last sight of the peer is long stale.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    backup.signal('SIGCONT');

    const reply = await within(voter.receive(), 10_000, 'the answer to the queued vote');
    expect(decodeRequestId(reply[1])).to.equal(2);
    expect([reply[0]!.toString(), reply[3]?.toString()]).to.deep.equal(['TNOTACTIVE', 'peer-alive']);
    await waitFor(
      async () => (await backup.status()).peer?.up === true,
      10_000,
      'the backup to hear the primary',
    );
    const after = await backup.status();
    expect(after.state).to.equal('PASSIVE');
    expect(after.epoch).to.equal(epoch);
    expect((await primary.status()).state).to.equal('ACTIVE');
    expect(await metric(backup.http, 'twinstar_promotions_total')).to.equal(0);
  });

  it('a frozen active under write load keeps its passive attached: every write is acknowledged replicated', async () => {
    const { primary } = await startPair();
    const writer = dealer(primary.endpoint);
    const durabilities: string[] = [];
    const receiving = (async () => {
      for (let i = 0; i < 200; i++) {
        const reply = await writer.receive();
        durabilities.push(`${reply[0]!.toString()} ${reply[3]?.toString() ?? ''}`);
      }
    })();
    // 200 requests of 50 writes, 10 in flight at a time; the freeze lands in the middle.
    let frozen = false;
    for (let i = 0; i < 200; i++) {
      await writer.send(['TSET', encodeRequestId(i + 1), writes(50, `/load/${i}/`)]);
      if (i === 80) {
        primary.signal('SIGSTOP');
        frozen = true;
        await new Promise((resolve) => setTimeout(resolve, 1500)); // the fault: 3 failover timeouts
        primary.signal('SIGCONT');
      }
      while (i - durabilities.length >= 10) await new Promise((resolve) => setImmediate(resolve));
    }
    await within(receiving, 30_000, 'every acknowledgement');
    expect(frozen).to.equal(true);
    expect(durabilities).to.have.length(200);
    // On waking, the active sequences nothing until it has heard its peer afresh: requests in that
    // window are turned away (the client retries them). None may be acknowledged as degraded.
    // (It failed in CI when SIGSTOP landed inside a tick, between the stall check and the
    // attachment decision: pair-mode.ts. The nodes' warnings go with a failure.)
    expect(
      durabilities.filter((d) => d !== 'TACK replicated' && d !== 'TNOTACTIVE fenced'),
      `acknowledgements ${JSON.stringify(durabilities)}; warnings ${warnings(procs)}`,
    ).to.deep.equal([]);
    expect(durabilities.filter((d) => d === 'TACK replicated').length).to.be.greaterThan(50);
    expect(primary.logs((l) => String(l.msg).includes('not keeping up'))).to.deep.equal([]);
    expect((await primary.status()).degraded).to.equal(false);
  });

  it('a frozen active whose passive was promoted meanwhile acknowledges nothing that queued while it slept', async () => {
    const { primary, backup } = await startPair();
    const writer = dealer(primary.endpoint);
    await writer.send(['TSET', encodeRequestId(1), writes(1, '/before/')]);
    expect((await writer.receive())[0]!.toString()).to.equal('TACK');

    primary.signal('SIGSTOP');
    // the backup finds the primary silent and a client votes for it
    await waitFor(
      async () => (await backup.status()).peer?.up === false,
      10_000,
      'the backup to miss the primary',
    );
    const voter = dealer(backup.endpoint);
    await waitFor(
      async () => {
        await voter.send(['TVOTE', encodeRequestId(7)]);
        return (await voter.receive())[2]!.toString() === 'ACTIVE';
      },
      10_000,
      'the vote to promote the backup',
    );
    // writes that queue at the frozen primary, as a client that has not yet noticed would send
    for (let i = 0; i < 5; i++)
      await writer.send(['TSET', encodeRequestId(10 + i), writes(20, `/queued/${i}/`)]);
    primary.signal('SIGCONT');

    const answers: string[] = [];
    for (let i = 0; i < 5; i++) {
      const reply = await within(writer.receive(), 10_000, 'an answer to a queued write');
      answers.push(`${reply[0]!.toString()} ${reply[3]?.toString() ?? ''}`);
    }
    // Whatever it says, it must not claim them acknowledged: it is about to lose to the backup.
    expect(answers.filter((a) => a.startsWith('TACK'))).to.deep.equal([]);
    await waitFor(
      async () => (await primary.status()).state === 'PASSIVE',
      10_000,
      'the woken primary to demote',
    );
    expect((await backup.status()).state).to.equal('ACTIVE');
  });

  it('sixteen concurrent /digest requests on a 100k-key map neither stall the node nor move the pair', async () => {
    const { primary, backup } = await startPair();
    const writer = dealer(primary.endpoint);
    for (let i = 0; i < 100; i++) {
      await writer.send(['TSET', encodeRequestId(i + 1), writes(1000, `/big/${i}/`)]);
      expect((await writer.receive())[0]!.toString()).to.equal('TACK');
    }
    expect((await primary.status()).keys).to.equal(100_000);
    const stallsBefore = await metric(primary.http, 'twinstar_event_loop_stalls_total');
    const stallLines = () => primary.logs((l) => String(l.msg).includes('stalled')).length;
    const linesBefore = stallLines();
    const digests = await Promise.all(
      Array.from({ length: 16 }, async () => {
        const res = await fetch(`${primary.http}/digest`, { signal: AbortSignal.timeout(30_000) });
        return ((await res.json()) as { keys: number; digest: string }).digest;
      }),
    );
    expect(new Set(digests).size).to.equal(1);
    expect(await metric(primary.http, 'twinstar_event_loop_stalls_total')).to.equal(stallsBefore);
    expect((await primary.status()).state).to.equal('ACTIVE');
    expect((await backup.status()).state).to.equal('PASSIVE');
    expect(stallLines()).to.equal(linesBefore);
  });
});
