/**
 * The properties frame of a CHP kvmsg (RFC 12): `name=value` lines, each ending in a newline, and
 * the `ttl` property a KVSET may carry. Part of the CHP codec (chp.ts), kept apart for size.
 */
import { KvMsgError, type Limits } from './chp.js';

/** Parses `name=value\n` entries. Every entry must end with a newline and contain `=`. */
export function parseProperties(text: string): Map<string, string> {
  const props = new Map<string, string>();
  if (text === '' || text === '\n') return props;
  if (!text.endsWith('\n'))
    throw new KvMsgError('properties-syntax', 'last property does not end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0)
      throw new KvMsgError('properties-syntax', `property ${JSON.stringify(line)} has no name=value`);
    props.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return props;
}

export function formatProperties(props: ReadonlyMap<string, string> | Record<string, string>): string {
  const pairs = props instanceof Map ? [...props] : Object.entries(props);
  return pairs.map(([name, value]) => `${name}=${value}\n`).join('');
}

/** The relative TTL in seconds a KVSET asks for; 0 means no expiry. */
export function ttlSeconds(properties: string): number {
  if (!properties.includes('ttl=')) return 0;
  const raw = parseProperties(properties).get('ttl');
  if (raw === undefined) return 0;
  if (!/^\d+(\.\d+)?$/.test(raw))
    throw new KvMsgError('ttl-invalid', `ttl=${raw} is not a number of seconds`);
  return Number(raw);
}

/** A write's TTL in seconds (0: none), refused when outside the limits' range. */
export function checkedTtlSeconds(properties: string, limits: Limits): number {
  const ttl = ttlSeconds(properties);
  if (ttl !== 0 && (ttl < limits.minTtlSeconds || ttl > limits.maxTtlSeconds)) {
    throw new KvMsgError(
      'ttl-out-of-range',
      `ttl=${ttl} is outside ${limits.minTtlSeconds}..${limits.maxTtlSeconds} seconds`,
    );
  }
  return ttl;
}
