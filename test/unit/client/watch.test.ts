/**
 * WatchStream (src/client/watch.ts): the push-to-pull queue behind `client.watch()`.
 */
import { expect } from 'chai';
import { WatchStream } from '../../../src/client/watch.js';

function stream<T>() {
  let detached = 0;
  const s = new WatchStream<T>(() => detached++);
  return { s, detached: () => detached };
}

/** Resolves to 'pending' if the promise has not settled after the microtask queue drains. */
async function settled<T>(p: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

describe('WatchStream', () => {
  it('items pushed before next() come out in push order', async () => {
    const { s } = stream<number>();
    for (let i = 0; i < 5; i++) s.push(i);
    const got: number[] = [];
    for (let i = 0; i < 5; i++) got.push((await s.next()).value as number);
    expect(got).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('a waiting next() is resolved by the next push, later pushes queue behind it', async () => {
    const { s } = stream<string>();
    const first = s.next();
    expect(await settled(first)).to.equal('pending');
    s.push('a');
    s.push('b');
    expect(await first).to.deep.equal({ value: 'a', done: false });
    expect(await s.next()).to.deep.equal({ value: 'b', done: false });
  });

  it('keeps order across the internal compaction of a long queue', async () => {
    const { s } = stream<number>();
    const N = 5000;
    for (let i = 0; i < N; i++) s.push(i);
    for (let i = 0; i < N; i++) {
      const r = await s.next();
      expect(r.value).to.equal(i);
      if (i % 700 === 0) s.push(N + i); // interleave pushes with pulls
    }
    const rest: number[] = [];
    for (let r = await settled(s.next()); r !== 'pending'; r = await settled(s.next()))
      rest.push(r.value as number);
    expect(rest).to.deep.equal(Array.from({ length: 8 }, (_, k) => N + k * 700));
  });

  it('end() resolves a waiting next() with done and detaches once', async () => {
    const { s, detached } = stream<number>();
    const waiting = s.next();
    s.end();
    expect(await waiting).to.deep.equal({ value: undefined, done: true });
    expect(detached()).to.equal(1);
    s.end();
    expect(detached()).to.equal(1);
    expect(await s.next()).to.deep.equal({ value: undefined, done: true });
  });

  it('after end() buffered items are still delivered, new pushes are ignored', async () => {
    const { s } = stream<number>();
    s.push(1);
    s.end();
    s.push(2);
    expect(await s.next()).to.deep.equal({ value: 1, done: false });
    expect(await s.next()).to.deep.equal({ value: undefined, done: true });
  });

  it('return() detaches, drops buffered items and ends iteration', async () => {
    const { s, detached } = stream<number>();
    s.push(1);
    s.push(2);
    expect(await s.return()).to.deep.equal({ value: undefined, done: true });
    expect(detached()).to.equal(1);
    s.push(3);
    expect(await s.next()).to.deep.equal({ value: undefined, done: true });
  });

  it('breaking out of for-await detaches the stream', async () => {
    const { s, detached } = stream<number>();
    s.push(1);
    s.push(2);
    s.push(3);
    const seen: number[] = [];
    for await (const v of s) {
      seen.push(v);
      if (v === 2) break;
    }
    expect(seen).to.deep.equal([1, 2]);
    expect(detached()).to.equal(1);
  });

  it('for-await ends when end() is called while it waits', async () => {
    const { s } = stream<number>();
    const seen: number[] = [];
    const loop = (async () => {
      for await (const v of s) seen.push(v);
      return 'ended';
    })();
    s.push(1);
    await new Promise((resolve) => setImmediate(resolve)); // the loop took 1 and now waits
    expect(seen).to.deep.equal([1]);
    s.push(2);
    s.end();
    expect(await loop).to.equal('ended');
    expect(seen).to.deep.equal([1, 2]);
  });

  it('fail(error): buffered items first, then next() rejects once with the error, then done; a waiting next() rejects', async () => {
    const { s, detached } = stream<number>();
    s.push(1);
    s.fail(new Error('gone'));
    expect(detached()).to.equal(1);
    expect(await s.next()).to.deep.equal({ value: 1, done: false });
    const error = await s.next().then(
      () => 'resolved',
      (e: unknown) => (e as Error).message,
    );
    expect(error).to.equal('gone');
    expect(await s.next()).to.deep.equal({ value: undefined, done: true });
    const other = stream<number>().s;
    const waiting = other.next();
    other.fail(new Error('later'));
    expect(
      await waiting.then(
        () => 'resolved',
        (e: unknown) => (e as Error).message,
      ),
    ).to.equal('later');
  });
});
