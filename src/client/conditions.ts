/**
 * Conditional writes, leases on writes and deletes by prefix (issue 17), as pure functions: the
 * options of `set`, `create` and `delete` checked (InvalidArgumentError, thrown; the facade turns
 * it into a rejection) and turned into the properties of the TSET write
 * (docs/protocol.md, Conditional writes).
 */
import { formatProperties, parseProperties, WRITE_PROPERTY } from '../wire/index.js';
import { InvalidArgumentError } from '../errors.js';
import { checkTtl } from './arguments.js';

/** Something that names a lease: a Lease (lease.ts) or its id. */
export type LeaseRef = number | { readonly id: number };

export interface WriteConditions {
  /** seconds until the key expires (0 or absent: never) */
  ttl?: number;
  /** apply only if the key's current sequence is exactly this one (0: the key must not exist) */
  ifSequence?: number;
  /** attach the key to this lease: it is deleted when the lease expires or is revoked */
  lease?: LeaseRef;
}

/** What the write machinery needs: the properties, and whether a plain CHP server could honour them. */
export interface WriteSpec {
  readonly properties: string;
  /** carries a condition or a lease, which a plain CHP server would ignore */
  readonly nativeOnly: boolean;
}

function isSequence(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** A lease id from a Lease or a number: a whole number >= 1. */
export function leaseId(lease: unknown): number {
  const id = typeof lease === 'object' && lease !== null ? (lease as { id?: unknown }).id : lease;
  if (!Number.isSafeInteger(id) || (id as number) < 1)
    throw new InvalidArgumentError('lease must be a Lease or a lease id (a whole number >= 1)');
  return id as number;
}

/** The properties of a write (set, create) from its options; `ifSequence` may be forced (create). */
export function writeSpec(options: unknown, forceIfSequence?: number): WriteSpec {
  const ttl = checkTtl(options);
  const given = (options ?? {}) as WriteConditions;
  const ifSequence = forceIfSequence ?? given.ifSequence;
  if (ifSequence !== undefined && !isSequence(ifSequence))
    throw new InvalidArgumentError('ifSequence must be a whole number >= 0 (0: the key must not exist)');
  const props: Record<string, string> = {};
  if (ttl > 0) props.ttl = String(ttl);
  if (ifSequence !== undefined) props[WRITE_PROPERTY.IF_SEQUENCE] = String(ifSequence);
  if (given.lease !== undefined) props[WRITE_PROPERTY.LEASE] = String(leaseId(given.lease));
  return {
    properties: formatProperties(props),
    nativeOnly: ifSequence !== undefined || given.lease !== undefined,
  };
}

/** The properties of a delete: only `ifSequence` applies. */
export function deleteSpec(options: unknown): WriteSpec {
  if (options === undefined) return { properties: '', nativeOnly: false };
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError('options must be an object');
  const { ifSequence } = options as { ifSequence?: unknown };
  if (ifSequence === undefined) return { properties: '', nativeOnly: false };
  if (!isSequence(ifSequence) || ifSequence === 0)
    throw new InvalidArgumentError('ifSequence of a delete must be a whole number >= 1');
  return {
    properties: formatProperties({ [WRITE_PROPERTY.IF_SEQUENCE]: String(ifSequence) }),
    nativeOnly: true,
  };
}

/** A delete by prefix: one write, key = the prefix, empty body. */
export const DELETE_PREFIX_SPEC: WriteSpec = {
  properties: formatProperties({ [WRITE_PROPERTY.DELETE_PREFIX]: '1' }),
  nativeOnly: true,
};

/** The lease a stored entry is attached to (`lease=` property), if any. */
export function entryLease(properties: string): number | undefined {
  if (!properties.includes(`${WRITE_PROPERTY.LEASE}=`)) return undefined;
  try {
    const raw = parseProperties(properties).get(WRITE_PROPERTY.LEASE);
    const id = Number(raw);
    return raw !== undefined && Number.isSafeInteger(id) && id > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}
