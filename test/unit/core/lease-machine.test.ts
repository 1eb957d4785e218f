/**
 * The lease state machine (src/core/lease-machine.ts), pure: what an expired lease takes with it.
 */
import { expect } from 'chai';
import { LeaseMachine, leaseKey } from '../../../src/core/lease-machine.js';
import type { Entry } from '../../../src/kv/index.js';

const entry = (key: string, body: string, properties = ''): Entry => ({
  key,
  sequence: 1,
  uuid: '',
  properties,
  body: Buffer.from(body),
  expiresAt: 0,
});

describe('LeaseMachine', () => {
  it('an expired lease with 600,000 keys is due as 600,000 deletes then its own (no stack overflow)', () => {
    const n = 600_000; // spreading that many arguments into push() overflows V8's stack
    const leases = new LeaseMachine();
    leases.apply(entry(leaseKey(7), JSON.stringify({ ttlMs: 1000, expiresAt: 5000 })));
    for (let i = 0; i < n; i++) leases.apply(entry(`/held/${i}`, 'v', 'lease=7\n'));
    expect(leases.info(7, 0)?.keys).to.equal(n);
    expect(leases.due(4999, 1000), 'not yet').to.deep.equal([]);
    const due = leases.due(5000, 1000);
    expect(due.length).to.equal(n + 1);
    expect(due.every((c) => c.body.length === 0)).to.equal(true);
    expect(due[0]!.key).to.equal('/held/0');
    expect(due[n]!.key).to.equal(leaseKey(7));
  });
});
