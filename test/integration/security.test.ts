/**
 * Security against real server processes run with --curve: who gets in, what each key may read
 * and write, allow-list reloads, and an impostor on the peer link. Refusals are waited for by
 * their metric (the event that proves the server saw and refused the attempt), then the test
 * checks that nothing got through: a refused socket's receive must stay pending (one that fails
 * proves nothing and fails the test) while a control socket, built the same way with a listed key
 * on the same endpoint, keeps receiving (expectRefused).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import {
  AccessDeniedError,
  connect,
  ServerRejectedError,
  TimeoutError,
  type Client,
} from '../../src/index.js';
import { encodeIcanhaz, encodeKvMsg, encodeRequestId, KTHXBAI, Native } from '../../src/wire/index.js';
import {
  curveClientOptions,
  generateKeyPair,
  sessionToken,
  writeKeyPair,
  type KeyPair,
} from '../../src/security/index.js';
import {
  BIN,
  metric,
  pairOptions,
  pairPorts,
  ServerProcess,
  waitFor,
  within,
  type PairPorts,
} from '../helpers/index.js';
import { missedWhileConnecting } from '../helpers/connect-during-writes.js';

interface Keys {
  primary: KeyPair;
  backup: KeyPair;
  ops: KeyPair;
  limited: KeyPair;
  stranger: KeyPair;
}

describe('security: CURVE, allow-list and per-subtree rights (real processes)', function () {
  this.timeout(60_000);
  let dir: string;
  let ports: PairPorts;
  let keys: Keys;
  let procs: ServerProcess[] = [];
  const clients: Client[] = [];
  const sockets: zmq.Socket[] = [];

  const file = (name: string) => join(dir, name);

  function writeAllowList(entries: { name: string; key: KeyPair; read: string[]; write: string[] }[]): void {
    const clientsJson = entries.map((e) => ({
      name: e.name,
      publicKey: e.key.publicKey,
      read: e.read,
      write: e.write,
    }));
    // Written whole and renamed into place, as a deploy tool would, so no reload sees half a file.
    writeFileSync(file('clients.json.tmp'), JSON.stringify({ clients: clientsJson }, null, 2));
    renameSync(file('clients.json.tmp'), file('clients.json'));
  }

  const standardList = () => [
    { name: 'ops', key: keys.ops, read: ['*'], write: ['*'] },
    { name: 'limited', key: keys.limited, read: ['/a/'], write: ['/a/'] },
  ];

  function secureArgs(role: 'primary' | 'backup' | 'single'): string[] {
    const peer = role === 'primary' ? 'backup' : 'primary';
    return [
      '--curve',
      '--key-file',
      file(`${role === 'single' ? 'primary' : role}.key_secret`),
      ...(role === 'single' ? [] : ['--peer-key-file', file(`${peer}.key`)]),
      '--clients-file',
      file('clients.json'),
    ];
  }

  function start(role: 'primary' | 'backup', extraArgs = secureArgs(role)): ServerProcess {
    const p = new ServerProcess({ ...pairOptions(ports)[role], extraArgs });
    procs.push(p);
    return p;
  }

  const servers = () => [`tcp://127.0.0.1:${ports.primary.port}`, `tcp://127.0.0.1:${ports.backup.port}`];
  const serverKeys = () => [keys.primary.publicKey, keys.backup.publicKey];

  async function client(own: KeyPair, subtree = '', extra: Record<string, unknown> = {}): Promise<Client> {
    const c = await connect({
      servers: servers(),
      subtree,
      mode: 'native',
      connectTimeoutMs: 15_000,
      curve: { ...own, serverPublicKey: serverKeys() },
      ...extra,
    });
    clients.push(c);
    return c;
  }

  /** Writes a marker through `ops` and waits until `watcher` has it: everything before it has arrived. */
  async function barrier(ops: Client, watcher: Client, key = `/a/barrier-${Math.random()}`): Promise<void> {
    await ops.set(key, 'x');
    await waitFor(() => watcher.get(key) !== undefined, 10_000, `${key} to reach the watcher`);
  }

  function socket<T extends zmq.Socket>(s: T): T {
    sockets.push(s);
    return s;
  }

  /** A receive on a socket the server must refuse, watched: it must stay pending. */
  interface Refused {
    what: string;
    outcome(): string;
  }
  const SILENT = 'nothing arrived';

  /**
   * Watches `receive`: resolving is a leak; rejecting means the socket broke (closed, errored), and
   * a broken socket proves nothing about the server, so that fails the check too.
   */
  function watchRefused(what: string, receive: Promise<unknown>): Refused {
    let outcome = SILENT;
    receive.then(
      () => {
        if (outcome === SILENT) outcome = 'a message arrived';
      },
      (error: unknown) => {
        if (outcome === SILENT) outcome = `the receive failed (${String(error)}): the check proves nothing`;
      },
    );
    return { what, outcome: () => outcome };
  }

  /**
   * The negative check, which first proves its channel. `probe` has a control socket, built like
   * the refused ones and connected to the same endpoint but with a key that is let in, receive
   * fresh traffic of the kind the refused ones would get; it runs `rounds` times, so the refused
   * sockets wait through that much delivered traffic (an event, not a fixed time). Then every
   * refused receive must still be pending.
   */
  async function expectRefused(watched: Refused[], probe: () => Promise<void>, rounds = 3): Promise<void> {
    for (let i = 0; i < rounds; i++) await probe();
    for (const w of watched) expect(w.outcome(), w.what).to.equal(SILENT);
  }

  /** A probe of the snapshot socket: `control` asks for a (fresh, empty) subtree and gets its KTHXBAI. */
  function snapshotProbe(control: zmq.Dealer): () => Promise<void> {
    let n = 0;
    return async () => {
      const subtree = `/probe-${n++}/`;
      await control.send(encodeIcanhaz(subtree));
      await within(
        (async () => {
          for (;;) {
            const [key, , , , body] = await control.receive();
            if (String(key) === KTHXBAI && String(body) === subtree) return;
          }
        })(),
        10_000,
        `the control socket's snapshot of ${subtree}`,
      );
    };
  }

  /** A probe of the publisher: `ops` writes a marker (again, until `control` is subscribed) and `control` gets it. */
  function publisherProbe(ops: Client, control: zmq.Subscriber): () => Promise<void> {
    let n = 0;
    return async () => {
      const key = `/b/probe-${n++}-${Math.random()}`;
      const write = () => void ops.set(key, 'x').catch(() => undefined);
      write();
      const again = setInterval(write, 200);
      try {
        await within(
          (async () => {
            for (;;) if (String((await control.receive())[0]) === key) return;
          })(),
          10_000,
          `the control subscriber to get ${key}`,
        );
      } finally {
        clearInterval(again);
      }
    };
  }

  /** Curve options of a raw snapshot DEALER for `key`, as the client builds them. */
  const rawDealerOptions = (key: KeyPair) => ({
    ...curveClientOptions(key, keys.primary.publicKey),
    routingId: sessionToken(key, keys.primary.publicKey),
  });

  async function authFailures(p: ServerProcess, labels: Record<string, string>): Promise<number> {
    return metric(p.http, 'twinstar_auth_failures_total', labels);
  }

  async function startPair(): Promise<{ primary: ServerProcess; backup: ServerProcess }> {
    const primary = start('primary');
    const backup = start('backup');
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    await waitFor(async () => (await primary.status()).degraded === false, 10_000, 'the passive to attach');
    return { primary, backup };
  }

  before(() => {
    keys = {
      primary: generateKeyPair(),
      backup: generateKeyPair(),
      ops: generateKeyPair(),
      limited: generateKeyPair(),
      stranger: generateKeyPair(),
    };
  });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'twinstar-security-'));
    writeKeyPair(file('primary'), keys.primary);
    writeKeyPair(file('backup'), keys.backup);
    writeAllowList(standardList());
    ports = await pairPorts();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const p of procs)
        console.log(
          p.options.role,
          p.child.exitCode,
          p.logLines
            .slice(-8)
            .map((l) => JSON.stringify(l))
            .join('\n'),
        );
    }
    for (const s of sockets.splice(0)) s.close();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(procs.map((p) => p.kill()));
    procs = [];
    rmSync(dir, { recursive: true, force: true });
  });

  it('without a key, with a wrong server key, or with an unlisted key: no snapshot, no updates, no write lands', async () => {
    const { primary } = await startPair();
    const ops = await client(keys.ops);
    await ops.set('/a/seed', '1');
    await ops.set('/b/seed', '2');
    const endpoint = `tcp://127.0.0.1:${ports.primary.port}`;
    const publisher = `tcp://127.0.0.1:${ports.primary.port + 1}`;
    const collector = `tcp://127.0.0.1:${ports.primary.port + 2}`;

    // 1. No key at all: a plain RFC 12 client. The handshake fails; no snapshot comes back.
    let before = await authFailures(primary, { socket: 'snapshot', reason: 'handshake' });
    const plain = socket(new zmq.Dealer({ linger: 0 }));
    plain.connect(endpoint);
    void plain.send(encodeIcanhaz(''));
    const plainReply = watchRefused('a keyless client got a snapshot', plain.receive());
    await waitFor(
      async () => (await authFailures(primary, { socket: 'snapshot', reason: 'handshake' })) > before,
      10_000,
      'the keyless handshake to be refused',
    );
    // The control: the same kind of socket on the same endpoint with a listed key gets snapshots.
    const controlDealer = socket(new zmq.Dealer({ linger: 0, ...rawDealerOptions(keys.ops) }));
    controlDealer.connect(endpoint);
    const snapshotsFlow = snapshotProbe(controlDealer);
    await expectRefused([plainReply], snapshotsFlow);

    // A keyless CHP writer and subscriber: refused on the collector and the publisher.
    before = await authFailures(primary, { socket: 'collector', reason: 'handshake' });
    const beforeSub = await authFailures(primary, { socket: 'publisher', reason: 'handshake' });
    const plainPub = socket(new zmq.Publisher({ linger: 0 }));
    plainPub.connect(collector);
    const plainSub = socket(new zmq.Subscriber({ linger: 0 }));
    plainSub.connect(publisher);
    plainSub.subscribe();
    await waitFor(
      async () =>
        (await authFailures(primary, { socket: 'collector', reason: 'handshake' })) > before &&
        (await authFailures(primary, { socket: 'publisher', reason: 'handshake' })) > beforeSub,
      10_000,
      'the keyless collector and subscriber connections to be refused',
    );
    for (let i = 0; i < 20; i++)
      void plainPub.send(encodeKvMsg(kv('/b/evil-plain', 'x'))).catch(() => undefined);

    // 2. A listed client key, but the wrong server key: the client cannot complete a handshake.
    before = await authFailures(primary, { socket: 'snapshot', reason: 'handshake' });
    const wrongServer = connect({
      servers: [endpoint],
      mode: 'native',
      connectTimeoutMs: 1500,
      curve: { ...keys.ops, serverPublicKey: keys.stranger.publicKey },
    });
    await expectReject(wrongServer, TimeoutError);
    expect(await authFailures(primary, { socket: 'snapshot', reason: 'handshake' })).to.be.above(before);

    // 3. A well-formed key that is not on the list: ZAP says no on every socket.
    before = await authFailures(primary, { socket: 'snapshot', reason: 'unknown-key' });
    await expectReject(
      connect({
        servers: [endpoint],
        mode: 'native',
        connectTimeoutMs: 1500,
        curve: { ...keys.stranger, serverPublicKey: keys.primary.publicKey },
      }),
      TimeoutError,
    );
    expect(await authFailures(primary, { socket: 'snapshot', reason: 'unknown-key' })).to.be.above(before);
    const strangerRaw = socket(new zmq.Dealer({ linger: 0, ...rawDealerOptions(keys.stranger) }));
    strangerRaw.connect(endpoint);
    void strangerRaw.send([Buffer.from(Native.SNAPSHOT), encodeRequestId(1), Buffer.from('')]);
    const strangerReply = watchRefused('a stranger got a snapshot', strangerRaw.receive());
    const strangerSub = socket(
      new zmq.Subscriber({ linger: 0, ...curveClientOptions(keys.stranger, keys.primary.publicKey) }),
    );
    strangerSub.connect(publisher);
    strangerSub.subscribe();
    const strangerPub = socket(
      new zmq.Publisher({ linger: 0, ...curveClientOptions(keys.stranger, keys.primary.publicKey) }),
    );
    strangerPub.connect(collector);
    for (const s of ['publisher', 'collector']) {
      await waitFor(
        async () => (await authFailures(primary, { socket: s, reason: 'unknown-key' })) > 0,
        10_000,
        `the stranger to be refused on the ${s}`,
      );
    }
    for (let i = 0; i < 20; i++)
      void strangerPub.send(encodeKvMsg(kv('/b/evil-stranger', 'x'))).catch(() => undefined);

    // Live traffic flows now; none of it may reach the refused sockets.
    const watcher = await client(keys.ops);
    await ops.set('/b/after', '3');
    await barrier(ops, watcher);
    expect(watcher.get('/b/evil-plain'), 'a keyless CHP write landed').to.equal(undefined);
    expect(watcher.get('/b/evil-stranger'), 'an unlisted CHP write landed').to.equal(undefined);
    expect(watcher.getString('/b/after')).to.equal('3');
    // The refused subscribers see none of the live traffic a listed subscriber gets, and the refused
    // snapshot requests still have no answer while a listed client's are answered.
    const plainUpdates = watchRefused('a keyless subscriber got an update', plainSub.receive());
    const strangerUpdates = watchRefused('a stranger got an update', strangerSub.receive());
    const controlSub = socket(
      new zmq.Subscriber({ linger: 0, ...curveClientOptions(keys.ops, keys.primary.publicKey) }),
    );
    controlSub.connect(publisher);
    controlSub.subscribe();
    await expectRefused([plainUpdates, strangerUpdates], publisherProbe(ops, controlSub));
    await expectRefused([strangerReply, plainReply], snapshotsFlow);
  });

  it('a key limited to /a/ reads and writes /a/ and nothing else', async () => {
    const { primary } = await startPair();
    const ops = await client(keys.ops);
    await ops.set('/a/x', 'a1');
    await ops.set('/b/y', 'b1');

    // Subscribed to everything: the snapshot holds /a/ alone.
    const limited = await client(keys.limited, '');
    expect([...limited.entries('').keys()]).to.deep.equal(['/a/x']);
    // A snapshot of a subtree it may not read is empty, not an error, and is counted.
    const limitedB = await client(keys.limited, '/b/');
    expect(limitedB.entries('/b/').size).to.equal(0);
    expect(
      await metric(primary.http, 'twinstar_access_denied_total', { operation: 'read', client: 'limited' }),
    ).to.be.above(0);

    // Live updates: /a/ arrives, /b/ never does.
    const seen: string[] = [];
    limited.on('update', (u) => seen.push(u.key));
    limitedB.on('update', (u) => seen.push(u.key));
    await ops.set('/b/live', 'b2');
    await ops.set('/a/live', 'a2');
    await barrier(ops, limited);
    expect(limited.getString('/a/live')).to.equal('a2');
    expect(seen.filter((k) => k.startsWith('/b/'))).to.deep.equal([]);

    // Writes: /a/ is acknowledged, /b/ refused with a typed error; a mixed batch splits exactly.
    expect(await limited.set('/a/mine', 'ok')).to.be.above(0);
    const [allowed, refused] = await Promise.allSettled([
      limited.set('/a/also', 'ok'),
      limited.set('/b/theirs', 'no'),
    ]);
    expect(allowed.status).to.equal('fulfilled');
    expect(refused.status).to.equal('rejected');
    expect((refused as PromiseRejectedResult).reason).to.be.instanceOf(AccessDeniedError);
    await expectReject(limited.delete('/b/y'), AccessDeniedError);
    await barrier(ops, ops);
    expect(ops.get('/b/theirs'), 'a refused write landed').to.equal(undefined);
    expect(ops.getString('/b/y'), 'a refused delete landed').to.equal('b1');
    expect(ops.getString('/a/also')).to.equal('ok');
    expect(
      await metric(primary.http, 'twinstar_access_denied_total', { operation: 'write', client: 'limited' }),
    ).to.be.at.least(2);

    // Its plain CHP sockets are refused outright: a PUB could not filter, a SUB could not tell writers apart.
    const publisher = `tcp://127.0.0.1:${ports.primary.port + 1}`;
    const rawSub = socket(
      new zmq.Subscriber({ linger: 0, ...curveClientOptions(keys.limited, keys.primary.publicKey) }),
    );
    rawSub.connect(publisher);
    rawSub.subscribe();
    const limitedUpdates = watchRefused('the limited key read the publisher', rawSub.receive());
    const rawPub = socket(
      new zmq.Publisher({ linger: 0, ...curveClientOptions(keys.limited, keys.primary.publicKey) }),
    );
    rawPub.connect(`tcp://127.0.0.1:${ports.primary.port + 2}`);
    await waitFor(
      async () =>
        (await authFailures(primary, { socket: 'publisher', reason: 'restricted-reader' })) > 0 &&
        (await authFailures(primary, { socket: 'collector', reason: 'restricted-writer' })) > 0,
      10_000,
      'the limited key to be refused on the publisher and the collector',
    );
    for (let i = 0; i < 20; i++) void rawPub.send(encodeKvMsg(kv('/b/chp', 'x'))).catch(() => undefined);
    await ops.set('/b/visible-to-ops', '1');
    await barrier(ops, ops);
    expect(ops.get('/b/chp')).to.equal(undefined);
    const controlSub = socket(
      new zmq.Subscriber({ linger: 0, ...curveClientOptions(keys.ops, keys.primary.publicKey) }),
    );
    controlSub.connect(publisher);
    controlSub.subscribe();
    await expectRefused([limitedUpdates], publisherProbe(ops, controlSub));
  });

  it('plain CHP clients with a key, connecting while a writer pipelines, miss no update: they follow over the DEALER, and following again does not drop them for a moment (4 of 40 missed 50)', async () => {
    // With --curve a client follows with TFOLLOW. At the snapshot it followed again, a TUNFOLLOW
    // then a TFOLLOW, and what was published in between was lost for a client with no resume. A
    // lone server publishes each commit at once, which makes that moment count most often.
    const single = new ServerProcess({
      role: 'single',
      port: ports.primary.port,
      httpPort: ports.primary.http,
      extraArgs: secureArgs('single'),
    });
    procs.push(single);
    await single.ready('ACTIVE');
    const writer = await client(keys.ops);
    const missed = await missedWhileConnecting(
      writer,
      async (subtree) => {
        const reader = await client(keys.ops, subtree, { mode: 'chp' });
        expect(reader.mode).to.equal('chp');
        return reader;
      },
      { rounds: 6, readers: 5 },
    );
    expect(missed).to.deep.equal([]);
  });

  it('the allow-list reloads on SIGHUP: a new key gets in, a removed key loses its rights', async () => {
    const { primary, backup } = await startPair();
    const ops = await client(keys.ops);
    const limited = await client(keys.limited);
    expect(await limited.set('/a/before', '1')).to.be.above(0);

    writeAllowList([
      ...standardList().filter((e) => e.name !== 'limited'),
      { name: 'stranger', key: keys.stranger, read: ['*'], write: ['/s/'] },
    ]);
    primary.signal('SIGHUP');
    backup.signal('SIGHUP');
    await waitFor(
      async () =>
        (await metric(primary.http, 'twinstar_allow_list_clients')) === 2 &&
        (await metric(backup.http, 'twinstar_allow_list_clients')) === 2,
      10_000,
      'both nodes to load the new list',
    );
    const stranger = await client(keys.stranger);
    expect(await stranger.set('/s/hello', 'hi')).to.be.above(0);
    await expectReject(limited.set('/a/after', '2', {}), ServerRejectedError);
    await barrier(ops, ops);
    expect(ops.get('/a/after')).to.equal(undefined);

    // A broken list is refused and the one in force stays.
    writeFileSync(file('clients.json'), '{ not json');
    primary.signal('SIGHUP');
    await waitFor(
      async () => (await metric(primary.http, 'twinstar_allow_list_reloads_total', { result: 'failed' })) > 0,
      10_000,
      'the broken list to be refused',
    );
    expect(await stranger.set('/s/still', 'yes')).to.be.above(0);
  });

  it('an impostor peer with the wrong key cannot make the backup serve or replicate into it', async () => {
    // The backup binds its ports first: a client's outgoing connection below could otherwise be
    // given one of them as its ephemeral port before the backup binds it.
    const backup = start('backup');
    await backup.ready('BACKUP');
    // The impostor sits at the primary's address with a key pair of its own, ready to pair with
    // the backup and holding data of its own, served to a client of its own.
    const impostorKeys = generateKeyPair();
    writeKeyPair(file('impostor'), impostorKeys);
    const impostor = start('primary', [
      '--curve',
      '--key-file',
      file('impostor.key_secret'),
      '--peer-key-file',
      file('backup.key'),
      '--clients-file',
      file('clients.json'),
    ]);
    await impostor.ready('PRIMARY');
    const impostorClient = await connect({
      servers: [`tcp://127.0.0.1:${ports.primary.port}`],
      mode: 'native',
      connectTimeoutMs: 15_000,
      curve: { ...keys.ops, serverPublicKey: impostorKeys.publicKey },
    });
    clients.push(impostorClient);
    await impostorClient.set('/a/forged', 'bad');
    await waitFor(
      async () => (await authFailures(backup, { socket: 'peer', reason: 'not-the-peer' })) > 0,
      10_000,
      "the backup to refuse the impostor's connection to its peer socket",
    );
    // Two failover timeouts (ten heartbeat periods) later the backup has still heard nothing.
    const refusedAt = (await backup.status()).uptimeMs;
    await waitFor(async () => (await backup.status()).uptimeMs > refusedAt + 1000, 10_000, 'a second more');
    const status = await backup.status();
    expect(status.state).to.equal('BACKUP');
    expect(await metric(backup.http, 'twinstar_peer_up')).to.equal(0);
    expect(status.sequence).to.equal(0);
    expect(await metric(backup.http, 'twinstar_keys')).to.equal(0);

    // The genuine primary, with the right key, pairs at once: the refusal was about the key.
    await impostorClient.close();
    await impostor.kill();
    const primary = start('primary');
    await primary.ready('ACTIVE');
    await backup.ready('PASSIVE');
    const ops = await client(keys.ops);
    await ops.set('/a/real', 'good');
    await waitFor(
      async () => (await metric(backup.http, 'twinstar_keys')) === 1,
      10_000,
      'the key to replicate',
    );
  });

  it('reloads the allow-list when the file changes, without a signal', async () => {
    const { primary } = await startPair();
    const ops = await client(keys.ops);
    await ops.set('/x/1', 'one');
    writeAllowList([...standardList(), { name: 'stranger', key: keys.stranger, read: ['*'], write: [] }]);
    await waitFor(
      async () => (await metric(primary.http, 'twinstar_allow_list_clients')) === 3,
      10_000,
      'the file watch to load the new list',
    );
    const stranger = await client(keys.stranger);
    expect(stranger.getString('/x/1')).to.equal('one');
    await expectReject(stranger.set('/x/2', 'two'), AccessDeniedError);
  });

  it('the CLI passes key files through: set and get against a --curve pair', async () => {
    await startPair();
    writeKeyPair(file('ops'), keys.ops);
    const cli = (...args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            BIN,
            ...args,
            '--servers',
            servers().join(','),
            '--key-file',
            file('ops.key_secret'),
            '--server-key',
            `${file('primary.key')},${file('backup.key')}`,
          ],
          { timeout: 20_000 },
          (error, stdout, stderr) =>
            resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const set = await cli('set', '/cli/key', 'value');
    expect(set.code, set.stderr).to.equal(0);
    expect(Number(set.stdout.trim())).to.be.above(0);
    const get = await cli('get', '/cli/key');
    expect(get.code, get.stderr).to.equal(0);
    expect(get.stdout.trim()).to.equal('value');
  });

  it('refuses to start with a missing or malformed key file, naming the setting', async () => {
    writeFileSync(file('bad.key_secret'), 'metadata\ncurve\n    public-key = "short"\n');
    for (const [args, setting] of [
      [['--curve', '--clients-file', file('clients.json')], 'keyFile'],
      [
        ['--curve', '--key-file', file('missing.key_secret'), '--clients-file', file('clients.json')],
        'keyFile',
      ],
      [['--curve', '--key-file', file('bad.key_secret'), '--clients-file', file('clients.json')], 'keyFile'],
      [['--curve', '--key-file', file('primary.key'), '--clients-file', file('clients.json')], 'keyFile'],
      [
        ['--curve', '--key-file', file('primary.key_secret'), '--clients-file', file('missing.json')],
        'clientsFile',
      ],
    ] as const) {
      const p = new ServerProcess({
        role: 'single',
        port: ports.primary.port,
        httpPort: ports.primary.http,
        extraArgs: [...args],
      });
      const code = await within(
        new Promise<number | null>((resolve) => p.child.once('exit', (c) => resolve(c))),
        10_000,
        'the server to exit',
      );
      expect(code, args.join(' ')).to.equal(2);
      const lines = p.logLines.map((l) => String(l.msg)).filter((l) => l.startsWith('twinstar:'));
      expect(lines, args.join(' ')).to.have.length(1);
      expect(lines[0]).to.contain(`${setting}:`);
    }
  });
});

function kv(key: string, value: string) {
  return { key, sequence: 0, uuid: '', properties: '', body: Buffer.from(value) };
}

async function expectReject(promise: Promise<unknown>, type: new (...args: never[]) => Error): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(type);
    return;
  }
  expect.fail(`expected a ${type.name}`);
}
