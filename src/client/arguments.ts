/**
 * The client's argument checks, as pure functions that throw typed errors. The client's
 * promise-returning methods turn what these throw into a rejection (`rejectWith`), so a caller
 * never gets a synchronous throw from a method that returns a promise (README "Errors").
 *
 * A client mirrors one subtree: a key outside it cannot be read or watched (the replica does not
 * hold it), so such a read is an InvalidArgumentError rather than a silent undefined. A write may
 * go anywhere (a producer often writes under a prefix it does not mirror); such a write resolves
 * on the server's acknowledgement, as the client's replica never sees it.
 */
import type { Limits } from '../wire/index.js';
import { InvalidArgumentError, TwinstarError, ValueFormatError } from '../errors.js';

/** A key to write: a non-empty string within the key size limit (any subtree). */
export function checkKey(key: unknown, limits: Limits): string {
  if (typeof key !== 'string' || key.length === 0)
    throw new InvalidArgumentError('key must be a non-empty string');
  const bytes = Buffer.byteLength(key);
  if (bytes > limits.maxKeyBytes)
    throw new InvalidArgumentError(`key is ${bytes} bytes; the limit is ${limits.maxKeyBytes}`);
  return key;
}

/** A key to read from the replica: a non-empty string within this client's subtree. */
export function checkReadKey(key: unknown, subtree: string): string {
  if (typeof key !== 'string' || key.length === 0)
    throw new InvalidArgumentError('key must be a non-empty string');
  if (!key.startsWith(subtree))
    throw new InvalidArgumentError(
      `key ${JSON.stringify(key)} is outside this client's subtree ${JSON.stringify(subtree)}`,
    );
  return key;
}

/** A prefix to read or watch: within the subtree (a wider one would silently miss keys). */
export function checkPrefix(prefix: unknown, subtree: string): string {
  if (typeof prefix !== 'string') throw new InvalidArgumentError('prefix must be a string');
  if (!prefix.startsWith(subtree))
    throw new InvalidArgumentError(
      `prefix ${JSON.stringify(prefix)} is outside this client's subtree ${JSON.stringify(subtree)}`,
    );
  return prefix;
}

/** A value to set: a non-empty Buffer or string within the value limit. */
export function checkValue(value: unknown, limits: Limits): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value) : value;
  if (!Buffer.isBuffer(body)) throw new InvalidArgumentError('value must be a Buffer or a string');
  if (body.length === 0)
    throw new InvalidArgumentError('value must not be empty (an empty body means delete: use delete())');
  if (body.length > limits.maxValueBytes)
    throw new InvalidArgumentError(`value is ${body.length} bytes; the limit is ${limits.maxValueBytes}`);
  return body;
}

/** The ttl option in seconds (0: none). */
export function checkTtl(options: unknown): number {
  if (options === undefined) return 0;
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError('options must be an object');
  const ttl = (options as { ttl?: unknown }).ttl ?? 0;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0)
    throw new InvalidArgumentError('ttl must be a number of seconds >= 0');
  return ttl;
}

/** JSON text for setJson: values JSON cannot represent (undefined, a function, a cycle, a BigInt) are refused. */
export function jsonText(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new InvalidArgumentError(`value cannot be written as JSON: ${(error as Error).message}`);
  }
  if (text === undefined) throw new InvalidArgumentError(`value cannot be written as JSON (${typeof value})`);
  return text;
}

/** getJson's parse: a value that is not JSON is a ValueFormatError naming the key. */
export function parseJson<T>(key: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new ValueFormatError(
      key,
      `value of ${JSON.stringify(key)} is not JSON: ${(error as Error).message}`,
    );
  }
}

/** A rejected promise carrying a typed error (an unexpected one becomes InvalidArgumentError). */
export function rejectWith<T>(error: unknown): Promise<T> {
  if (error instanceof TwinstarError) return Promise.reject(error);
  return Promise.reject(new InvalidArgumentError(error instanceof Error ? error.message : String(error)));
}
