/**
 * How the event bus lives on the sequenced log (issue 16, docs/events.md "On the log"). Events and
 * consumer-group state are entries in a reserved key namespace, so that the sequencer gives them
 * one order with the key-value writes, the peer link replicates them, the replay window resumes
 * them, and the storage that keeps the map keeps them too. Clients cannot write that namespace (the
 * server refuses it) and never see it: snapshots, resumes and publications leave it out.
 *
 * - An event is `\0e/<sequence, 16 hex digits>`; its properties carry the topic (`t=`), the publish
 *   time (`ts=`) and each header as `h.<name>=`; its body is the data. Retention deletes it.
 * - A group is a set of slots, each the current value of one part of its state, so that the map
 *   alone is enough to rebuild the group (restart, resync): `\0g/<group>` (config and cursor),
 *   `\0g/<group>/m/<member>` (a member), `\0g/<group>/p/<event>` (an event the group holds).
 *   Each slot write also carries the op that made it (`op=` JSON), which both nodes apply to their
 *   in-memory machine in log order.
 *
 * Pure: no I/O.
 */
import type { GroupOp } from './group-ops.js';

/** Every key the bus writes starts with this; no client key may. */
export const RESERVED_PREFIX = '\u0000';
export const EVENT_PREFIX = '\u0000e/';
export const GROUP_PREFIX = '\u0000g/';

/** Group names: what a slot key can hold without ambiguity, and what a metric label can carry. */
const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Member ids (chosen by clients): printable ASCII without '/' or whitespace. */
const MEMBER_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export function isReserved(key: string): boolean {
  return key.startsWith(RESERVED_PREFIX);
}

export function checkGroupName(name: string): string | undefined {
  return GROUP_NAME.test(name)
    ? undefined
    : `group name ${JSON.stringify(name.slice(0, 80))} is not 1-64 of A-Z a-z 0-9 _ -`;
}

export function checkMemberId(id: string): string | undefined {
  return MEMBER_ID.test(id)
    ? undefined
    : `member id ${JSON.stringify(id.slice(0, 80))} is not 1-128 of A-Z a-z 0-9 _ . : -`;
}

const hex16 = (n: number): string => n.toString(16).padStart(16, '0');

export function eventKey(sequence: number): string {
  return EVENT_PREFIX + hex16(sequence);
}

/** The event sequence of an event key, undefined for any other key. */
export function eventSequence(key: string): number | undefined {
  if (!key.startsWith(EVENT_PREFIX) || key.length !== EVENT_PREFIX.length + 16) return undefined;
  const n = Number.parseInt(key.slice(EVENT_PREFIX.length), 16);
  return Number.isSafeInteger(n) ? n : undefined;
}

export interface EventMeta {
  readonly topic: string;
  /** publish time, ms since the epoch (the active's clock) */
  readonly time: number;
  readonly headers: Readonly<Record<string, string>>;
}

/** The properties of an event entry. Header names and values are CHP property text (no `=` in names, no newlines). */
export function eventProperties(meta: EventMeta): string {
  let out = `t=${meta.topic}\nts=${meta.time}\n`;
  for (const [name, value] of Object.entries(meta.headers)) out += `h.${name}=${value}\n`;
  return out;
}

export function parseEventProperties(properties: string): EventMeta {
  let topic = '';
  let time = 0;
  const headers: Record<string, string> = {};
  for (const line of properties.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const name = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (name === 't') topic = value;
    else if (name === 'ts') time = Number(value);
    else if (name.startsWith('h.')) headers[name.slice(2)] = value;
  }
  return { topic, time: Number.isFinite(time) ? time : 0, headers };
}

/** The topic of an event entry: `eventProperties` writes it first, so no parsing of the rest. */
export function eventTopic(properties: string): string {
  if (!properties.startsWith('t=')) return parseEventProperties(properties).topic;
  const end = properties.indexOf('\n');
  return properties.slice(2, end < 0 ? undefined : end);
}

/** The headers of an event entry's properties, as `name=value\n` lines (what TEVT carries). */
export function headerLines(properties: string): string {
  let out = '';
  for (const line of properties.split('\n')) if (line.startsWith('h.')) out += `${line.slice(2)}\n`;
  return out;
}

// ------------------------------------------------------------------------------------------------
// Group slots.

export type SlotKind = 'config' | 'member' | 'pending';

export interface Slot {
  readonly group: string;
  readonly kind: SlotKind;
  /** the member id (member slots) or the event sequence as 16 hex digits (pending slots) */
  readonly id: string;
}

export function configSlot(group: string): string {
  return GROUP_PREFIX + group;
}

export function memberSlot(group: string, member: string): string {
  return `${GROUP_PREFIX}${group}/m/${member}`;
}

export function pendingSlot(group: string, event: number): string {
  return `${GROUP_PREFIX}${group}/p/${hex16(event)}`;
}

/** Which slot a key names, undefined for a key outside the group namespace. */
export function parseSlot(key: string): Slot | undefined {
  if (!key.startsWith(GROUP_PREFIX)) return undefined;
  const rest = key.slice(GROUP_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return { group: rest, kind: 'config', id: '' };
  const group = rest.slice(0, slash);
  const kind = rest.slice(slash + 1, slash + 3);
  const id = rest.slice(slash + 3);
  if (kind === 'm/') return { group, kind: 'member', id };
  if (kind === 'p/') return { group, kind: 'pending', id };
  return undefined;
}

/**
 * What a slot write does beyond storing its value: a `GroupOp` for the group machine, or one of
 * the bus's own: `create` (a new group, from the config slot), `cursor` (the cursor moved by
 * deliveries, persisted), `delete` (an abandoned group goes), `forget` (a slot of it goes).
 */
export type SlotOp =
  | GroupOp
  | { readonly type: 'create' }
  | { readonly type: 'cursor' }
  | { readonly type: 'delete' }
  | { readonly type: 'forget' };

export function opProperties(op: SlotOp): string {
  return `op=${JSON.stringify(op)}\n`;
}

/** The op of a slot write; undefined when the properties carry none that parses. */
export function parseOp(properties: string): SlotOp | undefined {
  if (!properties.startsWith('op=')) return undefined;
  const end = properties.indexOf('\n');
  try {
    const op = JSON.parse(properties.slice(3, end < 0 ? undefined : end)) as SlotOp;
    return typeof op === 'object' && op !== null && typeof op.type === 'string' ? op : undefined;
  } catch {
    return undefined;
  }
}
