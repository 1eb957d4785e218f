/**
 * The client's facade (src/client/client.ts, events.ts): every event and every settled promise
 * reaches the application on the next tick, in order, never inside the client's own handling of a
 * message; watch() sees each change once even when it starts between a change and its event;
 * closed() resolves once the client has closed.
 */
import { expect } from 'chai';
import { Client } from '../../../src/client/client.js';
import { LaterQueue } from '../../../src/client/events.js';
import type { Transport } from '../../../src/client/link.js';
import type { Update } from '../../../src/client/events.js';
import { ClosedError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log/index.js';
import { FakeNetwork } from './fake-server.js';

const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';

/** The fake transport, with a flag that is true while the client handles a message. */
function watched(net: FakeNetwork): {
  transport: Transport;
  state: { inHandler: boolean; after?: () => void };
} {
  const state: { inHandler: boolean; after?: () => void } = { inHandler: false };
  const wrap = (handle: (frames: Buffer[]) => void) => (frames: Buffer[]) => {
    state.inHandler = true;
    try {
      handle(frames);
    } finally {
      state.inHandler = false;
    }
    const after = state.after;
    state.after = undefined;
    after?.();
  };
  const transport: Transport = (address, handlers) =>
    net.transport(address, { reply: wrap(handlers.reply), update: wrap(handlers.update) });
  return { transport, state };
}

const clients: Client[] = [];

function setup() {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE' });
  net.addServer(B, { state: 'PASSIVE' });
  a.set('/k1', 'v1');
  const { transport, state } = watched(net);
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: 500,
    mode: 'native',
    transport,
    clock: net.clock,
    random: () => 0,
  });
  clients.push(client);
  return { net, a, client, state };
}

describe('Client facade', function () {
  this.timeout(10_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  it("emits 'ready', 'update' and status events outside the handling of the message that caused them", async () => {
    const s = setup();
    const inside: string[] = [];
    const seen: string[] = [];
    for (const name of ['ready', 'update', 'status'] as const)
      s.client.on(name, () => {
        seen.push(name);
        if (s.state.inHandler) inside.push(name);
      });
    await s.client.ready(1000);
    await s.net.advance(200);
    s.a.set('/k2', 'v2');
    await s.net.advance(200);
    expect(seen, 'the events came').to.include.members(['ready', 'update']);
    expect(inside, 'none while the client was handling a message').to.deep.equal([]);
  });

  it('a write resolves after the update it acknowledged was emitted (read-your-writes keeps its order)', async () => {
    const s = setup();
    await s.client.ready(1000);
    await s.net.advance(200);
    const order: string[] = [];
    s.client.on('update', (u) => order.push(`update ${u.key}`));
    const write = s.client.set('/w', 'x').then(() => order.push('resolved'));
    await s.net.advance(200);
    await write;
    expect(order).to.deep.equal(['update /w', 'resolved']);
  });

  it('watch() started between a change and its event gets that change once, as an initial value', async () => {
    const s = setup();
    await s.client.ready(1000);
    await s.net.advance(200);
    const got: Update[] = [];
    let watching: Promise<void> | undefined;
    // Right after the client applied /k2 (its event still queued), start a watch.
    s.state.after = () => {
      const stream = s.client.watch('/');
      watching = (async () => {
        for await (const u of stream) got.push(u);
      })();
    };
    s.a.set('/k2', 'v2');
    await s.net.advance(200);
    s.a.set('/k3', 'v3');
    await s.net.advance(200);
    await s.client.close();
    await watching;
    expect(got.map((u) => u.key)).to.deep.equal(['/k1', '/k2', '/k3']);
  });

  it('view() copies the replica as synced: each entry with its uuid and TTL deadline, the sequence and the term', async () => {
    const s = setup();
    expect(s.client.view().sequence, 'before the first sync').to.equal(-1);
    const ttl = s.a.set('/ttl', 'v');
    s.a.map.set('/ttl', { ...ttl, properties: 'ttl=60\n', expiresAt: 1_800_000_060_000 });
    await s.client.ready(1000);
    const view = s.client.view();
    expect(view.sequence).to.equal(s.a.sequence);
    expect(view.term).to.equal(s.a.term).and.to.not.equal('');
    const byKey = new Map(view.entries.map((e) => [e.key, e]));
    expect(byKey.get('/ttl')).to.deep.equal(s.a.map.get('/ttl'));
    expect(byKey.get('/k1')).to.deep.equal(s.a.map.get('/k1'));
    expect(byKey.get('/k1')!.uuid).to.have.length(16);
    expect(byKey.size).to.equal(2);
  });

  it('closed() is pending while the client runs and resolves after close(), after the close event; never rejects', async () => {
    const s = setup();
    let closedAt = '';
    let closeEvent = false;
    s.client.on('close', () => (closeEvent = true));
    void s.client.closed().then(() => (closedAt = closeEvent ? 'after close event' : 'before close event'));
    const write = s.client.set('/k', 'v').then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await s.net.advance(100);
    expect(closedAt, 'still open').to.equal('');
    await s.client.close();
    await s.client.closed();
    expect(closedAt).to.equal('after close event');
    const after = await write;
    expect(after === 'resolved' || after instanceof ClosedError, String(after)).to.equal(true);
    expect(await s.client.closed(), 'again: already resolved').to.equal(undefined);
  });
});

describe('LaterQueue', () => {
  it('runs steps on the next tick, in order, steps queued while running after the others; a throwing step stops none', async () => {
    const q = new LaterQueue(silentLogger());
    const order: string[] = [];
    q.later(() => order.push('a'));
    q.later(() => {
      order.push('b');
      q.later(() => order.push('d'));
      throw new Error('a listener bug');
    });
    q.later(() => order.push('c'));
    expect(order, 'nothing at once').to.deep.equal([]);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(order).to.deep.equal(['a', 'b', 'c', 'd']);
    q.later(() => order.push('e'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order, 'the queue runs again after a pass').to.deep.equal(['a', 'b', 'c', 'd', 'e']);
  });
});
