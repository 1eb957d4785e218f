/**
 * A client on the fake pair for the KV-parity tests (kv-*.test.ts): A active, B passive, the
 * client ready on A past its subscription-confirming resume.
 */
import { expect } from 'chai';
import { Client, type ClientOptions, type Update } from '../../../src/client/client.js';
import { FakeNetwork, type FakeServer } from './fake-server.js';

export const A = 'tcp://127.0.0.1:5556';
export const B = 'tcp://127.0.0.1:5566';
export const SERVER_TIMEOUT = 500;

export interface KvHarness {
  net: FakeNetwork;
  a: FakeServer;
  b: FakeServer;
  client: Client;
  updates: Update[];
}

const clients: Client[] = [];

export async function closeClients(): Promise<void> {
  for (const client of clients.splice(0)) await client.close();
}

export async function readyOnA(
  prepare: (a: FakeServer) => void = () => undefined,
  options: Partial<ClientOptions> = {},
): Promise<KvHarness> {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE' });
  const b = net.addServer(B, { state: 'PASSIVE' });
  prepare(a);
  const client = new Client({
    servers: [A, B],
    serverTimeoutMs: SERVER_TIMEOUT,
    mode: 'native',
    transport: net.transport,
    clock: net.clock,
    ...options,
  });
  clients.push(client);
  const updates: Update[] = [];
  client.on('update', (u) => updates.push(u));
  await net.settle();
  await client.ready(1000);
  await net.advance(200);
  expect(client.server).to.equal(A);
  return { net, a, b, client, updates };
}

/** A fails (dies), B takes over with A's whole state; the client finds B. */
export async function failover(h: KvHarness): Promise<void> {
  h.b.copyFrom(h.a);
  h.a.setState('DEAD');
  h.b.promote();
  await h.net.advance(SERVER_TIMEOUT + 400);
  expect(h.client.server).to.equal(B);
}

/** Follows a promise's outcome without awaiting it (and without leaving a rejection unhandled). */
export interface Tracked<T> {
  status: 'pending' | 'resolved' | 'rejected';
  value?: T;
  error?: unknown;
}
export function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { status: 'pending' };
  promise.then(
    (value) => Object.assign(t, { status: 'resolved', value }),
    (error: unknown) => Object.assign(t, { status: 'rejected', error }),
  );
  return t;
}

/** Takes the next `n` items of an iterator, failing if they do not come while the wire settles. */
export async function take<T>(it: AsyncIterator<T>, n: number, net: FakeNetwork): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const next = track(it.next());
    for (let turn = 0; turn < 50 && next.status === 'pending'; turn++) await net.advance(10);
    if (next.status === 'rejected') throw next.error;
    expect(next.status, `item ${i} of ${n} came`).to.equal('resolved');
    const result = next.value as IteratorResult<T>;
    expect(result.done, `item ${i} of ${n} is not the end`).to.not.equal(true);
    out.push(result.value as T);
  }
  return out;
}
