/**
 * Output shapes shared by the etcdctl-like commands (`get -w`, `endpoint -w`): the bordered table
 * etcdctl prints with `-w table`, and the check of a `-w` value. Pure: strings in, string out.
 */
import { UsageError } from './args.js';

export type WriteOut = 'simple' | 'table' | 'json';

/** `-w VALUE`, checked: one of simple, table, json (`fallback` when absent). */
export function writeOutOf(value: string | boolean | undefined, fallback: WriteOut): WriteOut {
  if (value === undefined) return fallback;
  if (value === 'simple' || value === 'table' || value === 'json') return value;
  throw new UsageError(`-w takes simple, table or json, not ${JSON.stringify(value)}`);
}

/**
 * A table with borders, as etcdctl's `-w table`:
 *
 *     +------+-----+
 *     | KEY  | SEQ |
 *     +------+-----+
 *     | /a/b |   7 |
 *     +------+-----+
 *
 * Columns named in `right` are right-aligned (numbers). A cell's newlines and tabs are shown as
 * \n and \t so that a row stays one line.
 */
export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly string[] = [],
): string {
  const clean = rows.map((row) => headers.map((_, i) => oneLine(row[i] ?? '')));
  const widths = headers.map((h, i) => clean.reduce((w, row) => Math.max(w, row[i]!.length), h.length));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: readonly string[], align: boolean) =>
    `|${cells
      .map((cell, i) => {
        const pad =
          align && right.includes(headers[i]!) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
        return ` ${pad} `;
      })
      .join('|')}|`;
  return [rule, line(headers, false), rule, ...clean.map((row) => line(row, true)), rule].join('\n') + '\n';
}

function oneLine(text: string): string {
  return text.replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}
