/**
 * Session tokens against a real --curve server process (issue 13, B5): a token is good only on a
 * connection made with the CURVE key it names, and only for a limited time after it was minted.
 * Raw DEALERs stand in for clients so the test can pair any token with any key pair; each refusal
 * is waited for by its metric, after a control request over the same kind of socket has shown
 * that the channel answers.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { connect, type Client } from '../../src/index.js';
import { encodeRequestId, Native, packBatch, unpackBatch } from '../../src/wire/index.js';
import { newUuid } from '../../src/core/index.js';
import {
  curveClientOptions,
  generateKeyPair,
  sessionToken,
  writeKeyPair,
  type KeyPair,
} from '../../src/security/index.js';
import { freePorts, metric, startSingle, waitFor, within, type ServerProcess } from '../helpers/index.js';

describe('session tokens: bound to the key that made them, and short-lived (real process)', function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServerProcess | undefined;
  let port: number;
  const sockets: zmq.Socket[] = [];
  const clients: Client[] = [];
  const keys = {
    server: generateKeyPair(),
    ops: generateKeyPair(),
    limited: generateKeyPair(),
    other: generateKeyPair(),
  };

  const endpoint = () => `tcp://127.0.0.1:${port}`;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'twinstar-tokens-'));
    writeKeyPair(join(dir, 'server'), keys.server);
    const list = [
      { name: 'ops', publicKey: keys.ops.publicKey, read: ['*'], write: ['*'] },
      { name: 'limited', publicKey: keys.limited.publicKey, read: ['/a/'], write: ['/a/'] },
      // A listed key whose rights lie elsewhere: the attacker of B5.
      { name: 'other', publicKey: keys.other.publicKey, read: ['/c/'], write: ['/c/'] },
    ];
    writeFileSync(join(dir, 'clients.json'), JSON.stringify({ clients: list }));
    port = await freePorts(5);
    server = startSingle(port, port + 4, [
      '--curve',
      '--key-file',
      join(dir, 'server.key_secret'),
      '--clients-file',
      join(dir, 'clients.json'),
      '--session-lifetime-ms',
      '60000',
    ]);
    await server.ready('ACTIVE');
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && server)
      console.log(
        server.logLines
          .slice(-10)
          .map((l) => JSON.stringify(l))
          .join('\n'),
      );
    for (const s of sockets.splice(0)) s.close();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server?.kill();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** A raw DEALER that authenticates with `curveKeys` and presents `token` as its routing id. */
  function dealer(curveKeys: KeyPair, token: string): zmq.Dealer {
    const d = new zmq.Dealer({
      linger: 0,
      ...curveClientOptions(curveKeys, keys.server.publicKey),
      routingId: token,
    });
    sockets.push(d);
    d.connect(endpoint());
    return d;
  }

  /** Sends one request and returns the first reply to it (command, then its frames as text). */
  async function ask(d: zmq.Dealer, frames: Buffer[]): Promise<string[]> {
    await within(d.send(frames), 10_000, 'the request to be queued');
    const reply = await within(
      d.receive(),
      10_000,
      `a reply to ${frames[0]!.toString()} ${frames[1]!.readUInt32BE()}`,
    );
    return reply.map((f, i) => (i === 1 ? String(f.readUInt32BE()) : f.toString('latin1')));
  }

  /**
   * Asks for a snapshot of `subtree` and reads the whole answer: the keys served, or the TERROR
   * that refused it (its command, request id and reason).
   */
  async function readSnapshot(d: zmq.Dealer, reqId: number, subtree: string): Promise<string[]> {
    await within(d.send(snapshot(reqId, subtree)), 10_000, 'the request to be queued');
    const keysServed: string[] = [];
    for (let n = 0; n < 10_000; n++) {
      const [command, id, ...rest] = await within(d.receive(), 10_000, `a reply to snapshot ${reqId}`);
      const name = command!.toString();
      if (name === Native.SYNC) keysServed.push(...unpackBatch(rest[0]!).map((e) => e.key));
      else if (name === Native.SYNC_END) return ['served', ...keysServed];
      else return [name, String(id!.readUInt32BE()), (rest[0] ?? Buffer.alloc(0)).toString()];
    }
    throw new Error('a snapshot without end');
  }

  const snapshot = (reqId: number, subtree: string) => [
    Buffer.from(Native.SNAPSHOT),
    encodeRequestId(reqId),
    Buffer.from(subtree),
  ];
  const write = (reqId: number, key: string, value: string) => [
    Buffer.from(Native.SET),
    encodeRequestId(reqId),
    packBatch([
      { key, sequence: 0, uuid: newUuid(), properties: '', body: Buffer.from(value), expiresAt: 0 },
    ]),
  ];
  const badSessions = () =>
    metric(server!.http, 'twinstar_auth_failures_total', { socket: 'snapshot', reason: 'bad-session' });

  async function opsClient(): Promise<Client> {
    const c = await connect({
      servers: [endpoint()],
      mode: 'native',
      connectTimeoutMs: 15_000,
      curve: { ...keys.ops, serverPublicKey: keys.server.publicKey },
    });
    clients.push(c);
    return c;
  }

  it("a token of one listed key, presented on another listed key's connection, is refused as bad-session", async () => {
    const ops = await opsClient();
    await ops.set('/a/secret', 's1');

    // Control: the owner of the key, with its own token, reads and writes /a/ over a raw DEALER.
    const owner = dealer(keys.limited, sessionToken(keys.limited, keys.server.publicKey));
    expect(await readSnapshot(owner, 1, '/a/')).to.deep.equal(['served', '/a/secret']);
    const ownerWrite = await ask(owner, write(2, '/a/by-owner', 'ok'));
    expect(ownerWrite[0], ownerWrite.join(' ')).to.equal(Native.ACK);

    // The attack: a token for `limited` (made with the very helper the client library uses, as if
    // captured), presented by a connection that authenticated with the key `other`.
    const before = await badSessions();
    const captured = sessionToken(keys.limited, keys.server.publicKey);
    const thief = dealer(keys.other, captured);
    const read = await readSnapshot(thief, 3, '/a/');
    expect(read, 'the thief was served a snapshot of /a/').to.deep.equal([
      Native.ERROR,
      '3',
      'unauthenticated',
    ]);
    const wrote = await ask(thief, write(4, '/a/stolen', 'evil'));
    expect(wrote.slice(0, 3), 'the thief could write /a/').to.deep.equal([
      Native.ERROR,
      '4',
      'unauthenticated',
    ]);
    await waitFor(
      async () => (await badSessions()) >= before + 2,
      10_000,
      'both requests counted as bad-session',
    );

    // The token that served the owner, replayed by `other` once the server has seen the owner's
    // connection end (before that, libzmq would not even attach a second connection with its id).
    const used = owner.routingId!;
    const sessions = () => metric(server!.http, 'twinstar_client_sessions');
    const live = await sessions();
    expect(live, 'the owner and ops hold sessions').to.be.at.least(2);
    owner.close();
    await waitFor(async () => (await sessions()) < live, 10_000, "the owner's session to end");
    const replay = dealer(keys.other, used);
    const replayed = await ask(replay, write(5, '/a/replayed', 'evil'));
    expect(replayed.slice(0, 3)).to.deep.equal([Native.ERROR, '5', 'unauthenticated']);

    // Nothing landed: a write after the attacks is visible, the attackers' writes are not.
    await ops.set('/a/after', 'x');
    await waitFor(() => ops.get('/a/after') !== undefined, 10_000, 'the barrier write');
    expect(ops.getString('/a/by-owner')).to.equal('ok');
    expect(ops.get('/a/stolen'), 'a stolen-token write landed').to.equal(undefined);
    expect(ops.get('/a/replayed'), 'a replayed-token write landed').to.equal(undefined);
  });

  it('a token minted longer ago than the session lifetime is refused as bad-session', async () => {
    // Control: a fresh token of the same key is served.
    const fresh = dealer(keys.limited, sessionToken(keys.limited, keys.server.publicKey));
    expect(await readSnapshot(fresh, 1, '/a/')).to.deep.equal(['served']);

    const before = await badSessions();
    const minted = Date.now() - 10 * 60_000; // the server runs with a 60 s lifetime
    const stale = dealer(keys.limited, sessionToken(keys.limited, keys.server.publicKey, minted));
    expect(await readSnapshot(stale, 2, '/a/')).to.deep.equal([Native.ERROR, '2', 'unauthenticated']);
    await waitFor(
      async () => (await badSessions()) > before,
      10_000,
      'the stale token counted as bad-session',
    );
  });

  it('the client library mints a fresh token for each connection: it is served again after its connection is cut', async () => {
    // A TCP relay in front of the server, so the test can cut the client's connection while the
    // server process, which remembers every session it has seen, stays up.
    const relayPort = await freePorts(1);
    const cut = relay(relayPort, port);
    try {
      const c = await connect({
        servers: [`tcp://127.0.0.1:${relayPort}`],
        mode: 'native',
        connectTimeoutMs: 15_000,
        curve: { ...keys.ops, serverPublicKey: keys.server.publicKey },
      });
      clients.push(c);
      expect(await c.set('/a/one', '1')).to.be.above(0);
      const before = await badSessions();
      cut.all();
      // libzmq would reconnect with the same routing id, which the server refuses as a session
      // that has ended; the client's write after the cut is acknowledged only on a new token.
      let acknowledged = false;
      await waitFor(
        async () => {
          acknowledged = (await c.set('/a/two', '2').catch(() => 0)) > 0;
          return acknowledged;
        },
        20_000,
        'a write after the cut to be acknowledged',
        200,
      );
      expect(await badSessions()).to.equal(before);
    } finally {
      cut.close();
    }
  });
});

/** Relays TCP connections from `from` to `to` on 127.0.0.1; `all()` cuts every relayed connection. */
function relay(from: number, to: number): { all(): void; close(): void } {
  const open = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = createConnection(to, '127.0.0.1');
    for (const [a, b] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      open.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  server.listen(from, '127.0.0.1');
  return {
    all: () => {
      for (const s of open) s.destroy();
    },
    close: () => {
      for (const s of open) s.destroy();
      server.close();
    },
  };
}
