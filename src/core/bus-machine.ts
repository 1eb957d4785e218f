/**
 * The event bus as a state machine of the sequencer (issue 16): the stream's index and the
 * consumer groups, fed the entries of the reserved namespace (src/events/keys.ts). The entries
 * themselves stay in the key-value machine's map, which is what storage keeps and what a resync
 * streams; this machine is the in-memory index over them, rebuilt from the map at start and from
 * a snapshot's entries at a resync.
 *
 * Both nodes apply the same entries in the same order, so both hold the same stream and groups.
 * Retention by count and bytes happens as an event is appended (the same on both nodes); the
 * entries it drops, and the ones past their age (the active's clock, like TTL), are deleted from
 * the map by sequenced deletes that only the active asks for (`due`).
 */
import type { Entry } from '../kv/index.js';
import {
  GroupMachine,
  StreamIndex,
  eventKey,
  eventSequence,
  isReserved,
  parseEventProperties,
  parseOp,
  parseSlot,
  GROUP_PREFIX,
  configSlot,
  memberSlot,
  opProperties,
  pendingSlot,
  type GroupOp,
  type SlotOp,
  type GroupConfig,
  type GroupJson,
  type PendingJson,
  type RetentionRule,
} from '../events/index.js';
import type { DueChange, StateMachine } from './state-machine.js';

const EMPTY = Buffer.alloc(0);

function slotChange(key: string, op: SlotOp, value: unknown): DueChange {
  return {
    key,
    properties: opProperties(op),
    body: value === undefined ? EMPTY : Buffer.from(JSON.stringify(value)),
    expiresAt: 0,
  };
}

/** The body of a group's config slot. */
export interface GroupRecord {
  readonly config: GroupConfig;
  /** the subscribe pattern every member of the group uses */
  readonly pattern: string;
  readonly cursor: number;
}

/** The body of a pending slot: deliveries, holder (null: waiting), deadline or not-before. */
export interface PendingRecord {
  readonly d: number;
  readonly m: string | null;
  readonly at: number;
}

/** Slots read during a restore, turned into groups at the first use after it. */
interface Restoring {
  readonly configs: Map<string, GroupRecord>;
  readonly members: Map<string, Map<string, number>>;
  readonly pending: Map<string, PendingJson[]>;
  readonly events: Entry[];
}

export class BusMachine implements StateMachine {
  private readonly stream: StreamIndex;
  private readonly groupMap = new Map<string, GroupMachine>();
  /** group slot keys present in the map (for counting and for deleting an abandoned group) */
  private readonly slots = new Set<string>();
  /** events retention dropped from the index whose entries the map still holds */
  private readonly unreclaimed = new Set<number>();
  private restoring: Restoring | undefined;
  /** each group's pattern, from its config slot */
  private readonly patterns = new Map<string, string>();
  private lastEvent = 0;
  private lastKey = 0;

  constructor(readonly rules: readonly RetentionRule[] = []) {
    this.stream = new StreamIndex(rules);
  }

  get index(): StreamIndex {
    this.settle();
    return this.stream;
  }

  get groups(): ReadonlyMap<string, GroupMachine> {
    this.settle();
    return this.groupMap;
  }

  /** Reserved keys in the map: events held or not yet reclaimed, and group slots. */
  get reservedKeys(): number {
    this.settle();
    return this.stream.size + this.unreclaimed.size + this.slots.size;
  }

  /** A group's subscribe pattern. */
  patternOf(group: string): string | undefined {
    this.settle();
    return this.patterns.get(group);
  }

  // ----------------------------------------------------------------------------------------------
  // The changes the active sequences (pure: what to write; the server commits them).

  /** A new group at `cursor` (events after it are its to consider). */
  createChange(config: GroupConfig, pattern: string, cursor: number): DueChange {
    const record: GroupRecord = { config, pattern, cursor };
    return slotChange(configSlot(config.name), { type: 'create' }, record);
  }

  /** The group's cursor as it is now, persisted (after deliveries moved it). */
  cursorChange(name: string): DueChange | undefined {
    const group = this.groups.get(name);
    const pattern = this.patterns.get(name);
    if (group === undefined || pattern === undefined) return undefined;
    const record: GroupRecord = { config: group.config, pattern, cursor: group.considered };
    return slotChange(configSlot(name), { type: 'cursor' }, record);
  }

  /** The slot write for one op of a group, its value as the op leaves it. */
  opChange(name: string, op: GroupOp): DueChange {
    const group = this.groups.get(name);
    const before = 'event' in op ? group?.pendingOf(op.event) : undefined;
    const pending = (event: number, record: PendingRecord | undefined) =>
      slotChange(pendingSlot(name, event), op, record);
    switch (op.type) {
      case 'join':
        return slotChange(memberSlot(name, op.member), op, { since: op.at });
      case 'leave':
        return slotChange(memberSlot(name, op.member), op, undefined);
      case 'deliver':
        return pending(op.event, { d: (before?.deliveries ?? 0) + 1, m: op.member, at: op.deadline });
      case 'nak':
        return pending(op.event, { d: before?.deliveries ?? 1, m: null, at: op.notBefore });
      case 'working':
        return pending(op.event, { d: before?.deliveries ?? 1, m: op.member, at: op.deadline });
      case 'expire':
        return pending(op.event, { d: before?.deliveries ?? 1, m: null, at: before?.at ?? 0 });
      case 'ack':
      case 'term':
      case 'dead-letter':
        return pending(op.event, undefined);
      case 'advance': {
        const record: GroupRecord = {
          config: group!.config,
          pattern: this.patterns.get(name) ?? '>',
          cursor: op.upTo,
        };
        return slotChange(configSlot(name), op, record);
      }
    }
  }

  /** Deletes for every slot of an abandoned group, its config slot last. */
  deleteChanges(name: string): DueChange[] {
    const out = this.slotsOf(name).map((key) => slotChange(key, { type: 'forget' }, undefined));
    out.push(slotChange(configSlot(name), { type: 'delete' }, undefined));
    return out;
  }

  /** The slot keys of one group, for deleting it. */
  slotsOf(group: string): string[] {
    const own = `${GROUP_PREFIX}${group}/`;
    return [...this.slots].filter((key) => key.startsWith(own));
  }

  /** The sequence of the last key change (not the bus's) applied since this machine was made. */
  get lastKeySequence(): number {
    return this.lastKey;
  }

  apply(entry: Entry): void {
    if (!isReserved(entry.key)) {
      this.lastKey = entry.sequence;
      return;
    }
    this.settle();
    const sequence = eventSequence(entry.key);
    if (sequence !== undefined) return this.applyEvent(sequence, entry);
    const slot = parseSlot(entry.key);
    if (slot === undefined) return;
    if (entry.body.length === 0) this.slots.delete(entry.key);
    else this.slots.add(entry.key);
    const op = parseOp(entry.properties);
    if (op === undefined) return;
    switch (op.type) {
      case 'create': {
        const record = JSON.parse(entry.body.toString()) as GroupRecord;
        const group = new GroupMachine(record.config);
        if (record.cursor > 0) group.apply({ type: 'advance', upTo: record.cursor });
        this.groupMap.set(slot.group, group);
        this.patterns.set(slot.group, record.pattern);
        return;
      }
      case 'delete':
        this.groupMap.delete(slot.group);
        this.patterns.delete(slot.group);
        return;
      case 'cursor':
      case 'forget':
        return;
      default:
        this.groupMap.get(slot.group)?.apply(op);
    }
  }

  private applyEvent(sequence: number, entry: Entry): void {
    if (entry.body.length === 0) {
      if (!this.unreclaimed.delete(sequence)) this.stream.dropIfOldest(sequence);
      return;
    }
    const { topic, time } = parseEventProperties(entry.properties);
    if (sequence <= this.lastEvent) return; // restored twice: already held
    this.lastEvent = sequence;
    for (const dropped of this.stream.append({
      sequence,
      topic,
      bytes: entry.body.length + entry.properties.length,
      time,
    }))
      this.unreclaimed.add(dropped);
  }

  snapshot(): Promise<Entry[]> {
    // The entries live in the key-value map, whose snapshot carries them.
    return Promise.resolve([]);
  }

  empty(): BusMachine {
    return new BusMachine(this.rules);
  }

  /** Takes the reserved entries of a snapshot chunk (or of the map at start); others are ignored. */
  restore(entries: Iterable<Entry>): void {
    for (const entry of entries) {
      if (!isReserved(entry.key) || entry.body.length === 0) continue;
      const r = (this.restoring ??= {
        configs: new Map(),
        members: new Map(),
        pending: new Map(),
        events: [] as Entry[],
      } satisfies Restoring);
      if (eventSequence(entry.key) !== undefined) {
        r.events.push(entry);
        continue;
      }
      const slot = parseSlot(entry.key);
      if (slot === undefined) continue;
      const body = JSON.parse(entry.body.toString()) as unknown;
      this.slots.add(entry.key);
      if (slot.kind === 'config') r.configs.set(slot.group, body as GroupRecord);
      else if (slot.kind === 'member') {
        const members = r.members.get(slot.group) ?? new Map<string, number>();
        members.set(slot.id, (body as { since: number }).since);
        r.members.set(slot.group, members);
      } else {
        const p = body as PendingRecord;
        const list = r.pending.get(slot.group) ?? [];
        list.push({ event: Number.parseInt(slot.id, 16), deliveries: p.d, member: p.m, at: p.at });
        r.pending.set(slot.group, list);
      }
    }
  }

  /** Builds what a restore collected: events in sequence order, then each group from its slots. */
  private settle(): void {
    const r = this.restoring;
    if (r === undefined) return;
    this.restoring = undefined;
    r.events.sort((a, b) => a.sequence - b.sequence);
    for (const entry of r.events) this.applyEvent(eventSequence(entry.key)!, entry);
    for (const [name, record] of r.configs) {
      const members = r.members.get(name) ?? new Map<string, number>();
      const pending = (r.pending.get(name) ?? [])
        .map((p) => (p.member !== null && !members.has(p.member) ? { ...p, member: null } : p))
        .sort((a, b) => a.event - b.event);
      const json: GroupJson = {
        config: record.config,
        cursor: record.cursor,
        members: [...members].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, since]) => ({ id, since })),
        pending,
        counters: { acked: 0, termed: 0, deadLetters: 0, redeliveries: 0, ignored: 0 },
      };
      this.groupMap.set(name, GroupMachine.fromJSON(json));
      this.patterns.set(name, record.pattern);
    }
  }

  /**
   * Active only: deletes for the event entries retention dropped (by count or bytes, when they
   * were appended) and for those past their rule's age at `now`, oldest first, at most `max`.
   */
  due(now: number, max: number): DueChange[] {
    this.settle();
    for (const sequence of this.stream.expire(now)) this.unreclaimed.add(sequence);
    const out: DueChange[] = [];
    for (const sequence of this.unreclaimed) {
      if (out.length >= max) break;
      out.push({ key: eventKey(sequence), properties: '', body: EMPTY, expiresAt: 0 });
    }
    return out;
  }
}
