/**
 * Misuse is reported the way README "Errors" promises: every promise-returning method rejects
 * with a typed TwinstarError (never a synchronous throw, never a raw TypeError); keys and prefixes
 * outside the client's subtree are refused for writes (rejection), reads and watches
 * (InvalidArgumentError thrown by the synchronous get/entries/watch); getJson of a value that is
 * not JSON throws ValueFormatError. Fake clock and transport (fake-server.ts).
 */
import { expect } from 'chai';
import { Client } from '../../../src/client/client.js';
import { Native } from '../../../src/clone/index.js';
import { InvalidArgumentError, TwinstarError, ValueFormatError } from '../../../src/errors.js';
import { FakeNetwork, type FakeServer } from './fake-server.js';

const A = 'tcp://127.0.0.1:5556';
const clients: Client[] = [];

async function readyClient(subtree: string): Promise<{ net: FakeNetwork; a: FakeServer; client: Client }> {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE' });
  a.set('/app/json', '{"x":1}');
  a.set('/app/text', 'not json {');
  a.set('/other/k', 'outside');
  const client = new Client({ servers: [A], subtree, transport: net.transport, clock: net.clock });
  clients.push(client);
  await net.settle();
  await client.ready(1000);
  await net.advance(200);
  return { net, a, client };
}

/** `call` returns a promise (it does not throw) that rejects with `type`; returns the error. */
async function rejectsWith(
  call: () => Promise<unknown>,
  type: new (...args: never[]) => Error,
): Promise<Error> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    throw new Error(`threw synchronously instead of rejecting: ${String(error)}`);
  }
  let outcome: unknown = 'resolved';
  await promise.then(
    () => undefined,
    (error: unknown) => (outcome = error),
  );
  expect(outcome).to.be.instanceOf(type);
  expect(outcome).to.be.instanceOf(TwinstarError);
  return outcome as Error;
}

describe('Client: misuse is reported with typed errors', function () {
  this.timeout(10_000);

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });

  describe('promise-returning methods reject, never throw', () => {
    it("set('') rejects with InvalidArgumentError", async () => {
      const { client } = await readyClient('');
      await rejectsWith(() => client.set('', 'v'), InvalidArgumentError);
      await rejectsWith(() => client.delete(''), InvalidArgumentError);
      await rejectsWith(() => client.set(undefined as unknown as string, 'v'), InvalidArgumentError);
    });

    it('a 2 MB value rejects with InvalidArgumentError', async () => {
      const { client } = await readyClient('');
      const error = await rejectsWith(
        () => client.set('/big', Buffer.alloc(2 * 1024 * 1024, 1)),
        InvalidArgumentError,
      );
      expect(error.message).to.contain('limit');
    });

    it('setJson of a circular object rejects with InvalidArgumentError, not a raw TypeError', async () => {
      const { client } = await readyClient('');
      const circular: Record<string, unknown> = { a: 1 };
      circular.self = circular;
      const error = await rejectsWith(() => client.setJson('/c', circular), InvalidArgumentError);
      expect(error).to.not.be.instanceOf(TypeError);
      await rejectsWith(() => client.setJson('/c', 10n), InvalidArgumentError);
      await rejectsWith(() => client.setJson('/c', () => 1), InvalidArgumentError);
    });

    it('bad values and options reject: a number as value, options null, ttl not a number', async () => {
      const { client } = await readyClient('');
      await rejectsWith(() => client.set('/k', 42 as unknown as string), InvalidArgumentError);
      await rejectsWith(
        () => client.set('/k', 'v', null as unknown as { ttl: number }),
        InvalidArgumentError,
      );
      await rejectsWith(() => client.set('/k', 'v', { ttl: '5' as unknown as number }), InvalidArgumentError);
    });

    it('nothing refused reaches the server', async () => {
      const { net, a, client } = await readyClient('/app/');
      await rejectsWith(() => client.set('', 'v'), InvalidArgumentError);
      await rejectsWith(() => client.set('/other/k', 'v'), InvalidArgumentError);
      await rejectsWith(() => client.set('/app/big', Buffer.alloc(2 * 1024 * 1024, 1)), InvalidArgumentError);
      await net.advance(200);
      expect(a.requestsOf(Native.SET)).to.have.length(0);
      // and the channel works: a valid write does reach it
      expect(await client.set('/app/ok', 'v')).to.equal(4);
      expect(a.requestsOf(Native.SET)).to.have.length(1);
    });
  });

  describe("keys outside the client's subtree", () => {
    it("set('/other/k') and delete('/other/k') reject with InvalidArgumentError (they used to resolve while get() returned undefined)", async () => {
      const { client } = await readyClient('/app/');
      const error = await rejectsWith(() => client.set('/other/k', 'v'), InvalidArgumentError);
      expect(error.message).to.contain('subtree');
      await rejectsWith(() => client.delete('/other/k'), InvalidArgumentError);
      await rejectsWith(() => client.setJson('/other/j', { x: 1 }), InvalidArgumentError);
      // inside the subtree it works
      await client.set('/app/k', 'v');
      expect(client.getString('/app/k')).to.equal('v');
    });

    it('get, getString, getJson and entries throw InvalidArgumentError for a key or prefix outside the subtree', async () => {
      const { client } = await readyClient('/app/');
      expect(client.getString('/app/json')).to.equal('{"x":1}');
      expect(() => client.get('/other/k')).to.throw(InvalidArgumentError);
      expect(() => client.getString('/other/k')).to.throw(InvalidArgumentError);
      expect(() => client.getJson('/other/k')).to.throw(InvalidArgumentError);
      expect(() => client.entries('/other/')).to.throw(InvalidArgumentError);
      // a prefix wider than the subtree would silently miss the keys outside it
      expect(() => client.entries('/')).to.throw(InvalidArgumentError);
      expect([...client.entries('/app/').keys()].sort()).to.deep.equal(['/app/json', '/app/text']);
    });

    it("watch('/other/') throws InvalidArgumentError synchronously; watch inside the subtree still works", async () => {
      const { net, a, client } = await readyClient('/app/');
      expect(() => client.watch('/other/')).to.throw(InvalidArgumentError);
      expect(() => client.watch('/')).to.throw(InvalidArgumentError);
      const it = client.watch('/app/', { initial: false });
      a.set('/app/new', 'n');
      await net.advance(100);
      const first = await it.next();
      expect(first.value).to.include({ key: '/app/new' });
      await it.return!();
    });
  });

  describe('getJson', () => {
    it('throws ValueFormatError (ERR_VALUE_FORMAT, with the key) for a value that is not JSON', async () => {
      const { client } = await readyClient('/app/');
      expect(client.getJson('/app/json')).to.deep.equal({ x: 1 });
      expect(client.getJson('/app/absent')).to.equal(undefined);
      let thrown: unknown;
      try {
        client.getJson('/app/text');
      } catch (error) {
        thrown = error;
      }
      expect(thrown).to.be.instanceOf(ValueFormatError);
      expect(thrown).to.include({ code: 'ERR_VALUE_FORMAT', key: '/app/text' });
    });
  });
});
