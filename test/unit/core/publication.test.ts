/**
 * The publication watermark (src/core/publication.ts): changes are released in order, only up to
 * the watermark, exactly once, and a paused release goes on where it stopped.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { PublicationQueue } from '../../../src/core/publication.js';

const always = () => true;
const seqs = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ sequence: from + i }));

function filled(from: number, to: number): PublicationQueue<{ sequence: number }> {
  const queue = new PublicationQueue<{ sequence: number }>();
  for (const entry of seqs(from, to)) queue.push(entry);
  return queue;
}

describe('core/publication: the publication watermark', () => {
  it('holds every change above the watermark and releases, in order, those at or below it', () => {
    const queue = filled(1, 5);
    const out: number[] = [];
    expect(queue.release(0, (e) => out.push(e.sequence), always)).to.equal('done');
    expect(out, 'nothing is released above the watermark').to.deep.equal([]);
    expect(queue.size).to.equal(5);
    expect(queue.release(3, (e) => out.push(e.sequence), always)).to.equal('done');
    expect(out).to.deep.equal([1, 2, 3]);
    expect(queue.publishedSequence).to.equal(3);
    expect(queue.size).to.equal(2);
    queue.release(10, (e) => out.push(e.sequence), always);
    expect(out, 'each once').to.deep.equal([1, 2, 3, 4, 5]);
    expect(queue.size).to.equal(0);
    expect(queue.publishedSequence).to.equal(5);
  });

  it('a paused release goes on from where it stopped, and mayContinue is told how many it released', () => {
    const queue = filled(1, 10);
    const out: number[] = [];
    const asked: number[] = [];
    const twoAtATime = (released: number) => {
      asked.push(released);
      return released < 2;
    };
    expect(queue.release(8, (e) => out.push(e.sequence), twoAtATime)).to.equal('paused');
    expect(out).to.deep.equal([1, 2]);
    expect(asked).to.deep.equal([0, 1, 2]);
    expect(queue.release(8, (e) => out.push(e.sequence), twoAtATime)).to.equal('paused');
    expect(queue.release(8, (e) => out.push(e.sequence), twoAtATime)).to.equal('paused');
    expect(queue.release(8, (e) => out.push(e.sequence), twoAtATime)).to.equal('done');
    expect(out).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(queue.size).to.equal(2);
  });

  it('can be stopped before the first change (a full send queue): nothing is released', () => {
    const queue = filled(1, 3);
    const out: number[] = [];
    expect(
      queue.release(
        3,
        (e) => out.push(e.sequence),
        () => false,
      ),
    ).to.equal('paused');
    expect(out).to.deep.equal([]);
    expect(queue.publishedSequence).to.equal(0);
  });

  it('reset forgets what is held and, given one, starts from a sequence', () => {
    const queue = filled(1, 3);
    queue.release(1, () => undefined, always);
    queue.reset();
    expect(queue.size).to.equal(0);
    expect(queue.publishedSequence, 'kept without a sequence').to.equal(1);
    queue.reset(40);
    expect(queue.publishedSequence).to.equal(40);
    queue.push({ sequence: 41 });
    const out: number[] = [];
    queue.release(41, (e) => out.push(e.sequence), always);
    expect(out).to.deep.equal([41]);
  });

  it('releases any stream of pushes and watermarks exactly once and in order (across compactions)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ push: fc.nat(3000), raise: fc.nat(3000), budget: fc.integer({ min: 1, max: 2000 }) }),
          {
            maxLength: 12,
          },
        ),
        (steps) => {
          const queue = new PublicationQueue<{ sequence: number }>();
          let next = 1;
          let watermark = 0;
          const out: number[] = [];
          for (const step of steps) {
            for (let i = 0; i < step.push; i++) queue.push({ sequence: next++ });
            watermark = Math.min(next - 1, watermark + step.raise);
            queue.release(
              watermark,
              (e) => out.push(e.sequence),
              (n) => n < step.budget,
            );
          }
          while (queue.release(watermark, (e) => out.push(e.sequence), always) !== 'done');
          expect(out).to.deep.equal(Array.from({ length: watermark }, (_, i) => i + 1));
          expect(queue.size).to.equal(next - 1 - watermark);
        },
      ),
      { numRuns: 200 },
    );
  });
});
