import { expect } from 'chai';
import fc from 'fast-check';
import { inPageOrder, offsetOf, PAGE_SPAN, pageOf } from '../../../src/kv/packed-view.js';

/** Distinct handles: `[page, offset]` pairs, unique per handle as a map's records are. */
const handlesArb = (pages: number, maxOffset: number, maxLength: number) =>
  fc.uniqueArray(
    fc.tuple(fc.nat(pages - 1), fc.nat(maxOffset)).map(([page, offset]) => page * PAGE_SPAN + offset),
    { maxLength, size: 'max' },
  );

describe('kv/packed-view inPageOrder', () => {
  it('sorts handles by page, then by offset, in the array it was given', () => {
    const caseArb = fc
      .tuple(fc.integer({ min: 1, max: 6 }), fc.constantFrom(40, 5_000, 2 ** 21, 2 ** 32 - 1))
      .chain(([pages, maxOffset]) => fc.tuple(fc.constant(pages), handlesArb(pages, maxOffset, 2_000)));
    fc.assert(
      fc.property(caseArb, ([pages, drawn]) => {
        const handles = Float64Array.from(drawn);
        const sorted = inPageOrder(handles, pages);
        expect(sorted).to.equal(handles); // in place: no second array of every handle
        expect([...sorted]).to.deep.equal([...drawn].sort((a, b) => a - b));
      }),
      // no shrinking: a case of 2,000 handles shrinks for minutes, in one synchronous call
      { numRuns: 200, endOnFailure: true },
    );
  });

  it('sorts long runs of one page (the counting passes) and short ones (the engine) alike', () => {
    // 3 pages: one with 5,000 handles, one with 300, one with 3; offsets shuffled and 3 digits wide
    const drawn: number[] = [];
    const add = (page: number, count: number, stride: number) => {
      for (let i = 0; i < count; i++) drawn.push(page * PAGE_SPAN + ((i * stride) % 2 ** 32));
    };
    add(2, 5_000, 2_654_435_761);
    add(0, 300, 40_503);
    add(1, 3, 7);
    for (let i = drawn.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [drawn[i], drawn[j]] = [drawn[j]!, drawn[i]!];
    }
    const sorted = [...inPageOrder(Float64Array.from(drawn), 3)];
    expect(sorted).to.deep.equal([...drawn].sort((a, b) => a - b));
    expect(
      sorted
        .map(pageOf)
        .slice(0, 300)
        .every((p) => p === 0),
    ).to.equal(true);
    expect(offsetOf(sorted.at(-1)!)).to.be.greaterThan(2 ** 22); // a third digit was sorted
  });

  it('leaves an empty or one-handle array as it is', () => {
    expect([...inPageOrder(new Float64Array(0), 4)]).to.deep.equal([]);
    expect([...inPageOrder(Float64Array.of(3 * PAGE_SPAN + 9), 4)]).to.deep.equal([3 * PAGE_SPAN + 9]);
  });
});
