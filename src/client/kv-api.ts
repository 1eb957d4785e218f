/**
 * The bodies of the facade's KV-parity methods (issue 17), so that client.ts stays the thin
 * public face: each checks its arguments and never throws, rejecting with a typed error instead.
 */
import type { EventEmitter } from 'node:events';
import type { LeaseInfo, LeaseOp } from '../wire/index.js';
import type { Entry } from '../kv/index.js';
import type { Agent } from './agent.js';
import { checkValue, rejectWith } from './arguments.js';
import { deleteSpec, DELETE_PREFIX_SPEC, writeSpec } from './conditions.js';
import type { ClientEvents, Update } from './events.js';
import { HistoryWatch } from './history.js';
import { checkLeaseTtl, checkSequence } from './kv-arguments.js';
import type { Lease, LeaseOk } from './leases.js';
import { WatchStream } from './watch.js';

/** set (ifSequence undefined unless given) and create (ifSequence 0). */
export function write(
  agent: Agent,
  key: string,
  value: Buffer | string,
  options: unknown,
  ifSequence: number | undefined,
): Promise<number> {
  try {
    const body = checkValue(value, agent.limits);
    const spec = writeSpec(options, ifSequence);
    return agent.writes.write(key, body, spec.properties, spec.nativeOnly);
  } catch (error) {
    return rejectWith(error);
  }
}

export function remove(agent: Agent, key: string, options: unknown): Promise<number> {
  try {
    const { properties, nativeOnly } = deleteSpec(options);
    return agent.writes.write(key, Buffer.alloc(0), properties, nativeOnly);
  } catch (error) {
    return rejectWith(error);
  }
}

export function deletePrefix(agent: Agent, prefix: string): Promise<number> {
  const { properties, nativeOnly } = DELETE_PREFIX_SPEC;
  return agent.writes.write(prefix, Buffer.alloc(0), properties, nativeOnly);
}

export function grant(agent: Agent, options: unknown): Promise<Lease> {
  try {
    return agent.kv.leases.grant(checkLeaseTtl(options));
  } catch (error) {
    return rejectWith(error);
  }
}

/** revoke, keepalive (once) or list, by lease id. */
export function leaseOp(agent: Agent, op: LeaseOp, id: number): Promise<LeaseOk> {
  try {
    return agent.kv.leases.request(op, checkSequence(id, 'lease id'), 0);
  } catch (error) {
    return rejectWith(error);
  }
}

/** Leases by id, for a client that did not grant them (the CLI). */
export interface LeaseAdmin {
  /** deletes the lease and its keys; a lease the server lacks rejects with LeaseNotFoundError */
  revoke(id: number): Promise<void>;
  /** one keep-alive: the lease's TTL and the time left (LeaseNotFoundError if gone) */
  keepAliveOnce(id: number): Promise<{ id: number; ttlMs: number; remainingMs: number }>;
  /** every lease the active holds */
  list(): Promise<LeaseInfo[]>;
}

export function leaseAdmin(agent: Agent): LeaseAdmin {
  return {
    revoke: (id) => leaseOp(agent, 'revoke', id).then(() => undefined),
    keepAliveOnce: (id) =>
      leaseOp(agent, 'keepalive', id).then(({ ttlMs, remainingMs }) => ({ id, ttlMs, remainingMs })),
    list: () => leaseOp(agent, 'list', 0).then((reply) => [...(reply.leases ?? [])]),
  };
}

export function count(entries: Iterable<Entry>): number {
  let n = 0;
  for (const _ of entries) n++;
  return n;
}

/** A watch from a sequence on `client`'s updates (history.ts); ends with the client. */
export function watchFrom(
  client: EventEmitter<ClientEvents>,
  agent: Agent,
  prefix: string,
  from: number,
): AsyncIterableIterator<Update> {
  const { histories } = agent.kv;
  const stream = new WatchStream<Update>(() => {
    client.off('update', listener);
    client.off('close', end);
    histories.close(watch);
  });
  const watch = new HistoryWatch(prefix, from, stream);
  const listener = (update: Update) => watch.live(update);
  const end = () => stream.end();
  client.on('update', listener);
  client.on('close', end);
  if (agent.phase === 'closed') stream.end();
  else histories.open(watch);
  return stream;
}
