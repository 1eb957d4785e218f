/**
 * The pair's history of promotions (src/core/timeline.ts): whether a (sequence, term)
 * lies on our timeline, where another history forks from ours, and the bounded length.
 */
import { expect } from 'chai';
import { Timeline, type TimelineEntry } from '../../../src/core/timeline.js';

const t = (term: string, epoch: number, startSequence: number): TimelineEntry => ({
  term,
  epoch,
  startSequence,
});

function timeline(...entries: TimelineEntry[]): Timeline {
  const tl = new Timeline();
  for (const e of entries) tl.open(e);
  return tl;
}

describe('Timeline', () => {
  it('starts empty: no current term, includes nothing', () => {
    const tl = new Timeline();
    expect(tl.current).to.equal(undefined);
    expect(tl.term).to.equal('');
    expect(tl.list()).to.deep.equal([]);
    expect(tl.includes(0, '')).to.equal(false);
  });

  it('starts from a stored history (the newest 32 terms) and reports every change to its storage', () => {
    const stored = Array.from({ length: 40 }, (_, i) => t(`s${i}`, i + 1, i * 10 + 1));
    const seen: string[] = [];
    const tl: Timeline = new Timeline({ entries: stored }, () => seen.push(`${tl.term}/${tl.epoch}`));
    expect(tl.term).to.equal('s39');
    expect(tl.epoch, 'the epoch of the newest stored term').to.equal(40);
    expect(tl.list()).to.have.length(32);
    expect(tl.includes(385, 's38')).to.equal(true);
    expect(seen, 'loading is not a change').to.deep.equal([]);
    tl.open(t('n1', 41, 401));
    tl.adopt([t('a1', 42, 500)]);
    expect(seen).to.deep.equal(['n1/41', 'a1/41']);
  });

  it('epoch: raised by a stored value, by open() and by raiseEpoch(), never lowered', () => {
    const seen: number[] = [];
    const tl: Timeline = new Timeline({ epoch: 7 }, () => seen.push(tl.epoch));
    expect(tl.epoch).to.equal(7);
    tl.raiseEpoch(3);
    expect(tl.epoch).to.equal(7);
    expect(seen, 'no change, no report').to.deep.equal([]);
    tl.raiseEpoch(9);
    tl.open(t('x', 12, 1));
    tl.open(t('y', 10, 2)); // an older epoch's term cannot lower it
    expect(tl.epoch).to.equal(12);
    expect(seen).to.deep.equal([9, 12, 12]);
    expect(new Timeline().epoch).to.equal(0);
  });

  it('open() makes the new term current', () => {
    const tl = timeline(t('t1', 1, 1), t('t2', 2, 50));
    expect(tl.term).to.equal('t2');
    expect(tl.current).to.deep.equal(t('t2', 2, 50));
    expect(tl.list().map((e) => e.term)).to.deep.equal(['t1', 't2']);
  });

  it('list() is a copy', () => {
    const tl = timeline(t('t1', 1, 1));
    tl.list().push(t('x', 9, 9));
    expect(tl.list()).to.have.length(1);
  });

  describe('includes(sequence, term)', () => {
    const tl = timeline(t('t1', 1, 1), t('t2', 2, 50), t('t3', 4, 80));

    it('is false for a term not in our history', () => {
      expect(tl.includes(10, 'other')).to.equal(false);
    });

    it('is true for a sequence before the next term began, false from its start on', () => {
      expect(tl.includes(0, 't1')).to.equal(true);
      expect(tl.includes(49, 't1')).to.equal(true);
      expect(tl.includes(50, 't1')).to.equal(false);
      expect(tl.includes(79, 't2')).to.equal(true);
      expect(tl.includes(80, 't2')).to.equal(false);
    });

    it('is true for any sequence under the current term', () => {
      expect(tl.includes(80, 't3')).to.equal(true);
      expect(tl.includes(1e9, 't3')).to.equal(true);
    });
  });

  describe('forkPoint(theirs)', () => {
    it('is the start of the first term of theirs that we lack', () => {
      const ours = timeline(t('t1', 1, 1), t('t2', 2, 50), t('mine', 3, 70));
      const theirs = [t('t1', 1, 1), t('t2', 2, 50), t('theirs', 3, 65), t('theirs2', 4, 90)];
      expect(ours.forkPoint(theirs)).to.equal(65);
    });

    it('is undefined when theirs holds nothing new', () => {
      const ours = timeline(t('t1', 1, 1), t('t2', 2, 50));
      expect(ours.forkPoint([t('t1', 1, 1)])).to.equal(undefined);
      expect(ours.forkPoint([t('t1', 1, 1), t('t2', 2, 50)])).to.equal(undefined);
      expect(ours.forkPoint([])).to.equal(undefined);
    });

    it('is their first term when the histories share nothing', () => {
      expect(timeline(t('a', 1, 1)).forkPoint([t('b', 1, 1), t('c', 2, 9)])).to.equal(1);
    });
  });

  describe('KEEP bound (32 terms)', () => {
    it('open() keeps the newest 32 terms and forgets older ones', () => {
      const tl = new Timeline();
      for (let i = 1; i <= 40; i++) tl.open(t(`t${i}`, i, i * 10));
      const terms = tl.list().map((e) => e.term);
      expect(terms).to.have.length(32);
      expect(terms[0]).to.equal('t9');
      expect(terms[31]).to.equal('t40');
      expect(tl.includes(15, 't1')).to.equal(false, 'a forgotten term is not on our timeline');
      expect(tl.includes(95, 't9')).to.equal(true);
    });

    it('adopt() takes the last 32 of the given history and replaces ours', () => {
      const tl = timeline(t('mine', 1, 1));
      const theirs = Array.from({ length: 35 }, (_, i) => t(`p${i}`, i + 1, i * 5 + 1));
      tl.adopt(theirs);
      const terms = tl.list().map((e) => e.term);
      expect(terms).to.have.length(32);
      expect(terms[0]).to.equal('p3');
      expect(tl.term).to.equal('p34');
      expect(tl.includes(1, 'mine')).to.equal(false);
      tl.adopt([t('x', 1, 1)]);
      expect(tl.list()).to.deep.equal([t('x', 1, 1)]);
    });
  });
});
