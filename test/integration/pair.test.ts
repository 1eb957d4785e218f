/**
 * The Binary Star pair as two real server processes started through the CLI, faulted with
 * SIGKILL, SIGSTOP/SIGCONT and restarts. Each test names the promise it tries to break.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { connect, type Client, type Update } from '../../src/index.js';
import { encodeKvMsg, encodeRequestId, Native } from '../../src/wire/index.js';
import {
  digest,
  metric,
  pairOptions,
  pairPorts,
  ServerProcess,
  waitFor,
  within,
  requireTool,
  type PairPorts,
} from '../helpers/index.js';
import { crossed } from '../helpers/faults.js';

/** a snapshot is on the wire once more than this has crossed the peer link (heartbeats: ~1 KB/s) */
const IN_FLIGHT_BYTES = 1024 * 1024;

describe('Binary Star pair (real processes)', function () {
  this.timeout(120_000);
  let ports: PairPorts;
  let procs: ServerProcess[] = [];
  const clients: Client[] = [];

  function start(
    role: 'primary' | 'backup',
    extra: Partial<ReturnType<typeof pairOptions>['primary']> = {},
  ): ServerProcess {
    const p = new ServerProcess({ ...pairOptions(ports)[role], ...extra });
    procs.push(p);
    return p;
  }

  async function startPair(): Promise<{ primary: ServerProcess; backup: ServerProcess }> {
    const primary = start('primary');
    const backup = start('backup');
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 10_000, 'the passive to attach');
    return { primary, backup };
  }

  /** The node is PASSIVE and has not completed its sync (no snapshot swapped in yet). */
  async function assertMidSnapshot(node: ServerProcess): Promise<void> {
    const s = await node.status();
    expect(s.state).to.equal('PASSIVE');
    expect(s.keys, 'the snapshot had not completed').to.equal(0);
    expect(s.history).to.equal('incomplete');
  }

  function servers(): string[] {
    return [`tcp://127.0.0.1:${ports.primary.port}`, `tcp://127.0.0.1:${ports.backup.port}`];
  }

  async function client(subtree = ''): Promise<Client> {
    const c = await connect({ servers: servers(), subtree, connectTimeoutMs: 15_000 });
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    ports = await pairPorts();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const p of procs) p.signal('SIGCONT');
    await Promise.all(procs.map((p) => p.kill()));
    procs = [];
  });

  it('promise 3: a backup started alone never serves a client', async () => {
    const backup = start('backup');
    await backup.ready('BACKUP');
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(backup.endpoint);
    try {
      // Vote for it again and again, well past the failover timeout: every vote is refused.
      for (let i = 0; i < 20; i++) {
        await dealer.send([Buffer.from(Native.SNAPSHOT), encodeRequestId(i), Buffer.from('')]);
        const [tag, , state] = await within(dealer.receive(), 5000, 'an answer to the vote');
        expect(tag!.toString()).to.equal(Native.NOT_ACTIVE);
        expect(state!.toString()).to.equal('BACKUP');
        if (i === 0)
          await waitFor(
            async () => (await backup.status()).uptimeMs > 3 * 500,
            5000,
            'three failover timeouts',
          );
      }
      expect((await backup.status()).state).to.equal('BACKUP');
      expect((await fetch(`${backup.http}/readyz`)).status).to.equal(503);
    } finally {
      dealer.close();
    }
  });

  it('promise 3: after SIGKILL of the active, the passive promotes only once a client votes for it', async () => {
    const { primary, backup } = await startPair();
    await primary.kill();
    await waitFor(
      async () => (await backup.status()).peer?.up === false,
      5000,
      'the backup to notice its peer is gone',
    );
    await waitFor(
      async () => (await backup.status()).peer!.lastHeardMs > 3 * 500,
      5000,
      'three failover timeouts of silence',
    );
    expect((await backup.status()).state).to.equal('PASSIVE', 'no client asked, so no promotion');
    const c = await client();
    expect(c.server).to.equal(backup.endpoint);
    const status = await backup.status();
    expect(status.state).to.equal('ACTIVE');
    expect(status.epoch).to.equal(2);
    expect(await metric(backup.http, 'twinstar_promotions_total', { reason: 'client-vote' })).to.equal(1);
  });

  it('promise 2: SIGKILL of the active under acknowledged writes loses none; sequences continue; the restarted node rejoins passive and identical', async () => {
    const { primary, backup } = await startPair();
    const writers = await Promise.all([client('/w0/'), client('/w1/')]);
    const acked = new Map<string, { value: string; seq: number }>();
    let killedAt = 0;
    let beforeKill = 0;
    const perWriter: number[][] = [[], []];
    async function writeLoop(w: number, count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        const key = `/w${w}/k${i}`;
        const value = `v${i}`;
        const seq = await writers[w]!.set(key, value);
        acked.set(key, { value, seq });
        perWriter[w]!.push(seq);
        if (acked.size === 800 && killedAt === 0) {
          killedAt = Date.now();
          beforeKill = Math.max(...[...acked.values()].map((a) => a.seq));
          await primary.kill();
        }
      }
    }
    await Promise.all([writeLoop(0, 800), writeLoop(1, 800)]);
    expect(killedAt).to.be.greaterThan(0);
    expect((await backup.status()).state).to.equal('ACTIVE');
    for (const seqs of perWriter)
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).to.be.greaterThan(seqs[i - 1]!);
    const after = [...acked.values()].filter((a) => a.seq > beforeKill);
    expect(after.length).to.be.greaterThan(0, 'writes were acknowledged by the new active');
    // Every acknowledged write is on the new active.
    const check = await client('');
    for (const [key, { value }] of acked) expect(check.getString(key), key).to.equal(value);
    // The killed node comes back passive, syncs, and holds exactly the same state.
    const again = start('primary');
    await again.ready('PASSIVE');
    await waitFor(
      async () => (await backup.status()).degraded === false,
      10_000,
      'the restarted node to attach',
    );
    const [a, b] = await Promise.all([digest(backup.http), digest(again.http)]);
    expect(b).to.deep.equal(a);
    expect(a.keys).to.equal(1600);
  });

  it('promise 4: plain CHP readers converge on the new active after a SIGKILL under pipelined writes, missing none of the writes made around it (14 of 25 missed 20-40)', async () => {
    // A plain CHP client has no resume: it must subscribe to the new active before it asks, and
    // keep what is published between the snapshot being taken and its end (docs/protocol.md).
    const diverged: string[] = [];
    for (let round = 0; round < 2; round++) {
      if (round > 0) {
        await Promise.all(clients.splice(0).map((c) => c.close()));
        await Promise.all(procs.splice(0).map((p) => p.kill()));
        ports = await pairPorts();
      }
      const { primary, backup } = await startPair();
      const all = servers();
      const writer = await connect({ servers: all, mode: 'native' });
      clients.push(writer);
      const readers: Client[] = [];
      for (let i = 0; i < 5; i++) readers.push(await connect({ servers: all, mode: 'chp', subtree: '/f/' }));
      clients.push(...readers);
      let written = 0;
      let stop = false;
      const writing = (async () => {
        while (!stop)
          await Promise.all(Array.from({ length: 20 }, () => writer.set(`/f/k${written++}`, 'v')));
      })();
      await waitFor(() => written >= 500, 10_000, 'writes to flow');
      primary.signal('SIGKILL');
      await waitFor(() => written >= 3000, 30_000, 'writes acknowledged by the new active');
      stop = true;
      await writing;
      expect((await backup.status()).state).to.equal('ACTIVE');
      // the last write proves each reader follows the new active; then its replica must be whole
      await writer.set('/f/end', 'e');
      const state = await digest(backup.http);
      for (const [i, reader] of readers.entries()) {
        await waitFor(() => reader.get('/f/end') !== undefined, 15_000, `reader ${i}: the last write`);
        expect(reader.server).to.equal(all[1]);
        if (reader.count('/f/') !== state.keys)
          diverged.push(`round ${round}, reader ${i}: ${reader.count('/f/')} of ${state.keys} keys`);
      }
    }
    expect(diverged).to.deep.equal([]);
  });

  it('promise 3: SIGSTOP of the active past the timeout, promotion of the backup, SIGCONT: the dual active resolves for the node that served, and the loser resyncs without a false "lost" report', async () => {
    const { primary, backup } = await startPair();
    const c = await client('/s/');
    for (let i = 0; i < 50; i++) await c.set(`/s/before${i}`, 'x');
    const failedOver = new Promise((resolve) => c.once('failover', resolve));
    // Writes in flight when the active freezes: some are sequenced there and never replicated;
    // the client re-sends them (same uuids) to the new active, which must not make them "lost".
    const inFlight = Array.from({ length: 300 }, (_, i) => c.set(`/s/inflight${i}`, 'z'));
    primary.signal('SIGSTOP');
    await within(failedOver, 10_000, 'the client to fail over');
    expect(c.server).to.equal(backup.endpoint);
    await within(Promise.all(inFlight), 15_000, 'the in-flight writes to be acknowledged by the new active');
    for (let i = 0; i < 50; i++) await c.set(`/s/after${i}`, 'y');
    expect((await backup.status()).epoch).to.equal(2);
    primary.signal('SIGCONT');
    await waitFor(
      async () => (await primary.status()).state === 'PASSIVE',
      10_000,
      'the woken primary to demote',
    );
    expect((await backup.status()).state).to.equal('ACTIVE');
    expect(
      primary.logs(
        (l) => l.msg === 'dual active: the peer served more since the fork; this node demotes and resyncs',
      ),
    ).to.have.length(1);
    await waitFor(
      async () => (await backup.status()).degraded === false,
      10_000,
      'the loser to resync and attach',
    );
    // The frozen primary sequenced nothing the backup lacks (every write it had was replicated):
    // its report says so at info level, with no error-level "lost" line.
    await waitFor(
      () => primary.logs((l) => String(l.msg).startsWith('dual active lost')).length > 0,
      10_000,
      'the loser to report after its resync',
    );
    expect(primary.logs((l) => String(l.msg).startsWith('dual active lost') && l.level === 50)).to.deep.equal(
      [],
    );
    // (Whether the frozen primary had sequenced some of the in-flight writes before the stop is a
    // race: usually it had, all 300 in the runs looked at. The deterministic version of this case
    // is in dual-active.test.ts: a write re-sent to the winner with the same uuid is not reported.)
    const [a, b] = await Promise.all([digest(backup.http), digest(primary.http)]);
    expect(b).to.deep.equal(a);
    expect(primary.exited || backup.exited).to.equal(false, 'nobody crashed');
    // Exactly one node answers ready.
    const ready = await Promise.all(
      [primary, backup].map(async (p) => (await fetch(`${p.http}/readyz`)).status),
    );
    expect(ready.filter((s) => s === 200)).to.have.length(1);
  });

  it('promise 7: a node killed in the middle of a snapshot never freezes the other node', async function () {
    requireTool(this, 'ss', ['-V'], 'install iproute2 (ss)');
    const { primary, backup } = await startPair();
    const w = await client('/big/');
    const value = 'x'.repeat(100);
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(Array.from({ length: 10_000 }, (_, i) => w.set(`/big/${batch}/${i}`, value)));
    }
    const attachedLines = () => primary.logs((l) => String(l.msg).startsWith('passive attached')).length;
    const syncedLines = (p: ServerProcess) => p.logs((l) => String(l.msg).startsWith('synced:')).length;
    // A new passive is killed while the active streams it 200k keys (about 30 MB). In flight means:
    // the new passive asked (it is PASSIVE), the snapshot is on the wire (megabytes have crossed
    // the peer link, which heartbeats alone never do), and it had not been completed when the
    // passive died: the passive swaps a snapshot in only when whole (it still has 0 keys), never
    // said it was synced, and the active never counted it as attached.
    const primaryStalls = await metric(primary.http, 'twinstar_event_loop_stalls_total');
    await backup.kill();
    await waitFor(
      async () => (await primary.status()).degraded,
      10_000,
      'the active to notice its passive is gone',
    );
    // The kill must land mid-snapshot. On a loaded machine the rest of the stream can already sit
    // in the kernel's buffers when the passive is seen with 0 keys, and it completes its sync just
    // before the SIGKILL (its own "synced" line may then be lost with its async log). The active's
    // "passive attached" line tells: it carries the passive's acknowledged sequence, which must then
    // cover the whole snapshot (an attachment before that would be the bug this test looks for).
    // Such a round proves nothing, so it is run again, at most three times in all.
    let attempts = 0;
    for (;;) {
      attempts++;
      const attachedBefore = attachedLines();
      const second = start('backup');
      await second.ready('PASSIVE');
      await crossed(ports.primary.heartbeat, IN_FLIGHT_BYTES, 30_000);
      await assertMidSnapshot(second);
      await second.kill();
      await within(second.closed, 10_000, "the killed passive's last log lines");
      expect((await fetch(`${primary.http}/healthz`)).status).to.equal(200);
      const seq = await within(w.set(`/big/after/${attempts}`, 'ok'), 5000, 'a write after the passive died');
      expect(seq).to.be.greaterThan(200_000);
      const attached = primary
        .logs((l) => String(l.msg).startsWith('passive attached'))
        .slice(attachedBefore);
      // An active that counts a passive must have had all 200,000 keys acknowledged by it.
      if (attached.length > 0)
        expect(Number(attached[0]!.acked), 'attached before the snapshot was acknowledged').to.be.at.least(
          200_000,
        );
      if (attached.length === 0 && syncedLines(second) === 0) break; // killed mid-snapshot
      expect(attempts, 'the kill never landed mid-snapshot in three rounds').to.be.below(3);
      await waitFor(async () => (await primary.status()).degraded, 10_000, 'the active to notice again');
    }
    expect(await metric(primary.http, 'twinstar_event_loop_stalls_total')).to.equal(
      primaryStalls,
      'the active never stalled',
    );
    // The other way round: the active dies while the new passive is still receiving. The active is
    // frozen (SIGSTOP) first, so that the passive can be seen mid-snapshot at the moment the
    // stream stops (what the sockets still buffer is a few MB of the 30), then killed. The passive
    // must stay responsive and never expose half a snapshot. Only a passive that completed its
    // sync may take over (promise 1): this one refuses a vote and stays PASSIVE with nothing (what
    // clients see then is no-history.test.ts's subject).
    const third = start('backup');
    await third.ready('PASSIVE');
    await crossed(ports.primary.heartbeat, IN_FLIGHT_BYTES, 30_000);
    primary.signal('SIGSTOP');
    const thirdStalls = await metric(third.http, 'twinstar_event_loop_stalls_total');
    await assertMidSnapshot(third);
    await primary.kill();
    expect((await fetch(`${third.http}/healthz`)).status).to.equal(200);
    await waitFor(
      async () => (await third.status()).peer!.lastHeardMs > 3 * 500,
      10_000,
      'three failover timeouts of silence',
    );
    // A vote now would promote a passive that holds the history: this one must refuse it.
    const voter = new zmq.Dealer({ linger: 0 });
    voter.connect(third.endpoint);
    try {
      await voter.send([Buffer.from(Native.VOTE), encodeRequestId(1)]);
      const [tag, , state, reason] = await within(voter.receive(), 5000, 'an answer to the vote');
      expect([tag, state, reason].map(String)).to.deep.equal([Native.NOT_ACTIVE, 'PASSIVE', 'no-history']);
    } finally {
      voter.close();
    }
    const status = await third.status();
    expect(status.state, 'a passive with half a snapshot took over').to.equal('PASSIVE');
    expect(status.keys, 'half a snapshot exposed').to.equal(0);
    expect(status.history).to.equal('incomplete');
    expect(syncedLines(third), 'the passive completed its sync from a dead active').to.equal(0);
    expect((await fetch(`${third.http}/readyz`)).status).to.equal(503);
    expect(await metric(third.http, 'twinstar_event_loop_stalls_total')).to.equal(
      thirdStalls,
      'the passive never stalled',
    );
  });

  it('refuses to pair, loudly, when the timing settings differ', async () => {
    const primary = start('primary', { failoverMs: 500 });
    const backup = start('backup', { failoverMs: 700 });
    await waitFor(async () => (await primary.status()).peerRefused !== null, 10_000, 'the primary to refuse');
    await waitFor(async () => (await backup.status()).peerRefused !== null, 10_000, 'the backup to refuse');
    expect((await primary.status()).peerRefused).to.match(/failoverMs=700/);
    expect((await backup.status()).state).to.equal('BACKUP', 'never follows a peer it refuses');
    expect(backup.logs((l) => l.msg === 'refusing to pair with peer').length).to.be.greaterThan(0);
    expect(await metric(primary.http, 'twinstar_peer_refused')).to.equal(1);
  });

  it('promise 5: a TTL key expires on time across a failover, expired by the new active', async () => {
    const { primary, backup } = await startPair();
    const c = await client('/ttl/');
    const setAt = Date.now();
    const seq = await c.set('/ttl/k', 'v', { ttl: 2 });
    const gone = new Promise<Update>((resolve) =>
      c.on('update', (u) => u.key === '/ttl/k' && u.deleted && resolve(u)),
    );
    await primary.kill();
    const u = await within(gone, 10_000, 'the expiry after the failover');
    const elapsed = Date.now() - setAt;
    expect(elapsed).to.be.at.least(1950, 'not before the deadline');
    expect(elapsed).to.be.below(2000 + 3000, 'the new active honoured the remaining time');
    expect(u.seq).to.be.greaterThan(seq);
    expect(c.server).to.equal(backup.endpoint);
    expect(await metric(backup.http, 'twinstar_updates_total', { source: 'ttl' })).to.equal(1);
  });

  it('Model Six: the passive holds CHP updates on its pending list and applies unmatched ones at promotion', async () => {
    const { primary, backup } = await startPair();
    const watcher = await client('/ms/');
    const toPrimary = new zmq.Publisher({ linger: 0 });
    const toBackup = new zmq.Publisher({ linger: 0 });
    toPrimary.connect(`tcp://127.0.0.1:${ports.primary.port + 2}`);
    toBackup.connect(`tcp://127.0.0.1:${ports.backup.port + 2}`);
    try {
      const kvset = (key: string, uuid: number) =>
        encodeKvMsg({
          key,
          sequence: 0,
          uuid: Buffer.alloc(16, uuid).toString('latin1'),
          properties: '',
          body: Buffer.from(key),
        });
      // Both collectors get the same update (Model Six): the active applies it, the passive matches it.
      await waitFor(
        async () => {
          await toPrimary.send(kvset('/ms/both', 1));
          await toBackup.send(kvset('/ms/both', 1));
          return watcher.get('/ms/both') !== undefined;
        },
        5000,
        'the update sent to both to be applied',
      );
      await waitFor(async () => (await backup.status()).pending === 0, 5000, 'the passive to match it');
      // An update only the passive got (the active never saw it) stays pending...
      await waitFor(
        async () => {
          await toBackup.send(kvset('/ms/orphan', 2));
          return (await backup.status()).pending === 1;
        },
        5000,
        'the orphan to be held',
      );
      expect(watcher.get('/ms/orphan')).to.equal(undefined);
      // ...and is applied, freshly sequenced, when the passive takes over.
      await primary.kill();
      await waitFor(
        () => watcher.getString('/ms/orphan') === '/ms/orphan',
        10_000,
        'the orphan after promotion',
      );
      expect((await backup.status()).pending).to.equal(0);
      expect(await metric(backup.http, 'twinstar_updates_total', { source: 'pending' })).to.equal(1);
    } finally {
      toPrimary.close();
      toBackup.close();
    }
  });
});
