/**
 * 'update' events of a first load (issue 18): when no 'update' listener exists at the moment the
 * first snapshot's changes would be emitted, the client makes no Update objects for them; whoever
 * listens from the start still gets every key once, in sequence order, and a listener or a watch()
 * that comes later gets what follows, each change once. Fake clock, fake transport.
 */
import { expect } from 'chai';
import { Client, type Update } from '../../../src/client/client.js';
import { FakeNetwork } from './fake-server.js';

const A = 'tcp://127.0.0.1:5556';
const B = 'tcp://127.0.0.1:5566';

function pair(keys: number): { net: FakeNetwork; client: Client; set(key: string, value: string): void } {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE', chunk: 3 });
  net.addServer(B, { state: 'PASSIVE' });
  for (let i = 0; i < keys; i++) a.set(`/k/${i}`, `v${i}`);
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: 500,
    mode: 'native',
    transport: net.transport,
    clock: net.clock,
  });
  return { net, client, set: (key, value) => a.set(key, value) };
}

const brief = (updates: readonly Update[]) => updates.map((u) => `${u.key}=${u.value?.toString()}@${u.seq}`);

describe("Client: the first load's 'update' events", function () {
  this.timeout(10_000);
  const clients: Client[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  it('a listener there from the start gets every key of the first load once, in sequence order', async () => {
    const { net, client } = pair(7);
    clients.push(client);
    const updates: Update[] = [];
    client.on('update', (u) => updates.push(u));
    await net.settle();
    await client.ready(1000);
    expect(brief(updates)).to.deep.equal([0, 1, 2, 3, 4, 5, 6].map((i) => `/k/${i}=v${i}@${i + 1}`));
  });

  it('with no listener during the first load, a listener added after ready() gets only the later changes, and a watch() gets the replica then those changes, each once', async () => {
    const { net, client, set } = pair(7);
    clients.push(client);
    await net.settle();
    await client.ready(1000);
    await net.advance(200);
    expect(client.entries().size).to.equal(7);
    const later: Update[] = [];
    client.on('update', (u) => later.push(u));
    const watch = client.watch('/k/');
    set('/k/1', 'changed');
    set('/k/new', 'added');
    await net.settle();
    expect(brief(later)).to.deep.equal(['/k/1=changed@8', '/k/new=added@9']);
    const seen: string[] = [];
    for (let i = 0; i < 9; i++) {
      const { value } = await watch.next();
      seen.push(`${(value as Update).key}=${(value as Update).value?.toString()}`);
    }
    expect(seen.slice(0, 7).sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6].map((i) => `/k/${i}=v${i}`).sort());
    expect(seen.slice(7)).to.deep.equal(['/k/1=changed', '/k/new=added']);
  });
});
