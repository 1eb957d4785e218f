/**
 * The native update stream's sending side (src/server/update-stream.ts) and how publishing feeds
 * it (src/server/publishing.ts): one packed batch per subscribed prefix per release, each holding
 * exactly that prefix's changes, in order, as the RFC 12 publisher's KVPUBs would carry them.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { UpdateStream } from '../../../src/server/update-stream.js';
import { Publishing } from '../../../src/server/publishing.js';
import { Followers } from '../../../src/server/followers.js';
import {
  chunkBytes,
  DEFAULT_LIMITS,
  decodeKvMsg,
  isUpdates,
  unpackBatch,
  updatesPrefix,
  type PackedEntry,
} from '../../../src/wire/index.js';
import { DELETE_PREFIX_PROPERTY, PREV_PROPERTY, type Entry } from '../../../src/kv/index.js';
import type { Outbox } from '../../../src/zmq/index.js';

const entry = (sequence: number, key = `/k/${sequence}`, extra: Partial<Entry> = {}): Entry => ({
  key,
  sequence,
  uuid: `u${String(sequence).padStart(15, '0')}`,
  properties: '',
  body: Buffer.from(`v${sequence}`),
  expiresAt: 0,
  ...extra,
});

interface Sent {
  prefix: string;
  entries: PackedEntry[];
}

function stream(prefixes: string[], maxBatchBytes = chunkBytes(DEFAULT_LIMITS)) {
  const sent: Sent[] = [];
  const hugz: { frames: Buffer[]; quietMs: number }[] = [];
  const set = new Set(prefixes);
  const updates = new UpdateStream({
    post: (frames) => {
      expect(isUpdates(frames), 'a HUGZ goes through heartbeat, not post').to.equal(true);
      sent.push({ prefix: updatesPrefix(frames[0]!)!, entries: unpackBatch(frames[1]!) });
    },
    heartbeat: (frames, quietMs) => hugz.push({ frames, quietMs }),
    prefixes: set,
    maxBatchBytes,
  });
  return { updates, sent, hugz, set };
}

const keysOf = (s: Sent) => s.entries.map((e) => e.key);

describe('server/update-stream: one batch per subscribed prefix per release', () => {
  it('sends each prefix the changes under it, in order, in one message, and nothing to a prefix with none', () => {
    const h = stream(['/a/', '/b/', '', '/none/']);
    for (const [s, key] of [
      [1, '/a/1'],
      [2, '/b/1'],
      [3, '/a/2'],
    ] as const)
      h.updates.add(entry(s, key));
    expect(h.sent, 'nothing before the flush').to.deep.equal([]);
    h.updates.flush();
    const byPrefix = new Map(h.sent.map((s) => [s.prefix, s]));
    expect(h.sent).to.have.length(3);
    expect(keysOf(byPrefix.get('/a/')!)).to.deep.equal(['/a/1', '/a/2']);
    expect(keysOf(byPrefix.get('/b/')!)).to.deep.equal(['/b/1']);
    expect(keysOf(byPrefix.get('')!)).to.deep.equal(['/a/1', '/b/1', '/a/2']);
    expect(byPrefix.get('/a/')!.entries.map((e) => e.sequence)).to.deep.equal([1, 3]);
    h.updates.flush();
    expect(h.sent, 'a flush with nothing gathered sends nothing').to.have.length(3);
  });

  it('carries each change as a KVPUB does: properties (twinstar-prev, ttl) as published, no absolute deadline', () => {
    const h = stream(['/k/']);
    const props = `ttl=5000\n${PREV_PROPERTY}=4\n`;
    h.updates.add(entry(6, '/k/x', { properties: props, expiresAt: Date.now() + 5000 }));
    h.updates.flush();
    const [sent] = h.sent[0]!.entries;
    expect(sent).to.deep.include({ key: '/k/x', sequence: 6, properties: props, expiresAt: 0 });
    expect(sent!.uuid).to.equal(entry(6).uuid);
    expect(sent!.body.toString()).to.equal('v6');
  });

  it('a delete by prefix reaches the subscribers of a longer prefix under it, keyed by their prefix', () => {
    const h = stream(['/a/b/', '/a/', '/c/']);
    const del = entry(9, '/a/', { properties: `${DELETE_PREFIX_PROPERTY}=1\n`, body: Buffer.alloc(0) });
    h.updates.add(entry(8, '/a/b/x'));
    h.updates.add(del);
    h.updates.add(entry(10, '/a/b/y'));
    h.updates.add(entry(11, '/a/bz', { body: Buffer.alloc(0) })); // not a delete by prefix
    h.updates.flush();
    const byPrefix = new Map(h.sent.map((s) => [s.prefix, s]));
    expect(keysOf(byPrefix.get('/a/b/')!)).to.deep.equal(['/a/b/x', '/a/b/', '/a/b/y']);
    expect(byPrefix.get('/a/b/')!.entries[1]!.sequence).to.equal(9);
    expect(keysOf(byPrefix.get('/a/')!)).to.deep.equal(['/a/b/x', '/a/', '/a/b/y', '/a/bz']);
    expect(byPrefix.has('/c/'), 'a plain empty body under /a/ is no delete of /c/').to.equal(false);
  });

  it('cuts a batch above maxBatchBytes into several messages, in order, none above the limit but for one entry', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 100, max: 8000 }),
        (sizes, limit) => {
          const h = stream([''], limit);
          sizes.forEach((n, i) => h.updates.add(entry(i + 1, `/k/${i}`, { body: Buffer.alloc(n, 1) })));
          h.updates.flush();
          const all = h.sent.flatMap((s) => s.entries.map((e) => e.sequence));
          expect(all).to.deep.equal(sizes.map((_, i) => i + 1));
          for (const s of h.sent) {
            const bytes = s.entries.reduce((n, e) => n + e.body.length + e.key.length + 16 + 25, 0);
            if (s.entries.length > 1) expect(bytes).to.be.at.most(limit);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('gathers nothing while no prefix is subscribed, and flushes before each HUGZ', () => {
    const h = stream([]);
    h.updates.add(entry(1, '/a/1'));
    h.set.add('/a/');
    h.updates.add(entry(2, '/a/2'));
    const hugz = [Buffer.from('HUGZ')];
    h.updates.heartbeat(hugz, 50);
    expect(h.sent.map(keysOf), 'the change made while nobody followed is not held').to.deep.equal([['/a/2']]);
    expect(h.hugz).to.deep.equal([{ frames: hugz, quietMs: 50 }]);
    h.updates.heartbeat(hugz, 0);
    expect(h.hugz[1], 'quietMs is passed on as given').to.deep.equal({ frames: hugz, quietMs: 0 });
  });

  it('confirms a subscription with an empty batch on its topic', () => {
    const h = stream(['/a/']);
    h.updates.confirm('/a/');
    expect(h.sent).to.deep.equal([{ prefix: '/a/', entries: [] }]);
  });
});

describe('server/publishing: what a release frees goes out on the update stream as one batch', () => {
  it('one message per release, after the KVPUBs; the HUGZ after the batch; twinstar-prev as on the publisher', () => {
    const order: string[] = [];
    const prefixes = new Set(['/k/']);
    const updates = new UpdateStream({
      post: (frames) =>
        order.push(
          isUpdates(frames)
            ? `batch ${unpackBatch(frames[1]!)
                .map((e) => `${e.sequence}${e.properties.includes(PREV_PROPERTY) ? '+prev' : ''}`)
                .join(',')}`
            : `stream ${frames[0]!.toString()}`,
        ),
      heartbeat: (frames, quietMs) => order.push(`stream ${frames[0]!.toString()} quietMs=${quietMs}`),
      prefixes,
      maxBatchBytes: 1 << 20,
    });
    const watermark = { upTo: 0 };
    const publishing = new Publishing({
      pubOut: {
        length: 0,
        post: (frames: Buffer[]) => {
          const msg = decodeKvMsg(frames);
          order.push(msg.key === 'HUGZ' ? 'publisher HUGZ' : `kvpub ${msg.sequence}`);
        },
      } as unknown as Outbox,
      routerOut: { length: 0 } as unknown as Outbox,
      followers: new Followers({ send: () => Promise.resolve(), failed: () => undefined }),
      publishableUpTo: () => watermark.upTo,
      updates,
      released: () => undefined,
    });
    publishing.reset(0);
    for (const s of [1, 2, 4]) publishing.announce(entry(s));
    publishing.announce(entry(3, '\0bus/event')); // an event between: never published
    expect(order, 'nothing before the watermark').to.deep.equal([]);
    watermark.upTo = 3;
    publishing.release();
    expect(order).to.deep.equal(['kvpub 1', 'kvpub 2', 'batch 1,2']);
    watermark.upTo = 4;
    publishing.release();
    const hugz = [Buffer.from('HUGZ'), Buffer.alloc(8), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)];
    publishing.heartbeat(hugz, 50);
    expect(order.slice(3)).to.deep.equal([
      'kvpub 4',
      'batch 4+prev',
      'publisher HUGZ',
      'stream HUGZ quietMs=50',
    ]);
  });
});
