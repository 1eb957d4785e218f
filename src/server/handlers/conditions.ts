/**
 * Conditional writes, leases and deletes by prefix on TSET (issue 17, docs/protocol.md): each
 * write may carry `if-seq=<n>` (apply only if the key is at sequence n; 0: only if it does not
 * exist), `lease=<id>` (the key goes with the lease) or `delete-prefix=1` (with an empty body:
 * every key under the write's key goes, as one change). A batch is all or nothing: when a
 * condition fails, nothing of it is applied and the client learns which writes failed and where
 * their keys are now (TERROR 'conflict'), as an etcd transaction's compare would tell it.
 *
 * A write whose uuid was already applied is a retry (a timeout, a failover): it is not checked
 * again, so the retry gets its first acknowledgement and a compare-and-set never applies twice.
 */
import type { Change } from '../../core/index.js';
import { DELETE_PREFIX_PROPERTY } from '../../kv/index.js';
import type { ServerContext } from '../context.js';

const IF_SEQ = 'if-seq';
const LEASE = 'lease';
const DELETE_PREFIX = 'delete-prefix';

interface Parsed {
  readonly properties: string;
  readonly ifSeq: number | undefined;
  readonly lease: number | undefined;
  readonly deletePrefix: boolean;
}

/** The control lines of a write's properties, and the properties as stored (without `if-seq`). */
function parse(properties: string): Parsed | string {
  if (
    !properties.includes(`${IF_SEQ}=`) &&
    !properties.includes(`${LEASE}=`) &&
    !properties.includes(DELETE_PREFIX)
  )
    return { properties, ifSeq: undefined, lease: undefined, deletePrefix: false };
  let kept = '';
  let ifSeq: number | undefined;
  let lease: number | undefined;
  let deletePrefix = false;
  for (const line of properties.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    const name = line.slice(0, eq);
    const value = line.slice(eq + 1);
    const whole = /^\d{1,15}$/.test(value) ? Number(value) : undefined;
    if (name === IF_SEQ) {
      if (whole === undefined) return `if-seq=${value} is not a sequence`;
      ifSeq = whole;
      continue;
    }
    if (name === LEASE) {
      if (whole === undefined || whole === 0) return `lease=${value} is not a lease id`;
      lease = whole;
    }
    if (name === DELETE_PREFIX) {
      if (value !== '1') return `delete-prefix=${value} is not 1`;
      deletePrefix = true;
      continue;
    }
    kept += `${line}\n`;
  }
  return { properties: kept, ifSeq, lease, deletePrefix };
}

/**
 * The changes as they are sequenced (conditions checked, control lines taken out), or undefined
 * when the batch was refused (the reply is sent).
 */
export function checkConditions(
  ctx: ServerContext,
  identity: Buffer,
  reqId: number,
  changes: readonly Change[],
): Change[] | undefined {
  const refuse = (reason: string, message: string, refused: number[], current?: number[]) => {
    ctx.events.emit('dropped', 'snapshot', reason === 'conflict' ? 'conflict' : 'bad-request');
    ctx.reply(identity, {
      command: 'TERROR',
      reqId,
      reason,
      message,
      refused,
      ...(current ? { current } : {}),
    });
    return undefined;
  };
  const out: Change[] = [];
  const conflicts: number[] = [];
  const current: number[] = [];
  const expected: number[] = [];
  const missingLeases: number[] = [];
  const missing: number[] = [];
  for (let i = 0; i < changes.length; i++) {
    const change = changes[i]!;
    const parsed = parse(change.properties);
    if (typeof parsed === 'string') return refuse('invalid-write', parsed, [i]);
    const { ifSeq, lease, deletePrefix } = parsed;
    if (deletePrefix) {
      if (change.body.length > 0 || ifSeq !== undefined || lease !== undefined || change.expiresAt > 0)
        return refuse('invalid-write', 'delete-prefix takes an empty body and no if-seq, lease or ttl', [i]);
      out.push({ ...change, properties: `${DELETE_PREFIX_PROPERTY}=1\n` });
      continue;
    }
    out.push(parsed.properties === change.properties ? change : { ...change, properties: parsed.properties });
    // Only a write with a condition is looked up here: a retry's first answer stands, unchecked.
    // A plain write is de-duplicated by commit; looking it up here too cost every write a lookup.
    const conditional = ifSeq !== undefined || (lease !== undefined && change.body.length > 0);
    if (!conditional || ctx.store.appliedSequence(change.uuid, change.key) !== undefined) continue;
    if (ifSeq !== undefined) {
      const at = ctx.store.map.get(change.key)?.sequence ?? 0;
      if (at !== ifSeq) {
        conflicts.push(i);
        current.push(at);
        expected.push(ifSeq);
      }
    }
    if (lease !== undefined && change.body.length > 0 && !ctx.store.leases.has(lease)) {
      missingLeases.push(i);
      missing.push(lease);
    }
  }
  if (conflicts.length > 0) {
    const key = JSON.stringify(changes[conflicts[0]!]!.key.slice(0, 200));
    const at = current[0] === 0 ? 'does not exist' : `is at sequence ${current[0]}`;
    const wanted = expected[0] === 0 ? 'to be absent' : `at sequence ${expected[0]}`;
    return refuse('conflict', `${key} ${at}; the write wanted it ${wanted}`, conflicts, current);
  }
  if (missingLeases.length > 0)
    return refuse('lease-not-found', `no lease ${missing[0]} (expired or revoked)`, missingLeases);
  return out;
}
