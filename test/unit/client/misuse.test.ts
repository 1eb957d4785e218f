/**
 * Misuse is reported the way README "Errors" promises: every promise-returning method rejects
 * with a typed TwinstarError (never a synchronous throw, never a raw TypeError); keys and prefixes
 * outside the client's subtree are refused for reads and watches (InvalidArgumentError thrown by
 * the synchronous get/entries/watch), while writes there are allowed and resolve on the server's
 * acknowledgement; getJson of a value that is not JSON throws ValueFormatError. Fake clock and
 * transport (fake-server.ts).
 */
import { expect } from 'chai';
import { Client } from '../../../src/client/client.js';
import { Native } from '../../../src/wire/index.js';
import { InvalidArgumentError, TwinstarError, ValueFormatError } from '../../../src/errors.js';
import { FakeNetwork, type FakeServer } from './fake-server.js';
import { rejection } from './rejection.js';

const A = 'tcp://127.0.0.1:5556';
const clients: Client[] = [];

async function readyClient(subtree: string): Promise<{ net: FakeNetwork; a: FakeServer; client: Client }> {
  const net = new FakeNetwork({ heartbeatMs: 100 });
  const a = net.addServer(A, { state: 'ACTIVE' });
  a.set('/app/json', '{"x":1}');
  a.set('/app/text', 'not json {');
  a.set('/other/k', 'outside');
  const client = new Client({
    servers: [A],
    subtree,
    mode: 'native',
    transport: net.transport,
    clock: net.clock,
  });
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
  const outcome = await rejection(call);
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
      await rejectsWith(() => client.set('/other/k', ''), InvalidArgumentError);
      await rejectsWith(() => client.set('/app/big', Buffer.alloc(2 * 1024 * 1024, 1)), InvalidArgumentError);
      await net.advance(200);
      expect(a.requestsOf(Native.SET)).to.have.length(0);
      // and the channel works: a valid write does reach it
      expect(await client.set('/app/ok', 'v')).to.equal(4);
      expect(a.requestsOf(Native.SET)).to.have.length(1);
    });
  });

  describe("keys outside the client's subtree", () => {
    it("set, setJson and delete of keys outside the subtree are allowed and resolve on the server's acknowledgement, without waiting for the replica (which never sees them)", async () => {
      const { net, a, client } = await readyClient('/app/');
      // Every update is held back: a write that waited for this client's replica could not resolve.
      a.holdPublished();
      const outcomes = new Map<string, unknown>();
      const track = (name: string, p: Promise<number>) =>
        p.then(
          (seq) => outcomes.set(name, seq),
          (error: unknown) => outcomes.set(name, error),
        );
      track('inside', client.set('/app/k', 'v'));
      track('set', client.set('/other/k', 'v2'));
      track('setJson', client.setJson('/other/j', { x: 1 }));
      track('delete', client.delete('/other/k'));
      await net.settle();
      // the channel works: the write inside the subtree is held by read-your-writes
      expect(outcomes.has('inside'), 'inside the subtree: waits for the replica').to.equal(false);
      expect(a.requestsOf(Native.SET).flatMap((r) => r.writes.map((w) => w.key))).to.have.members([
        '/app/k',
        '/other/k',
        '/other/j',
        '/other/k',
      ]);
      // sequences 4 (/app/k), 5, 6, 7 in the order of issue
      expect(outcomes.get('set')).to.equal(5);
      expect(outcomes.get('setJson')).to.equal(6);
      expect(outcomes.get('delete')).to.equal(7);
      expect(a.changesOf('/other/j')).to.equal(1);
      // the replica does not hold them, and reading them is still refused
      expect(() => client.get('/other/j')).to.throw(InvalidArgumentError);
      a.releasePublished();
      await net.settle();
      expect(outcomes.get('inside')).to.equal(4);
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
