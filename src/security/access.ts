/**
 * The allow-list: which client keys get in, and what each may read and write. Pure: it parses
 * the text of the list and answers questions; loading and reloading the file is access-file.ts.
 *
 * The file is JSON:
 *
 *   { "clients": [
 *       { "name": "billing", "publicKey": "<40 characters of Z85>",
 *         "read": ["/billing/", "/shared/"], "write": ["/billing/"] },
 *       { "name": "ops", "publicKey": "...", "read": ["*"], "write": ["*"] } ] }
 *
 * Rules are key prefixes, as CHP subtrees are: "/billing/" covers every key that starts with it.
 * "*" covers every key. An empty list grants nothing.
 *
 * The event bus (docs/events.md) has its own optional lists, of topic prefixes, token-aligned:
 * "publish": ["orders"] lets the client publish on `orders` and `orders.created`, not `ordersx`;
 * "subscribe": ["orders"] lets it subscribe to patterns whose literal prefix lies under `orders`
 * (`orders.*`, `orders.created`), not `>`. "*" covers every topic; a missing list grants nothing.
 */
import { underPrefix } from '../events/index.js';
import { isKey } from './keys.js';

export const EVERYTHING = '*';

export class Principal {
  readonly readsEverything: boolean;
  readonly writesEverything: boolean;

  constructor(
    readonly name: string,
    readonly publicKey: string,
    readonly read: readonly string[],
    readonly write: readonly string[],
    readonly publish: readonly string[] = [],
    readonly subscribe: readonly string[] = [],
  ) {
    this.readsEverything = read.includes(EVERYTHING);
    this.writesEverything = write.includes(EVERYTHING);
  }

  /** Whether the client may publish an event on `topic`. */
  canPublish(topic: string): boolean {
    return this.publish.some((prefix) => prefix === EVERYTHING || underPrefix(prefix, topic));
  }

  /** Whether the client may subscribe to a pattern whose literal prefix (`prefixOf`) is `prefix`. */
  canSubscribe(prefix: string): boolean {
    return this.subscribe.some((granted) => granted === EVERYTHING || underPrefix(granted, prefix));
  }

  canRead(key: string): boolean {
    return this.readsEverything || this.read.some((prefix) => key.startsWith(prefix));
  }

  /** Whether every key under `subtree` is readable (a snapshot of it loses nothing to filtering). */
  canReadAll(subtree: string): boolean {
    return this.readsEverything || this.read.some((prefix) => subtree.startsWith(prefix));
  }

  canWrite(key: string): boolean {
    return this.writesEverything || this.write.some((prefix) => key.startsWith(prefix));
  }

  /** Same keys and same rights: a reload that leaves a principal equal needs no reconnects. */
  sameAs(other: Principal | undefined): boolean {
    return (
      other !== undefined &&
      other.name === this.name &&
      other.read.join('\0') === this.read.join('\0') &&
      other.write.join('\0') === this.write.join('\0') &&
      other.publish.join('\0') === this.publish.join('\0') &&
      other.subscribe.join('\0') === this.subscribe.join('\0')
    );
  }
}

/** The allow-list file is malformed; the message names the file and the entry. */
export class AccessListError extends Error {
  override name = 'AccessListError';
}

export class AccessList {
  private constructor(private readonly byKey: ReadonlyMap<string, Principal>) {}

  static readonly empty = new AccessList(new Map());

  static parse(text: string, source = 'allow-list'): AccessList {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (error) {
      throw new AccessListError(`${source} is not JSON: ${(error as Error).message}`);
    }
    const clients = (doc as { clients?: unknown } | null)?.clients;
    if (!Array.isArray(clients)) throw new AccessListError(`${source} has no "clients" array`);
    const byKey = new Map<string, Principal>();
    clients.forEach((entry: unknown, i) => {
      const at = `${source}: clients[${i}]`;
      const { name, publicKey, read, write, publish, subscribe } = (entry ?? {}) as Record<string, unknown>;
      if (typeof name !== 'string' || name === '') throw new AccessListError(`${at} needs a "name"`);
      if (!isKey(publicKey))
        throw new AccessListError(`${at} (${name}): "publicKey" is not a CURVE key (40 characters of Z85)`);
      if (byKey.has(publicKey)) throw new AccessListError(`${at} (${name}): publicKey is listed twice`);
      byKey.set(
        publicKey,
        new Principal(
          name,
          publicKey,
          rules(read, `${at} (${name}).read`),
          rules(write, `${at} (${name}).write`),
          publish === undefined ? [] : rules(publish, `${at} (${name}).publish`, 'topic'),
          subscribe === undefined ? [] : rules(subscribe, `${at} (${name}).subscribe`, 'topic'),
        ),
      );
    });
    return new AccessList(byKey);
  }

  get size(): number {
    return this.byKey.size;
  }

  get(publicKey: string): Principal | undefined {
    return this.byKey.get(publicKey);
  }

  /** Keys whose rights shrank or vanished from `this` to `next`: their connections must go. */
  revokedIn(next: AccessList): string[] {
    return [...this.byKey.keys()].filter((key) => !next.get(key)?.sameAs(this.byKey.get(key)));
  }
}

function rules(value: unknown, at: string, of = 'key'): string[] {
  if (!Array.isArray(value) || !value.every((p) => typeof p === 'string')) {
    throw new AccessListError(`${at} must be a list of ${of} prefixes (use [] for none, ["*"] for all)`);
  }
  return value as string[];
}
