/**
 * The bus machine's retention on the log (src/core/bus-machine.ts): drops by count happen as an
 * event is appended (on both nodes alike), drops by age on the active's clock; either way the
 * map's entries go by sequenced deletes that only the active asks for, and a passive that applies
 * them ends with the same stream.
 */
import { expect } from 'chai';
import { Store } from '../../../src/core/store.js';
import { eventKey, eventProperties } from '../../../src/events/index.js';

const options = { replayLogSize: 1000, dedupeSize: 100, dedupeMs: 60_000 };
const ZERO = '\0'.repeat(16);

function publish(store: Store, topic: string, time: number): number {
  const result = store.commit(
    {
      key: eventKey(store.sequence + 1),
      uuid: ZERO,
      properties: eventProperties({ topic, time, headers: {} }),
      body: Buffer.from(topic),
      expiresAt: 0,
    },
    time,
  );
  if (result.duplicate) throw new Error('duplicate');
  return result.entry.sequence;
}

describe('core/bus-machine: retention on the log', () => {
  it('maxEvents per prefix: the oldest go from the index at once, and from the map by deletes the active sequences', () => {
    const retention = [
      { prefix: '', maxEvents: 100 },
      { prefix: 'metrics', maxEvents: 2 },
    ];
    const active = new Store({ ...options, retention });
    const passive = new Store({ ...options, retention });
    const seqs = [1, 2, 3, 4].map((i) => publish(active, 'metrics.cpu', i));
    publish(active, 'orders.created', 5);
    expect(active.bus.index.stats('metrics')!.events).to.equal(2);
    expect(active.map.get(eventKey(seqs[0]!)), 'still in the map until deleted').to.not.equal(undefined);
    const deletes = active.expire(10, () => ZERO);
    expect(deletes.map((e) => e.key)).to.deep.equal([eventKey(seqs[0]!), eventKey(seqs[1]!)]);
    expect(active.map.get(eventKey(seqs[0]!))).to.equal(undefined);
    expect(
      active.expire(10, () => ZERO),
      'nothing more to delete',
    ).to.deep.equal([]);
    for (const entry of active.changesSince(0)!) passive.replicate(entry, 10);
    expect(passive.bus.index.stats()).to.deep.equal(active.bus.index.stats());
    expect(passive.map.size).to.equal(active.map.size);
    expect(passive.bus.reservedKeys).to.equal(3);
  });

  it('maxAgeMs: only the active drops by age (its clock), and the passive follows its deletes', () => {
    const retention = [{ prefix: '', maxAgeMs: 1_000 }];
    const active = new Store({ ...options, retention });
    const passive = new Store({ ...options, retention });
    publish(active, 'a', 0);
    publish(active, 'b', 500);
    publish(active, 'c', 2_000);
    for (const entry of active.changesSince(0)!) passive.replicate(entry, 0);
    expect(passive.bus.index.size, 'the passive drops nothing by itself').to.equal(3);
    const deletes = active.expire(1_600, () => ZERO);
    expect(deletes.map((e) => e.key)).to.deep.equal([eventKey(1), eventKey(2)]);
    for (const entry of deletes) passive.replicate(entry, 1_600);
    expect(passive.bus.index.stats()).to.deep.equal(active.bus.index.stats());
    expect(passive.bus.index.first()).to.equal(3);
  });
});
