import { expect } from 'chai';
import {
  chunksThenLast,
  SnapshotStreams,
  type PreparedStream,
  type StreamRefusal,
  type StreamSource,
} from '../../../src/server/snapshot-streams.js';
import {
  measureView,
  packedViewMessages,
  viewMessages,
  type Keep,
} from '../../../src/server/view-streams.js';
import {
  ArrayView,
  FilteredView,
  KvMap,
  PackedKvMap,
  PartitionedMap,
  type Entry,
  type KvView,
} from '../../../src/kv/index.js';
import { packBatch, packedSize } from '../../../src/wire/index.js';
import fc from 'fast-check';

const code = (c: string) => Object.assign(new Error(c), { code: c });
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
  expect(cond()).to.equal(true);
};

/** A stream ready to send, holding `bytes` buffered at most. */
const ready = (source: StreamSource, bytes = 0) => Promise.resolve({ source, bytes });

/** A source of `n` messages that counts how many were made (each is made only when sent). */
function counted(n: number) {
  const made = { count: 0 };
  const source = chunksThenLast(
    Array.from({ length: n }, (_, i) => i)[Symbol.iterator](),
    (i) => {
      made.count++;
      return [Buffer.from(String(i))];
    },
    () => [Buffer.from('end')],
  );
  return { made, source };
}

describe('SnapshotStreams', () => {
  function setup(caps: {
    maxStreams: number;
    maxStreamsPerClient: number;
    idleMs?: number;
    maxBytes?: number;
    maxBytesPerClient?: number;
  }) {
    const sent: string[] = [];
    const refused: StreamRefusal[] = [];
    let full = false;
    let gone = false;
    const streams = new SnapshotStreams(
      { idleMs: 60_000, maxBytes: 1000, maxBytesPerClient: 600, ...caps },
      {
        send: (frames) => {
          if (gone) return Promise.reject(code('EHOSTUNREACH'));
          if (full) return Promise.reject(code('EAGAIN'));
          sent.push(frames[0]!.toString());
          return Promise.resolve();
        },
        onRefused: (reason) => refused.push(reason),
      },
    );
    return {
      streams,
      sent,
      refused,
      fill: (v: boolean) => (full = v),
      leave: () => (gone = true),
    };
  }

  it('sends every message in order and the last one, encoding each only when it is sent', async () => {
    const { streams, sent } = setup({ maxStreams: 4, maxStreamsPerClient: 1 });
    const { made, source } = counted(3);
    expect(made.count).to.equal(0);
    expect(await streams.serve('a', () => ready(source))).to.equal('done');
    expect(sent).to.deep.equal(['0', '1', '2', 'end']);
    expect(made.count).to.equal(3);
    expect(streams.size).to.equal(0);
  });

  it('refuses a stream beyond the server cap and counts it', async () => {
    const { streams, refused, fill } = setup({ maxStreams: 1, maxStreamsPerClient: 1 });
    fill(true);
    const first = streams.serve('a', () => ready(counted(5).source));
    expect(first).to.not.equal(undefined);
    expect(streams.serve('b', () => ready(counted(5).source))).to.equal(undefined);
    expect(refused).to.deep.equal(['server-busy']);
    expect(streams.size).to.equal(1);
    streams.stopAll();
    expect(await first).to.equal('stopped');
  });

  it("a client's new request stops its oldest stream beyond the per-client cap", async () => {
    const { streams, refused, fill } = setup({ maxStreams: 4, maxStreamsPerClient: 1 });
    fill(true);
    const first = streams.serve('a', () => ready(counted(5).source));
    const second = streams.serve('a', () => ready(counted(5).source));
    expect(await first).to.equal('stopped');
    expect(refused).to.deep.equal(['superseded']);
    expect(streams.size).to.equal(1);
    streams.stopAll();
    expect(await second).to.equal('stopped');
    expect(streams.size).to.equal(0);
  });

  it('stops every stream of a client that is gone, at its first unroutable send', async () => {
    const { streams, fill, leave } = setup({ maxStreams: 4, maxStreamsPerClient: 2 });
    fill(true);
    const a1 = streams.serve('a', () => ready(counted(5).source));
    const a2 = streams.serve('a', () => ready(counted(5).source));
    const b = streams.serve('b', () => ready(counted(5).source));
    await until(() => streams.size === 3);
    leave();
    const ends = await Promise.all([a1, a2, b]);
    expect(ends.filter((end) => end === 'client-gone').length).to.be.at.least(1);
    expect(streams.size).to.equal(0);
  });

  it('stops a stream whose client takes nothing for idleMs', async () => {
    const { streams, fill } = setup({ maxStreams: 4, maxStreamsPerClient: 1, idleMs: 20 });
    fill(true);
    expect(await streams.serve('a', () => ready(counted(5).source))).to.equal('stalled');
    expect(streams.size).to.equal(0);
  });

  it('counts a stream while it waits to start, and releases it when it gives up', async () => {
    const { streams } = setup({ maxStreams: 1, maxStreamsPerClient: 1 });
    let start!: (prepared: PreparedStream | undefined) => void;
    const ending = streams.serve('a', () => new Promise((resolve) => (start = resolve)));
    expect(streams.size).to.equal(1);
    start(undefined);
    expect(await ending).to.equal('stopped');
    expect(streams.size).to.equal(0);
  });

  it('refuses a stream whose bytes do not fit the server budget while others hold bytes, and counts it', async () => {
    const { streams, refused, fill } = setup({ maxStreams: 8, maxStreamsPerClient: 1 });
    fill(true); // nobody reads: the streams stay in progress
    const a = streams.serve('a', () => ready(counted(5).source, 500));
    const b = streams.serve('b', () => ready(counted(5).source, 400));
    await until(() => streams.reservedBytes === 900);
    // 900 + 200 > 1000: refused, not started; the two others keep their reservations.
    expect(await streams.serve('c', () => ready(counted(5).source, 200))).to.equal('busy');
    expect(refused).to.deep.equal(['bytes-busy']);
    expect(streams.reservedBytes).to.equal(900);
    // 900 + 100 fits.
    const d = streams.serve('d', () => ready(counted(5).source, 100));
    await until(() => streams.reservedBytes === 1000);
    streams.stopAll();
    expect(await Promise.all([a, b, d])).to.deep.equal(['stopped', 'stopped', 'stopped']);
    expect(streams.reservedBytes).to.equal(0);
    expect(streams.size).to.equal(0);
  });

  it('a stream larger than the per-client or server budget runs only while no other stream holds bytes', async () => {
    const { streams, refused, fill, sent } = setup({ maxStreams: 8, maxStreamsPerClient: 1 });
    fill(true);
    const small = streams.serve('a', () => ready(counted(5).source, 100));
    await until(() => streams.reservedBytes === 100);
    expect(await streams.serve('b', () => ready(counted(5).source, 700))).to.equal('busy'); // > 600 per client
    expect(await streams.serve('c', () => ready(counted(5).source, 5000))).to.equal('busy'); // > 1000
    expect(refused).to.deep.equal(['bytes-busy', 'bytes-busy']);
    streams.stopAll();
    expect(await small).to.equal('stopped');
    // Alone, the oversize stream is served in full: every snapshot can still be had.
    fill(false);
    expect(await streams.serve('c', () => ready(counted(2).source, 5000))).to.equal('done');
    expect(sent).to.deep.equal(['0', '1', 'end']);
    expect(streams.reservedBytes).to.equal(0);
  });

  it('measureView: a stream holds at most all its bytes, or a full pipe of its largest message; the stream cuts the same messages', async () => {
    // packedSize is 25 bytes plus the key (3) and the body: sizes 38, 58, 48, 33, 38, 38
    const entry = (i: number, size: number): Entry => ({
      key: `/k${i}`,
      sequence: i,
      uuid: '',
      properties: '',
      body: Buffer.alloc(size),
      expiresAt: 0,
    });
    const view = new ArrayView([10, 30, 20, 5, 10, 10].map((size, i) => entry(i, size)));
    const one = { maxEntries: 1, maxBytes: Infinity };
    const all = () => true;
    expect(packedSize(entry(0, 10))).to.equal(38);
    expect(await measureView(view.again(), all, one, 0, 10)).to.deep.equal({ entries: 6, bytes: 253 });
    expect(await measureView(view.again(), undefined, one, 0, 10), 'no filter').to.deep.equal({
      entries: 6,
      bytes: 253,
    });
    expect(await measureView(view.again(), all, one, 0, 2), '2 messages of at most 58').to.deep.equal({
      entries: 6,
      bytes: 116,
    });
    expect(await measureView(view.again(), all, one, 1, 2), 'with 1 byte each beside').to.deep.equal({
      entries: 6,
      bytes: 118,
    });
    // cut by bytes (at most 90 each) and by count (at most 2), only the even keys (38, 48, 38)
    const even = (key: string) => Number(key.slice(2)) % 2 === 0;
    const cut = { maxEntries: 2, maxBytes: 90 };
    const messages = [...viewMessages(view.again(), even, cut)].map((m) => m.entries.map((e) => e.sequence));
    expect(messages).to.deep.equal([[0, 2], [4]]);
    expect(await measureView(view.again(), even, cut, 0, 1)).to.deep.equal({ entries: 3, bytes: 86 });
  });

  it('packedViewMessages copies the same entries, cut the same, as packing viewMessages would', () => {
    const kinds: Record<string, (entries: Entry[], prefix: string) => KvView> = {
      array: (entries, prefix) => new ArrayView(entries.filter((e) => e.key.startsWith(prefix))),
      packed: (entries, prefix) => {
        const map = new PackedKvMap({ pageBytes: 300, garbageFloor: 600 });
        entries.forEach((e) => map.put(e));
        return map.view(prefix);
      },
      'partitioned, filtered': (entries, prefix) => {
        const map = new PartitionedMap('\u0000', new KvMap(), new PackedKvMap());
        entries.forEach((e) => map.put(e));
        return new FilteredView(map.view(prefix), (key) => key.endsWith('9'));
      },
    };
    const keyArb = fc
      .oneof(fc.constantFrom('/a/', '/b/', '\u0000e/', '/日/'), fc.constant('/a/'))
      .chain((p) => fc.nat(40).map((n) => `${p}${n}`));
    const entryArb = fc.record({
      key: keyArb,
      size: fc.integer({ min: 1, max: 200 }),
      uuid: fc.constantFrom('', 'u'.repeat(16)),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(entryArb, { selector: (e) => e.key, minLength: 0, maxLength: 60 }),
        fc.constantFrom('', '/a/', '\u0000'),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 50, max: 900 }),
        fc.constantFrom('everything', 'all', 'odd'),
        (specs, prefix, maxEntries, maxBytes, keeping) => {
          const entries = specs.map((spec, i) => ({
            key: spec.key,
            sequence: i + 1,
            uuid: spec.uuid,
            properties: i % 3 === 0 ? 'a=1\n' : '',
            body: Buffer.alloc(spec.size, i),
            expiresAt: i % 5 === 0 ? 1_700_000_000_000 : 0,
          }));
          // 'everything': no filter at all (a principal that reads every key), where no key is read
          const keep: Keep =
            keeping === 'everything'
              ? undefined
              : keeping === 'all'
                ? () => true
                : (key: string) => key.length % 2 === 1;
          const cut = { maxEntries, maxBytes };
          for (const [name, make] of Object.entries(kinds)) {
            const view = make(entries, prefix);
            const expected = [...viewMessages(view.again(), keep, cut)].map((m) =>
              packBatch(m.entries).toString('hex'),
            );
            const got = [...packedViewMessages(view.again(), keep, cut)].map((b) => b.toString('hex'));
            expect(got, name).to.deep.equal(expected);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('with no filter (a client that reads every key), a packed view is measured and streamed without decoding a key', async () => {
    const map = new PackedKvMap({ pageBytes: 4096, garbageFloor: 512 });
    for (let i = 0; i < 50; i++)
      map.put({
        key: `/k/${i}`,
        sequence: i + 1,
        uuid: '',
        properties: '',
        body: Buffer.alloc(30, i),
        expiresAt: 0,
      });
    const cut = { maxEntries: 7, maxBytes: 1 << 20 };
    const decoded: string[] = [];
    // The same view, but each record's key is counted when read.
    const counting = (view: KvView): KvView => ({
      ...view,
      next: (max) => view.next(max),
      nextSizes: (max) => watch(view.nextSizes(max)),
      nextPacked: (max) => watch(view.nextPacked(max)),
      again: () => counting(view.again()),
      close: () => view.close(),
    });
    const watch = <T extends { key: string }>(run: T[]): T[] =>
      run.map(
        (record) => Object.create(record, { key: { get: () => (decoded.push('k'), record.key) } }) as T,
      );
    const view = counting(map.view(''));
    const expected = [...viewMessages(map.view(''), () => true, cut)].map((m) => packBatch(m.entries));
    expect((await measureView(view.again(), undefined, cut, 0, 100)).entries).to.equal(50);
    const sent = [...packedViewMessages(view.again(), undefined, cut)];
    expect(sent.map((b) => b.toString('hex'))).to.deep.equal(expected.map((b) => b.toString('hex')));
    expect(decoded, 'keys read with no filter').to.deep.equal([]);
    // the channel works: with a filter, each key is read once per pass
    await measureView(view.again(), () => true, cut, 0, 100);
    expect(decoded).to.have.length(50);
  });

  it('packedViewMessages sends back-to-back records of a page as a view of it (no copy), and what it sent stays the same while the map changes and compacts', () => {
    const map = new PackedKvMap({ pageBytes: 4096, garbageFloor: 512 });
    const entry = (key: string, sequence: number, fill: number): Entry => ({
      key,
      sequence,
      uuid: 'u'.repeat(16),
      properties: '',
      body: Buffer.alloc(60, fill),
      expiresAt: 0,
    });
    for (let i = 0; i < 100; i++) map.put(entry(`/k/${i}`, i + 1, 1));
    map.put(entry('/k/50', 101, 2)); // a hole in its first page: the message around it is a copy
    const cut = { maxEntries: 10, maxBytes: 1 << 20 };
    const view = map.view('');
    const expected = [...viewMessages(view.again(), () => true, cut)].map((m) => packBatch(m.entries));
    const sent = [...packedViewMessages(view.again(), () => true, cut)];
    expect(sent.map((b) => b.toString('hex'))).to.deep.equal(expected.map((b) => b.toString('hex')));
    const pooled = (b: Buffer) => b.byteOffset !== 0 || b.buffer.byteLength !== b.length;
    const views = sent.filter((b) => pooled(b) && b.buffer.byteLength === 4096).length;
    expect(views, 'messages that are views of a page').to.be.at.least(5);
    expect(sent.length - views, 'copies').to.be.at.least(1);
    // overwrite everything twice: pages drop and compact under the messages already made
    for (let round = 3; round < 5; round++)
      for (let i = 0; i < 100; i++) map.put(entry(`/k/${i}`, 200 + i, round));
    expect(map.stats.pages).to.be.greaterThan(0);
    expect(sent.map((b) => b.toString('hex'))).to.deep.equal(expected.map((b) => b.toString('hex')));
  });

  it('chunksThenLast makes each chunk on demand, then the last message once', () => {
    function* chunks() {
      yield 1;
      yield 2;
    }
    const source = chunksThenLast(
      chunks(),
      (n) => [Buffer.from(String(n))],
      () => [Buffer.from('end')],
    );
    const out: string[] = [];
    for (let m = source.next(); m !== undefined; m = source.next()) out.push(m[0]!.toString());
    expect(out).to.deep.equal(['1', '2', 'end']);
    expect(source.next()).to.equal(undefined);
  });
});
