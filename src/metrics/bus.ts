/**
 * The event bus seen from outside (issue 16): per consumer group and per retention rule, as
 * Prometheus metrics and as the JSON of GET /streams, /groups and /groups/<name>, which
 * `twinstar stream` and `twinstar group` read. Everything is read from the node's bus machine at
 * the time of asking, the same on both nodes (the passive mirrors the active's groups).
 *
 * The groups' counts (acked, redeliveries, dead letters) live in each group's machine and start
 * from 0 again after a restart or a resync. They are exported as counters set to the machine's
 * count at each scrape, so such a restart shows as a counter reset, which rate() and increase()
 * already handle. A group that is deleted loses its series at the next scrape.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { GroupConfig, GroupStats, RetentionRule, StreamStats } from '../events/index.js';
import type { Node } from '../pair/index.js';

type Bus = Node['store']['bus'];

/** Where the bus is read from at each scrape (a node; its store's bus is replaced by a resync). */
export interface BusSource {
  readonly store: { readonly bus: Bus };
}

/** One retention rule's bucket, as GET /streams lists it. */
export interface StreamView {
  /** the rule's topic prefix ('' covers every topic no other rule covers) */
  prefix: string;
  rule: RetentionRule;
  stats: Omit<StreamStats, 'firstSequence' | 'lastSequence'> & {
    /** null while the bucket holds no event */
    firstSequence: number | null;
    lastSequence: number | null;
  };
}

/** One consumer group, as GET /groups lists it. */
export interface GroupView {
  name: string;
  /** the subscribe pattern of its members ('' if the bus does not know it) */
  pattern: string;
  config: GroupConfig;
  stats: GroupStats;
}

/** Every retention rule's bucket, sorted by prefix. */
export function streamViews(bus: Bus): StreamView[] {
  return bus.index.streams().map(({ rule, stats }) => ({
    prefix: rule.prefix,
    rule,
    stats: { ...stats, firstSequence: stats.firstSequence ?? null, lastSequence: stats.lastSequence ?? null },
  }));
}

/** Every consumer group, sorted by name. */
export function groupViews(bus: Bus): GroupView[] {
  const head = bus.index.last() ?? 0;
  return [...bus.groups]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, group]) => ({
      name,
      pattern: bus.patternOf(name) ?? '',
      config: { ...group.config },
      stats: group.stats(head),
    }));
}

/** One consumer group, or undefined when there is none of that name. */
export function groupView(bus: Bus, name: string): GroupView | undefined {
  const group = bus.groups.get(name);
  if (group === undefined) return undefined;
  return {
    name,
    pattern: bus.patternOf(name) ?? '',
    config: { ...group.config },
    stats: group.stats(bus.index.last() ?? 0),
  };
}

type GroupNumber = Exclude<keyof GroupStats, 'members'>;

/**
 * Registers the bus's metrics. Label values are group names and rule prefixes, which operators
 * choose (groups are created by subscribers the allow-list admits): their number stays small.
 */
export function registerBusMetrics(registry: Registry, node: BusSource): void {
  const registers = [registry];
  const groups = () => {
    const bus = node.store.bus;
    const head = bus.index.last() ?? 0;
    return [...bus.groups].map(([name, group]) => ({ name, stats: group.stats(head) }));
  };
  // Series of deleted groups and rules must go, so each collect starts from a reset.
  const groupGauge = (name: string, help: string, read: (stats: GroupStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['group'],
      registers,
      collect() {
        this.reset();
        for (const { name: group, stats } of groups()) this.set({ group }, read(stats));
      },
    });
  const groupCounter = (name: string, help: string, key: GroupNumber) =>
    new Counter({
      name,
      help,
      labelNames: ['group'],
      registers,
      collect() {
        this.reset();
        for (const { name: group, stats } of groups()) this.inc({ group }, stats[key]);
      },
    });
  groupGauge(
    'twinstar_group_lag',
    'Stream events above the consumer group cursor: not yet considered for the group',
    (s) => s.lag,
  );
  groupGauge(
    'twinstar_group_pending',
    'Events delivered to a member of the group and not yet acked',
    (s) => s.pending,
  );
  groupGauge(
    'twinstar_group_waiting',
    'Events of the group waiting for a redelivery (nak, expired ack wait, member gone)',
    (s) => s.waiting,
  );
  groupGauge('twinstar_group_members', 'Members connected to the group', (s) => s.members.length);
  groupCounter(
    'twinstar_group_acked_total',
    'Events the group acknowledged (since this node started or last resynced)',
    'acked',
  );
  groupCounter(
    'twinstar_group_redeliveries_total',
    'Deliveries of an event of the group after its first (since this node started or last resynced)',
    'redeliveries',
  );
  groupCounter(
    'twinstar_group_dead_letters_total',
    'Events of the group sent to $dlq.<group> after maxDeliver deliveries (since this node started or last resynced)',
    'deadLetters',
  );

  const streams = () => node.store.bus.index.streams();
  const streamGauge = (name: string, help: string, read: (stats: StreamStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['prefix'],
      registers,
      collect() {
        this.reset();
        for (const { rule, stats } of streams()) this.set({ prefix: rule.prefix }, read(stats));
      },
    });
  streamGauge(
    'twinstar_stream_events',
    'Events held under the retention rule for this topic prefix',
    (s) => s.events,
  );
  streamGauge('twinstar_stream_bytes', 'Bytes of the events held under the retention rule', (s) => s.bytes);
  new Counter({
    name: 'twinstar_stream_dropped_total',
    help: 'Events the retention rule dropped (maxEvents, maxBytes, maxAgeMs) since this node started or last resynced',
    labelNames: ['prefix'],
    registers,
    collect() {
      this.reset();
      for (const { rule, stats } of streams()) this.inc({ prefix: rule.prefix }, stats.dropped);
    },
  });
}
