/**
 * The passive answers a native write it holds (issue 18): three one-way hops instead of four, on
 * real server processes. The client names its DEALERs alike on both nodes, the active hands each
 * write's TACK to the passive after the changes (TRRELAY), and the passive sends it once it has
 * applied and flushed them, counting it in `twinstar_relayed_acks_total`. The active still answers
 * when the passive acknowledges, so a client the passive cannot reach loses nothing.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import { connect, type Client } from '../../src/client/index.js';
import { encodeRequestId, Native, packBatch } from '../../src/wire/index.js';
import { newUuid } from '../../src/core/index.js';
import { metric, pairOptions, pairPorts, ServerProcess, waitFor, within } from '../helpers/index.js';

const WRITES = 200;

describe('relayed acknowledgements: the passive answers writes it holds (issue 18)', function () {
  this.timeout(60_000);
  let primary: ServerProcess | undefined;
  let backup: ServerProcess | undefined;
  let client: Client | undefined;
  const relayed = (outcome: string) => metric(backup!.http, 'twinstar_relayed_acks_total', { outcome });

  before(async () => {
    const { primary: p, backup: b } = pairOptions(await pairPorts());
    primary = new ServerProcess(p);
    backup = new ServerProcess(b);
    await primary.ready('ACTIVE', 20_000);
    await backup.ready('PASSIVE', 20_000);
    await primary.ready((s) => !s.degraded, 20_000);
  });

  afterEach(async () => {
    await client?.close();
    client = undefined;
  });

  after(async () => {
    await primary?.stop();
    await backup?.stop();
  });

  it('a client connected to both nodes has its writes answered by the passive, each once', async () => {
    client = await connect({
      servers: [primary!.endpoint, backup!.endpoint],
      mode: 'native',
      subtree: '/other/',
    });
    const before = await relayed('sent');
    for (let i = 0; i < WRITES; i++) await within(client.set(`/relay/${i}`, `v${i}`), 10_000, `write ${i}`);
    // Each awaited set() is one TSET, relayed once; the passive counts each TACK it sent.
    await waitFor(
      async () => (await relayed('sent')) - before >= WRITES,
      10_000,
      'the passive to count its TACKs',
    );
    expect((await relayed('sent')) - before).to.equal(WRITES);
    expect(await relayed('undeliverable')).to.equal(0);
    // Its requests, and the TACKs, took the request lane on both nodes (not the ROUTER on P).
    expect(await metric(primary!.http, 'twinstar_request_lane_connections')).to.equal(1);
    expect(await metric(backup!.http, 'twinstar_request_lane_connections')).to.equal(1);
  });

  it('a client the passive cannot reach still has every write acknowledged, by the active', async () => {
    // Only the active's address: no DEALER to the passive, so its TACKs have nowhere to go.
    client = await connect({ servers: [primary!.endpoint], mode: 'native', subtree: '/other/' });
    const sentBefore = await relayed('sent');
    for (let i = 0; i < 50; i++) await within(client.set(`/alone/${i}`, `v${i}`), 10_000, `write ${i}`);
    await waitFor(
      async () => (await relayed('undeliverable')) >= 50,
      10_000,
      'the undeliverable TACKs counted',
    );
    expect(await relayed('undeliverable')).to.equal(50);
    expect(await relayed('sent'), 'none sent to another client').to.equal(sentBefore);
  });

  it('a client with an id libzmq made up (one per node) is never relayed to', async () => {
    // A raw DEALER: the ROUTER names it, so the same id on the passive would be another client's.
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(primary!.endpoint);
    try {
      const before = [await relayed('sent'), await relayed('undeliverable')];
      const entry = {
        key: '/raw/1',
        sequence: 0,
        uuid: newUuid(),
        properties: '',
        body: Buffer.from('v'),
        expiresAt: 0,
      };
      await dealer.send([Buffer.from(Native.SET), encodeRequestId(1), packBatch([entry])]);
      const [tag] = await within(dealer.receive(), 10_000, 'the TACK');
      expect(tag!.toString()).to.equal('TACK');
      // The channel works (the passive's counters move for a client that qualifies) ...
      client = await connect({
        servers: [primary!.endpoint, backup!.endpoint],
        mode: 'native',
        subtree: '/other/',
      });
      await client.set('/raw/2', 'v');
      await waitFor(async () => (await relayed('sent')) > before[0]!, 10_000, 'a relayed TACK');
      // ... and moved by exactly that one write: nothing for the raw DEALER's.
      expect([await relayed('sent'), await relayed('undeliverable')]).to.deep.equal([
        before[0]! + 1,
        before[1],
      ]);
    } finally {
      dealer.close();
    }
  });
});
