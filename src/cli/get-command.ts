/**
 * `twinstar get`, as etcdctl's: one key, or every key under a prefix (`--prefix`), each with its
 * revision (the sequence of its last change) and the TTL it has left, written out `-w simple`,
 * `table` or `json`; `--keys-only` leaves the values out. Without -w and --prefix the value of
 * KEY is written as it is (bytes), as before. The entries come from the client's replica, synced
 * from the active at connect: each carries its sequence and its deadline (`expiresAt`).
 */
import type { Entry } from '../kv/index.js';
import { parseProperties } from '../wire/index.js';
import { parseCommandLine, UsageError } from './args.js';
import { COMMON, CONNECTION_OPTIONS, EXIT, guarded, say, withClient } from './client-commands.js';
import { renderTable, writeOutOf, type WriteOut } from './table.js';

export const GET_HELP = `Usage: twinstar get KEY [--base64]
       twinstar get KEY|PREFIX [--prefix] [-w simple|table|json] [--keys-only] [--base64]

Without -w and --prefix: writes the value of KEY to stdout as it is (bytes; a newline is added
only on a terminal); exits 1 if there is none.
  --prefix           every key that starts with PREFIX (exit 0 even when there is none)
  -w, --write-out F  simple: each key, then its value, on a line each (etcdctl's);
                     table: KEY, VALUE, SEQ (the key's revision), TTL (seconds left), LEASE;
                     json: {"sequence", "count", "kvs": [{"key", "value", "seq",
                     "ttlRemainingMs", "lease"}]} (ttlRemainingMs and lease only when set)
  --keys-only        leave the values out
  --base64           values as base64 (binary-safe; otherwise UTF-8 text)
${COMMON}\n`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  base64: { type: 'boolean' },
  prefix: { type: 'boolean' },
  'keys-only': { type: 'boolean' },
  'write-out': { type: 'string', short: 'w', takes: 'simple, table or json' },
} as const;

/** One key as `get` shows it. */
export interface Row {
  key: string;
  value: Buffer;
  seq: number;
  /** milliseconds left before it expires; undefined: it does not expire */
  ttlRemainingMs?: number;
  lease?: string;
}

/**
 * What `get` shows of a replica entry at `now`: its deadline when the sync brought one
 * (`expiresAt`, on the server's clock), else the `ttl=` it was written with (an update applied
 * live since the sync carries no deadline: it was written just now). Pure.
 */
export function rowOf(entry: Entry, now: number): Row {
  let props = new Map<string, string>();
  try {
    props = parseProperties(entry.properties);
  } catch {
    // a malformed property line from a foreign client: shown without TTL or lease
  }
  const row: Row = { key: entry.key, value: entry.body, seq: entry.sequence };
  const ttl = Number(props.get('ttl'));
  if (entry.expiresAt > 0) row.ttlRemainingMs = Math.max(0, entry.expiresAt - now);
  else if (ttl > 0) row.ttlRemainingMs = ttl * 1000;
  const lease = props.get('lease');
  if (lease !== undefined) row.lease = lease;
  return row;
}

/** Seconds left, rounded up, as etcdctl shows a lease's TTL; '-' for none. */
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : String(Math.ceil(ms / 1000)));

export interface Shape {
  w: WriteOut;
  keysOnly: boolean;
  base64: boolean;
  /** the replica's sequence, for json's header */
  sequence: number;
}

/** The rows written out as `-w` says. Pure. */
export function renderRows(rows: readonly Row[], shape: Shape): string {
  const value = (v: Buffer) => (shape.base64 ? v.toString('base64') : v.toString());
  if (shape.w === 'json') {
    const kvs = rows.map((r) => ({
      key: r.key,
      ...(shape.keysOnly ? {} : { value: value(r.value) }),
      seq: r.seq,
      ...(r.ttlRemainingMs === undefined ? {} : { ttlRemainingMs: r.ttlRemainingMs }),
      ...(r.lease === undefined ? {} : { lease: r.lease }),
    }));
    return `${JSON.stringify({ sequence: shape.sequence, count: rows.length, kvs })}\n`;
  }
  if (shape.w === 'table') {
    const leases = rows.some((r) => r.lease !== undefined);
    const headers = ['KEY', ...(shape.keysOnly ? [] : ['VALUE']), 'SEQ', 'TTL', ...(leases ? ['LEASE'] : [])];
    const cells = rows.map((r) => [
      r.key,
      ...(shape.keysOnly ? [] : [value(r.value)]),
      String(r.seq),
      seconds(r.ttlRemainingMs),
      ...(leases ? [r.lease ?? '-'] : []),
    ]);
    return renderTable(headers, cells, ['SEQ', 'TTL']);
  }
  return rows.map((r) => (shape.keysOnly ? `${r.key}\n` : `${r.key}\n${value(r.value)}\n`)).join('');
}

const byKey = (a: Row, b: Row) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (values.help) {
    process.stdout.write(GET_HELP);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError(`get takes one ${values.prefix ? 'PREFIX' : 'KEY'}`);
  const key = positionals[0]!;
  const prefix = values.prefix === true;
  const keysOnly = values['keys-only'] === true;
  const base64 = values.base64 === true;
  const raw = values['write-out'] === undefined && !prefix && !keysOnly;
  const w = writeOutOf(values['write-out'], 'simple');
  if (key === '' && !prefix) throw new UsageError('get takes a KEY that is not empty (or --prefix)');
  return withClient(values, key, async ({ client }) => {
    const now = Date.now();
    const rows = client
      .view()
      .entries.filter((e) => (prefix ? e.key.startsWith(key) : e.key === key))
      .map((e) => rowOf(e, now))
      .sort(byKey);
    if (!prefix && rows.length === 0) {
      say('get', `key not found: ${key}`);
      return EXIT.FAILED;
    }
    if (raw) {
      const value = rows[0]!.value;
      // The bytes as they are (etcdctl prints values raw); a terminal gets a newline after them.
      if (base64) process.stdout.write(`${value.toString('base64')}\n`);
      else process.stdout.write(process.stdout.isTTY ? Buffer.concat([value, Buffer.from('\n')]) : value);
      return EXIT.OK;
    }
    process.stdout.write(renderRows(rows, { w, keysOnly, base64, sequence: client.sequence }));
    return EXIT.OK;
  });
}

export const getCommand = guarded('get', run);
