/**
 * De-duplication of retried writes on a real server process (promise 4): the horizon is a time
 * (`dedupeMs`), not a count. Clients retry after 2 s and for up to 10 s while a busy server
 * applies ~95,000 writes a second, so a window of the last 100,000 uuids (the old design) forgot
 * a write long before its client stopped retrying it. `dedupeSize` is now only a memory cap, and
 * a uuid it forces out early is counted and warned about. A write whose entry is still its key's
 * current one is answered for by the map, however old: the window holds a uuid from the moment
 * its entry is replaced or deleted (core/state-machine.ts `CurrentWrites`).
 *
 * Writes go over a raw DEALER in the native framing (docs/protocol.md): TSET, reqId, packed batch
 * -> TACK, reqId, sequences, durability. A retry is the same batch with the same uuid.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import {
  decodeKvMsg,
  decodeSequence,
  encodeIcanhaz,
  encodeRequestId,
  Native,
  packBatch,
  type PackedEntry,
} from '../../src/wire/index.js';
import { newUuid } from '../../src/core/index.js';
import {
  digest,
  freePorts,
  metric,
  pairOptions,
  pairPorts,
  ServerProcess,
  waitFor,
  within,
} from '../helpers/index.js';

const BATCH = 1000;

function write(key: string, uuid: string, body: string): PackedEntry {
  return { key, sequence: 0, uuid, properties: '', body: Buffer.from(body), expiresAt: 0 };
}

/** A native writer on one DEALER: one TSET at a time, resolving to the sequences acknowledged. */
class Writer {
  private readonly dealer = new zmq.Dealer({ linger: 0 });
  private reqId = 0;
  /** the durability frame of the last TACK */
  durability = '';

  constructor(endpoint: string) {
    this.dealer.connect(endpoint);
  }

  async set(writes: PackedEntry[]): Promise<number[]> {
    const reqId = ++this.reqId;
    await this.dealer.send([Buffer.from(Native.SET), encodeRequestId(reqId), packBatch(writes)]);
    for (;;) {
      const [tag, rid, seqs, durability] = await within(
        this.dealer.receive(),
        10_000,
        `the TACK of request ${reqId}`,
      );
      if (rid?.readUInt32BE() !== reqId) continue; // not ours (cannot happen: one request at a time)
      expect(tag!.toString()).to.equal(Native.ACK);
      this.durability = durability!.toString();
      return Array.from({ length: seqs!.length / 8 }, (_, i) =>
        decodeSequence(seqs!.subarray(8 * i, 8 * i + 8)),
      );
    }
  }

  /** `count` writes with fresh uuids, BATCH per request, over `keys` keys. */
  async fill(count: number, prefix: string, keys = 100): Promise<void> {
    for (let done = 0; done < count; done += BATCH) {
      const n = Math.min(BATCH, count - done);
      const batch = Array.from({ length: n }, (_, i) =>
        write(`${prefix}${(done + i) % keys}`, newUuid(), 'x'),
      );
      const seqs = await this.set(batch);
      expect(seqs).to.have.length(n);
    }
  }

  /** The stored sequence and body of `key`, from a plain RFC 12 snapshot of that subtree. */
  async read(key: string): Promise<{ sequence: number; body: string } | undefined> {
    await this.dealer.send(encodeIcanhaz(key));
    let found: { sequence: number; body: string } | undefined;
    for (;;) {
      const msg = decodeKvMsg(await within(this.dealer.receive(), 10_000, `the snapshot of ${key}`));
      if (msg.key === 'KTHXBAI') return found;
      if (msg.key === key) found = { sequence: msg.sequence, body: msg.body.toString() };
    }
  }

  /** Sends TVOTE until the node accepts it (it must first have found its peer silent). */
  async vote(): Promise<void> {
    await waitFor(
      async () => {
        const reqId = ++this.reqId;
        await this.dealer.send([Buffer.from(Native.VOTE), encodeRequestId(reqId)]);
        for (;;) {
          const [tag, rid, state] = await within(this.dealer.receive(), 10_000, 'an answer to TVOTE');
          if (rid?.readUInt32BE() !== reqId) continue;
          return tag!.toString() === Native.PONG && state!.toString() === 'ACTIVE';
        }
      },
      20_000,
      'the vote to be accepted',
      100,
    );
  }

  close(): void {
    this.dealer.close();
  }
}

describe('de-duplication of retried writes (real server)', function () {
  this.timeout(180_000);
  let server: ServerProcess | undefined;
  let writer: Writer | undefined;

  async function start(extraArgs: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
    const port = await freePorts(5);
    server = new ServerProcess({ role: 'single', port, httpPort: port + 4, extraArgs, env });
    await server.ready('ACTIVE', 20_000);
    writer = new Writer(server.endpoint);
    return server;
  }

  afterEach(async () => {
    writer?.close();
    writer = undefined;
    if (server) expect(await server.stop()).to.equal(0);
    server = undefined;
  });

  it('a write retried after more than 100,000 other writes (the old count horizon) applies once', async () => {
    // Default dedupeSize. dedupeMs is raised far above the time the writes below take on a slow,
    // shared machine; it is an environment variable, which a server without the setting ignores.
    const s = await start([], { TWINSTAR_DEDUPE_MS: '600000' });
    const uuid = newUuid();
    const first = write('/dedupe/a', uuid, 'once');
    const [sequence] = await writer!.set([first]);
    expect(await writer!.read('/dedupe/a')).to.deep.equal({ sequence, body: 'once' });
    await writer!.fill(101_000, '/dedupe/n/');
    const before = await digest(s.http);
    expect(before.sequence).to.equal(sequence! + 101_000);

    const again = await writer!.set([first]); // the client's retry: same key, body and uuid
    expect(again).to.deep.equal([sequence], 'the retry is acknowledged with the original sequence');
    expect(await writer!.read('/dedupe/a')).to.deep.equal({ sequence, body: 'once' });
    expect((await digest(s.http)).sequence).to.equal(before.sequence, 'nothing was applied');
    expect(await metric(s.http, 'twinstar_dropped_messages_total')).to.equal(0);
    expect(await metric(s.http, 'twinstar_dedupe_evicted_early_total')).to.equal(0);
  });

  it('a small dedupeSize cap forces out a uuid younger than dedupeMs: counted and warned', async () => {
    const s = await start(['--dedupe-size', '1000', '--dedupe-ms', '600000']);
    const metrics = await (await fetch(`${s.http}/metrics`)).text();
    expect(metrics, 'the counter is exported from the start').to.include(
      'twinstar_dedupe_evicted_early_total 0',
    );
    // The window holds the uuid of a write once its entry is replaced (while current, the entry
    // answers for it): each write to one key hands the one before over to it.
    const first = write('/dedupe/a', newUuid(), 'once');
    const [sequence] = await writer!.set([first]);
    await writer!.set([write('/dedupe/a', newUuid(), 'replaced')]); // the window holds 1 uuid
    await writer!.fill(1000, '/dedupe/n/', 1); // 999 more: the cap is full, nothing forced out yet
    expect(await writer!.set([first])).to.deep.equal([sequence], 'still remembered at the cap');
    expect(await metric(s.http, 'twinstar_dedupe_evicted_early_total')).to.equal(0);

    await writer!.fill(1, '/dedupe/n/', 1); // one more: the first write's uuid is forced out
    await waitFor(
      async () => (await metric(s.http, 'twinstar_dedupe_evicted_early_total')) === 1,
      10_000,
      'the early eviction to be counted',
    );
    // (an empty array is truthy: wait for a line, not for the list)
    const warned = await waitFor(
      () => {
        const lines = s.logs((l) => l.level === 40 && String(l.msg).includes('younger than dedupeMs'));
        return lines.length > 0 ? lines : undefined;
      },
      10_000,
      'the warning',
    );
    expect(warned).to.have.length(1);
    expect(warned[0]).to.include({ dedupeSize: 1000, dedupeMs: 600_000 });
    // What the counter warns of: a retry of that write now applies a second time.
    const [retried] = await writer!.set([first]);
    expect(retried).to.be.greaterThan(sequence!);
    expect(await metric(s.http, 'twinstar_dedupe_evicted_early_total')).to.equal(2);
  });

  describe('in a pair', () => {
    const procs: ServerProcess[] = [];
    const writers: Writer[] = [];

    afterEach(async () => {
      for (const w of writers.splice(0)) w.close();
      await Promise.all(procs.splice(0).map((p) => p.kill()));
    });

    it('the new active after a failover knows uuids it learnt by snapshot and by replication', async () => {
      const ports = await pairPorts();
      const options = pairOptions(ports);
      const env = { TWINSTAR_DEDUPE_MS: '600000' }; // see the first test
      const primary = new ServerProcess({ ...options.primary, env });
      procs.push(primary);
      await primary.ready('PRIMARY', 20_000);
      // Alone, a primary starting a fresh pair serves once a client votes for it.
      const toPrimary = new Writer(primary.endpoint);
      writers.push(toPrimary);
      await toPrimary.vote();
      await primary.ready('ACTIVE');

      // A, then 101,000 writes to as many keys: the backup will learn them all from one snapshot.
      const a = write('/dedupe/a', newUuid(), 'a');
      const [seqA] = await toPrimary.set([a]);
      await toPrimary.fill(101_000, '/dedupe/s/', 101_000);
      const backup = new ServerProcess({ ...options.backup, env });
      procs.push(backup);
      await backup.ready('PASSIVE', 20_000);
      await waitFor(async () => (await primary.status()).degraded === false, 60_000, 'the passive to attach');

      // B, replicated, then 101,000 more replicated writes.
      const b = write('/dedupe/b', newUuid(), 'b');
      const [seqB] = await toPrimary.set([b]);
      expect(toPrimary.durability).to.equal('replicated');
      await toPrimary.fill(101_000, '/dedupe/r/');
      const { sequence } = await digest(primary.http);
      await waitFor(
        async () => (await digest(backup.http)).sequence === sequence,
        30_000,
        'the backup to catch up',
      );

      await primary.kill();
      const toBackup = new Writer(backup.endpoint);
      writers.push(toBackup);
      await toBackup.vote();
      await backup.ready('ACTIVE');
      expect(await toBackup.set([a]), 'A, learnt from the snapshot').to.deep.equal([seqA]);
      expect(await toBackup.set([b]), 'B, learnt by replication').to.deep.equal([seqB]);
      expect((await digest(backup.http)).sequence).to.equal(sequence, 'nothing was applied');
      expect(await toBackup.read('/dedupe/a')).to.deep.equal({ sequence: seqA, body: 'a' });
      expect(await toBackup.read('/dedupe/b')).to.deep.equal({ sequence: seqB, body: 'b' });
    });
  });
});
