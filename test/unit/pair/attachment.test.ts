/**
 * The attachment rule (src/pair/attachment.ts): when the active counts its passive for
 * acknowledgements, as a table of facts and the decision each must give.
 */
import { expect } from 'chai';
import { attachment, type Attachment, type AttachmentFacts } from '../../../src/pair/attachment.js';

const FAILOVER_MS = 500;

/** A healthy pair: an attached passive, heard a moment ago, synced, nothing waiting. */
function facts(overrides: Partial<AttachmentFacts> = {}): AttachmentFacts {
  return {
    now: 1_000,
    failoverMs: FAILOVER_MS,
    sequence: 100,
    acked: 100,
    attached: true,
    oldestWaitMs: 0,
    catchUpTo: undefined,
    fenced: false,
    relearning: false,
    peer: { state: 'PASSIVE', synced: true },
    peerExpiresAt: 1_400,
    ...overrides,
  };
}
const attached: Attachment = { hold: false, attach: true, catchUpTo: undefined, detachedSlow: false };
const detached: Attachment = { hold: false, attach: false, catchUpTo: undefined, detachedSlow: false };

const TABLE: [name: string, facts: Partial<AttachmentFacts>, expected: Attachment][] = [
  ['a heard, synced passive is attached', {}, attached],
  ['a synced passive attaches', { attached: false }, attached],
  [
    'a passive not yet synced does not attach',
    { attached: false, peer: { state: 'PASSIVE', synced: false } },
    detached,
  ],
  [
    'an attached passive that resumes after a gap (not synced) stays attached: writes wait for it',
    { peer: { state: 'PASSIVE', synced: false } },
    attached,
  ],
  ['no peer ever heard (or refused): detached', { peer: undefined }, detached],
  ['the peer fell silent for the failover timeout: detached', { now: 1_400 }, detached],
  ['the peer is heard but not passive: detached', { peer: { state: 'BACKUP', synced: false } }, detached],
  ['the peer is another active: detached', { peer: { state: 'ACTIVE', synced: false } }, detached],
  [
    'a write waiting exactly the failover timeout still waits',
    { oldestWaitMs: FAILOVER_MS, acked: 90 },
    attached,
  ],
  [
    'a write waiting longer than the failover timeout detaches the slow passive until it acks the current sequence',
    { oldestWaitMs: FAILOVER_MS + 1, acked: 90 },
    { hold: false, attach: false, catchUpTo: 100, detachedSlow: true },
  ],
  [
    'a detached slow passive that has not caught up stays detached, however synced it says it is',
    { attached: false, catchUpTo: 100, acked: 99 },
    { hold: false, attach: false, catchUpTo: 100, detachedSlow: false },
  ],
  [
    'once it has acked everything sequenced meanwhile it attaches again',
    { attached: false, catchUpTo: 100, acked: 100 },
    attached,
  ],
  [
    'fenced: nothing changes (the waiting writes must not be acknowledged as degraded)',
    { fenced: true, peer: undefined },
    { hold: true },
  ],
  [
    're-learning after a stall: nothing changes',
    { relearning: true, oldestWaitMs: 10 * FAILOVER_MS },
    { hold: true },
  ],
];

describe('attachment rule', () => {
  for (const [name, overrides, expected] of TABLE) {
    it(name, () => {
      expect(attachment(facts(overrides))).to.deep.equal(expected);
    });
  }

  it('the table is not vacuous: it reaches attach, detach, detach-as-slow, still-catching-up and hold', () => {
    const answers = new Set(TABLE.map(([, f]) => JSON.stringify(attachment(facts(f)))));
    expect(answers.size).to.equal(5);
  });
});
