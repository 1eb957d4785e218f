/**
 * Fields of the KV-parity commands (issue 17; docs/protocol.md, Leases and Watch from a
 * sequence): 4-byte milliseconds, the lease op, the TLEASEOK list's JSON and a conflict's current
 * sequences. Pure helpers of native-requests.ts and native-replies.ts; each throws KvMsgError
 * with a reason the caller rethrows as NativeMsgError.
 */
import { isCounter, KvMsgError, writeSequence } from './chp.js';
import { LEASE_OPS, type LeaseInfo, type LeaseOp } from './native-types.js';

/** A 4-byte big-endian unsigned count of milliseconds. */
export function encodeMs(ms: number): Buffer {
  const frame = Buffer.allocUnsafe(4);
  frame.writeUInt32BE(ms >>> 0);
  return frame;
}

export function decodeMs(frame: Buffer, field: string): number {
  if (frame.length !== 4) throw new KvMsgError('field-invalid', `${field} is ${frame.length} bytes, not 4`);
  return frame.readUInt32BE();
}

export function decodeLeaseOp(frame: Buffer): LeaseOp {
  const op = frame.toString('latin1');
  if (!LEASE_OPS.has(op))
    throw new KvMsgError('field-invalid', `TLEASE op ${JSON.stringify(op.slice(0, 32))}`);
  return op as LeaseOp;
}

/** TLEASEOK's last frame: '' or, for op 'list', a JSON array of leases. */
export function encodeLeaseList(leases: readonly LeaseInfo[] | undefined): Buffer {
  if (leases === undefined) return Buffer.alloc(0);
  return Buffer.from(
    JSON.stringify(leases.map(({ id, ttlMs, remainingMs, keys }) => ({ id, ttlMs, remainingMs, keys }))),
  );
}

export function decodeLeaseList(frame: Buffer): LeaseInfo[] | undefined {
  if (frame.length === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame.toString());
  } catch {
    throw new KvMsgError('field-invalid', 'TLEASEOK list is not JSON');
  }
  if (!Array.isArray(parsed)) throw new KvMsgError('field-invalid', 'TLEASEOK list is not an array');
  return parsed.map((item: unknown, i) => {
    const lease = item as Record<string, unknown> | null;
    const fields = ['id', 'ttlMs', 'remainingMs', 'keys'] as const;
    if (typeof lease !== 'object' || lease === null || !fields.every((f) => isCounter(lease[f])))
      throw new KvMsgError('field-invalid', `TLEASEOK list item ${i} is not {id, ttlMs, remainingMs, keys}`);
    return {
      id: lease.id as number,
      ttlMs: lease.ttlMs as number,
      remainingMs: lease.remainingMs as number,
      keys: lease.keys as number,
    };
  });
}

/** A conflict's current sequences: 8 bytes each, one per refused write. */
export function encodeSequences(sequences: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(8 * sequences.length);
  sequences.forEach((s, i) => writeSequence(out, s, 8 * i));
  return out;
}

export function decodeSequences(frame: Buffer, expected: number, field: string): number[] {
  if (frame.length !== 8 * expected)
    throw new KvMsgError('field-invalid', `${field} is ${frame.length} bytes, not 8 for each of ${expected}`);
  const out = new Array<number>(expected);
  for (let i = 0; i < expected; i++) {
    const value = frame.readUInt32BE(8 * i) * 0x1_0000_0000 + frame.readUInt32BE(8 * i + 4);
    if (!isCounter(value)) throw new KvMsgError('sequence-range', `${field} ${i} is ${value}, out of range`);
    out[i] = value;
  }
  return out;
}
