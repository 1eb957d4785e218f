/**
 * How the client finds the active, against real servers: a connecting watcher never promotes the
 * passive while the active answers (promise 3) but does vote once the active is gone; a server
 * with a 1 s heartbeat is not called silent by a client with a 500 ms server timeout; and close()
 * delivers plain CHP writes before it closes the sockets.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { expect } from 'chai';
import { connect, type Client } from '../../src/index.js';
import { Node } from '../../src/pair/index.js';
import { startNode, Wire } from '../helpers/in-process-pair.js';
import { missedWhileConnecting } from '../helpers/connect-during-writes.js';
import { freePorts, startSingle, waitFor, type ServerProcess } from '../helpers/index.js';

describe('client: finding the active (real servers)', function () {
  this.timeout(60_000);
  const clients: Client[] = [];
  const nodes: Node[] = [];
  const procs: ServerProcess[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(nodes.splice(0).map((n) => n.close()));
    await Promise.all(procs.splice(0).map((p) => p.kill()));
  });

  /** A lone server process, active: its endpoint, as a client's `servers`. */
  async function lone(extraArgs: string[] = []): Promise<string[]> {
    const [port, http] = await freePorts(5).then((p) => [p, p + 4] as const);
    const server = startSingle(port, http, extraArgs);
    procs.push(server);
    await server.ready('ACTIVE');
    return [`tcp://127.0.0.1:${port}`];
  }

  it('promise 3: a watcher that connects while the peer link is cut never promotes the passive; once the active is gone it votes and the passive takes over', async () => {
    const cable = new Wire();
    const [pn, bn] = [
      await startNode('primary', cable, { failoverMs: 300 }),
      await startNode('backup', cable, { failoverMs: 300 }),
    ];
    const { node: primary } = pn;
    const { node: backup } = bn;
    nodes.push(primary, backup);
    await waitFor(
      () => primary.state === 'ACTIVE' && backup.state === 'PASSIVE' && !primary.isDegraded(),
      5000,
      'the pair',
    );
    const both = [pn.endpoint, bn.endpoint];
    const writer = await connect({ servers: both, mode: 'native' });
    clients.push(writer);
    await writer.set('/f/before', '1');

    cable.cut();
    await waitFor(() => primary.isDegraded(), 5000, 'the primary to run degraded');
    await new Promise((resolve) => setTimeout(resolve, 600)); // past the backup's failover timeout

    // A read-only watcher connects now (default mode: auto) and watches for a while.
    const watcher = await connect({ servers: both, serverTimeoutMs: 300 });
    clients.push(watcher);
    const seen: string[] = [];
    watcher.on('update', (u) => seen.push(u.key));
    await writer.set('/f/during', '2');
    await waitFor(() => seen.includes('/f/during'), 5000, 'the watcher to see a write (it works)');
    // What the watcher went through in the window, for the message if it left the active. (Once in
    // CI it had no server at the end, not reproduced since: the nodes share this process, so a
    // stall of its event loop near serverTimeoutMs would look like a silent active.)
    const since = performance.now();
    const statuses: string[] = [];
    watcher.on('status', (s) =>
      statuses.push(`${Math.round(performance.now() - since)} ms: ${JSON.stringify(s)}`),
    );
    const stalls = monitorEventLoopDelay({ resolution: 10 });
    stalls.enable();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    stalls.disable();
    const story = `longest event-loop delay ${Math.round(stalls.max / 1e6)} ms; statuses: ${statuses.join('; ') || 'none'}`;
    expect(watcher.server, story).to.equal(both[0]);
    expect(backup.state, 'no vote reached the passive').to.equal('PASSIVE');
    expect(primary.state).to.equal('ACTIVE');

    // The active goes away: now the watcher finds it silent and votes for the passive.
    await primary.close();
    await waitFor(() => watcher.server === both[1], 10_000, 'the watcher to fail over by voting');
    expect(backup.state).to.equal('ACTIVE');
    // '/f/during' was acknowledged as degraded (the primary alone) and went with it; the watcher
    // converges on the new active
    await waitFor(() => watcher.get('/f/during') === undefined, 5000, 'the watcher to converge');
    expect(watcher.getString('/f/before')).to.equal('1');
  });

  it('plain CHP: a client that lists the passive first, or a primary that is down, connects well within the 3 s an assumed 1 s HUGZ interval gives (6 s and 3 s before)', async () => {
    const cable = new Wire();
    const [pn, bn] = [await startNode('primary', cable), await startNode('backup', cable)];
    nodes.push(pn.node, bn.node);
    await waitFor(
      () => pn.node.state === 'ACTIVE' && bn.node.state === 'PASSIVE' && !pn.node.isDegraded(),
      5000,
      'the pair',
    );
    /** A plain CHP client given 2.5 s to connect (each case took a 3 s timeout or two before). */
    const chpClient = async (servers: string[]) => {
      const client = await connect({ servers, mode: 'chp', connectTimeoutMs: 2500 });
      clients.push(client);
      return client;
    };
    // The passive asked first: its HUGZ advertise its interval, so it is left after the client's
    // serverTimeoutMs (500 ms), and the primary, asked while the client's subscriber to it
    // connects, is not taken for silent since the search began.
    const passiveFirst = await chpClient([bn.endpoint, pn.endpoint]);
    expect(passiveFirst.server).to.equal(pn.endpoint);
    expect(await passiveFirst.set('/chp-order/a', 'v')).to.equal(0); // plain CHP: not acknowledged

    // The primary is down and the backup took over (a native client voted): its ICANHAZ? cannot
    // be sent (no connection), so the primary is silent after serverTimeoutMs, not 3 s.
    await pn.node.close();
    const voter = await connect({ servers: [pn.endpoint, bn.endpoint], mode: 'native' });
    clients.push(voter);
    await waitFor(() => bn.node.state === 'ACTIVE', 10_000, 'the backup to take over');
    const primaryDown = await chpClient([pn.endpoint, bn.endpoint]);
    expect(primaryDown.server).to.equal(bn.endpoint);
  });

  it('a server with a 1 s heartbeat: an idle client with serverTimeoutMs 500 never fails over or resyncs', async () => {
    const servers = await lone(['--heartbeat-ms', '1000', '--failover-ms', '3000']);
    const idle = await connect({ servers, serverTimeoutMs: 500 });
    clients.push(idle);
    const events: string[] = [];
    for (const name of ['failover', 'resync', 'disconnected'] as const)
      idle.on(name, () => events.push(name));
    const writer = await connect({ servers, mode: 'native' });
    clients.push(writer);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await writer.set('/hb/k', 'v');
    await waitFor(() => idle.get('/hb/k') !== undefined, 5000, 'the idle client to still follow');
    expect(events).to.deep.equal([]);
  });

  it('close() in chp mode delivers a write made just before it (the collector connection was not up yet)', async () => {
    const servers = await lone();
    const chp = await connect({ servers, mode: 'chp' });
    expect(await chp.set('/chp/k', 'sent')).to.equal(0);
    await chp.close();
    const reader = await connect({ servers, mode: 'native' });
    clients.push(reader);
    await waitFor(() => reader.get('/chp/k') !== undefined, 5000, 'the write to have reached the server');
    expect(reader.getString('/chp/k')).to.equal('sent');
  });

  it('plain CHP clients that connect while a writer pipelines miss no update: they subscribe, wait for the subscriber to connect, ask, and apply what was published after the snapshot (86 of 100 missed some)', async function () {
    // Two holes, both on real sockets: the ICANHAZ? went before the new SUB's subscriptions were
    // in force, and updates published after the snapshot was taken but received before it ended
    // were dropped (before its first KVSYNC, as from a server not in use; during it, at KTHXBAI).
    this.timeout(60_000);
    const servers = await lone();
    const writer = await connect({ servers, mode: 'native' });
    clients.push(writer);
    const missed = await missedWhileConnecting(
      writer,
      async (subtree) => {
        const reader = await connect({ servers, mode: 'chp', subtree });
        clients.push(reader);
        expect(reader.mode).to.equal('chp');
        return reader;
      },
      { rounds: 10, readers: 5 },
    );
    expect(missed).to.deep.equal([]);
  });

  it('250 plain CHP clients and 250 auto-mode clients of one process connect at once to one server (libzmq allows 1023 sockets a context, and every client of the process shares one a host)', async function () {
    // Before, 127 to 146 of 200 clients connecting at once to a pair got in, the rest failed with
    // EMFILE (too many sockets on the shared context), and this test failed at once.
    this.timeout(60_000);
    const servers = await lone();
    for (const mode of ['chp', 'auto'] as const) {
      const results = await Promise.allSettled(
        Array.from({ length: 250 }, () => connect({ servers, mode, connectTimeoutMs: 30_000 })),
      );
      const connected = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      clients.push(...connected);
      const failures = new Set(results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : [])));
      expect([...failures], mode).to.deep.equal([]);
      expect(connected.map((c) => c.mode)).to.deep.equal(Array(250).fill(mode === 'auto' ? 'native' : mode));
    }
  });

  it('a reply that comes while the client still asks whether its new DEALER is writable is read: 1,000 plain CHP connects in a row, none waits for the 3 s timeout', async function () {
    // zeromq.js's `writable` reads ZMQ_EVENTS, which takes libzmq's wake-up for an incoming reply
    // and leaves the receive asleep until the next send; a plain CHP client sends nothing else, so
    // its snapshot waited for the timeout (3 s) and a second ICANHAZ?. That was 6 connects in 1,500.
    this.timeout(120_000);
    const servers = await lone();
    const slow: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const started = performance.now();
      // 2 s: far above a healthy connect here (median 1-2 ms), below the 3 s a stalled one takes
      const client = await connect({ servers, mode: 'chp', connectTimeoutMs: 2000 }).catch((e: Error) => e);
      if (client instanceof Error) slow.push(`#${i}: ${client.message}`);
      else {
        expect(client.mode).to.equal('chp');
        await client.close();
      }
      if (performance.now() - started > 2500)
        slow.push(`#${i} took ${Math.round(performance.now() - started)} ms`);
    }
    expect(slow).to.deep.equal([]);
  });
});
