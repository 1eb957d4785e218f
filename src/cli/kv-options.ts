/**
 * The options of issue 17's conditional commands, checked, and the one line a conflict prints:
 * `set --create`, `set|del --if-seq N`, `set --lease ID`, `watch --rev SEQ`. Pure: no I/O.
 */
import { UsageError } from './args.js';

type Values = Record<string, string | boolean | undefined>;

/** A whole number >= `min` (sequences and lease ids are below 2^53). */
export function parseWhole(flag: string, text: string, min: number, what: string): number {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`${flag} takes ${what} (a whole number >= ${min}), not ${JSON.stringify(text)}`);
  return n;
}

export interface Conditions {
  /** 0: the key must not exist (--create) */
  ifSequence?: number;
  lease?: number;
}

/** `--create`, `--if-seq N` and `--lease ID` of set (del takes --if-seq only). */
export function conditionsOf(values: Values): Conditions {
  const conditions: Conditions = {};
  if (values.create === true && values['if-seq'] !== undefined)
    throw new UsageError('--create and --if-seq do not go together (--create is --if-seq 0)');
  if (values.create === true) conditions.ifSequence = 0;
  if (values['if-seq'] !== undefined)
    conditions.ifSequence = parseWhole('--if-seq', String(values['if-seq']), 1, "the key's current sequence");
  if (values.lease !== undefined)
    conditions.lease = parseWhole('--lease', String(values.lease), 1, 'a lease id');
  return conditions;
}

/** `watch --rev SEQ` (etcdctl's: changes from SEQ on, SEQ included) as the client's fromSequence. */
export function fromSequenceOf(values: Values): number | undefined {
  if (values.rev === undefined) return undefined;
  return parseWhole('--rev', String(values.rev), 1, 'a sequence') - 1;
}

/** The line a refused conditional write prints: what the key is at, against what was asked. */
export function conflictLine(key: string, asked: number | undefined, current: number): string {
  const now = current === 0 ? `${key} does not exist` : `${key} is at sequence ${current}`;
  if (asked === 0) return `conflict: ${key} already exists, at sequence ${current}`;
  return `conflict: ${now}, not ${asked ?? '?'}`;
}
