/**
 * Topics and subscription patterns of the event bus (issue 16), pure: no I/O, no clock.
 *
 * A topic is a dotted list of tokens, as a NATS subject is: `orders.created.eu`. A publish topic
 * is all literal tokens. A subscribe pattern may use two wildcards, each as a whole token:
 * `*` stands for exactly one token anywhere, `>` (last token only) for one or more remaining
 * tokens. So `orders.>` matches `orders.a` and `orders.a.b` but not `orders` itself, and
 * `orders.*` matches `orders.a` but not `orders.a.b`.
 *
 * Validation returns a one-line reason (or undefined) instead of throwing, so the server can drop
 * and count malformed input, and the client can reject with its own typed error.
 */
import { InvalidArgumentError } from '../errors.js';

/** The longest topic or pattern accepted, in UTF-8 bytes: room for deep hierarchies, bounded. */
export const MAX_TOPIC_BYTES = 256;

export const SEPARATOR = '.';
/** Wildcard for exactly one token. */
export const ONE_TOKEN = '*';
/** Wildcard for one or more remaining tokens; only as the last token of a pattern. */
export const REST_TOKENS = '>';

// Whitespace of any script and control characters (C0, DEL, C1): they make topics ambiguous in
// logs and on the CLI, and NATS forbids them too.
const FORBIDDEN = /[\s\p{Cc}]/u;

function checkCommon(what: string, text: string): string | undefined {
  if (typeof text !== 'string') return `${what} is not a string`;
  if (text.length === 0) return `${what} is empty`;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_TOPIC_BYTES) return `${what} is ${bytes} bytes, over the ${MAX_TOPIC_BYTES}-byte limit`;
  if (FORBIDDEN.test(text)) return `${what} contains whitespace or a control character`;
  return undefined;
}

function emptyToken(what: string, tokens: readonly string[]): string | undefined {
  const at = tokens.indexOf('');
  if (at < 0) return undefined;
  const where =
    at === 0 ? 'a leading dot' : at === tokens.length - 1 ? 'a trailing dot' : 'two dots in a row';
  return `${what} has an empty token (${where})`;
}

/** Why `topic` cannot be published to, or undefined when it is a valid publish topic. */
export function checkTopic(topic: string): string | undefined {
  const common = checkCommon('topic', topic);
  if (common !== undefined) return common;
  const tokens = topic.split(SEPARATOR);
  const empty = emptyToken('topic', tokens);
  if (empty !== undefined) return empty;
  for (const wildcard of [ONE_TOKEN, REST_TOKENS])
    if (topic.includes(wildcard))
      return `topic contains the wildcard '${wildcard}' (wildcards are for subscribe patterns)`;
  return undefined;
}

/** Why `pattern` cannot be subscribed to, or undefined when it is a valid subscribe pattern. */
export function checkPattern(pattern: string): string | undefined {
  const common = checkCommon('pattern', pattern);
  if (common !== undefined) return common;
  const tokens = pattern.split(SEPARATOR);
  const empty = emptyToken('pattern', tokens);
  if (empty !== undefined) return empty;
  for (const [i, token] of tokens.entries()) {
    if (token === ONE_TOKEN) continue;
    if (token === REST_TOKENS) {
      if (i !== tokens.length - 1) return `pattern has '${REST_TOKENS}' before its last token`;
      continue;
    }
    if (token.includes(ONE_TOKEN) || token.includes(REST_TOKENS))
      return `pattern token '${token}' mixes a wildcard with other characters`;
  }
  return undefined;
}

/** Token-wise match of a split pattern against a split topic, both assumed valid. */
export function tokensMatch(pattern: readonly string[], topic: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const token = pattern[i];
    if (token === REST_TOKENS) return topic.length > i;
    if (i >= topic.length) return false;
    if (token !== ONE_TOKEN && token !== topic[i]) return false;
  }
  return pattern.length === topic.length;
}

/**
 * Whether `pattern` matches `topic`. False when either is invalid (an invalid pattern matches
 * nothing, an invalid topic is never published), so a caller cannot be fooled by malformed input.
 */
export function matches(pattern: string, topic: string): boolean {
  if (checkPattern(pattern) !== undefined || checkTopic(topic) !== undefined) return false;
  return tokensMatch(pattern.split(SEPARATOR), topic.split(SEPARATOR));
}

/**
 * Whether `topic` (or a pattern) lies under the dotted `prefix`, token-aligned: `orders` covers
 * `orders` and `orders.eu`, not `ordersx`. The empty prefix covers everything.
 */
export function underPrefix(prefix: string, topic: string): boolean {
  if (prefix === '') return true;
  return topic === prefix || (topic.startsWith(prefix) && topic[prefix.length] === SEPARATOR);
}

/**
 * The longest literal dotted prefix of a valid pattern: the tokens before its first wildcard
 * (`orders.*.eu` gives `orders`, `orders.eu` gives `orders.eu`, `>` gives ``). Every topic the
 * pattern matches lies under it, which is what an access check by prefix needs.
 * Throws InvalidArgumentError for an invalid pattern: a prefix of one would grant nothing sound.
 */
export function prefixOf(pattern: string): string {
  const problem = checkPattern(pattern);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  const tokens = pattern.split(SEPARATOR);
  const wild = tokens.findIndex((t) => t === ONE_TOKEN || t === REST_TOKENS);
  return (wild < 0 ? tokens : tokens.slice(0, wild)).join(SEPARATOR);
}

interface TrieNode<T> {
  /** Children by literal token; the key ONE_TOKEN holds the `*` child (no topic token is `*`). */
  readonly children: Map<string, TrieNode<T>>;
  /** Values of patterns ending exactly here. */
  readonly here: Set<T>;
  /** Values of patterns ending here with `>`: they match any topic with more tokens below. */
  readonly rest: Set<T>;
}

function newNode<T>(): TrieNode<T> {
  return { children: new Map(), here: new Set(), rest: new Set() };
}

/**
 * Subscriptions by pattern, for fan-out: which values (subscribers, groups) want a topic.
 *
 * A token trie: one level per pattern token, literal children by name, a `*` child, and a `>`
 * bucket at each node. `match` walks the topic's tokens, following at each level the literal child
 * and the `*` child of every node reached, so its cost depends on the topic's length and on the
 * wildcard branches present, never on how many subscriptions there are. A (pattern, value) pair is
 * held once: adding it again is a no-op.
 */
export class TopicIndex<T> {
  private readonly root = newNode<T>();
  private count = 0;

  /** How many (pattern, value) pairs are held. */
  get size(): number {
    return this.count;
  }

  /** Adds `value` under `pattern`; false when the pair was already there. Throws on an invalid pattern. */
  add(pattern: string, value: T): boolean {
    const problem = checkPattern(pattern);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
    let node = this.root;
    const tokens = pattern.split(SEPARATOR);
    const last = tokens[tokens.length - 1];
    const path = last === REST_TOKENS ? tokens.slice(0, -1) : tokens;
    for (const token of path) {
      let child = node.children.get(token);
      if (child === undefined) {
        child = newNode<T>();
        node.children.set(token, child);
      }
      node = child;
    }
    const bucket = last === REST_TOKENS ? node.rest : node.here;
    if (bucket.has(value)) return false;
    bucket.add(value);
    this.count++;
    return true;
  }

  /** Removes `value` from `pattern`, pruning emptied nodes; false when the pair was not there. */
  remove(pattern: string, value: T): boolean {
    if (checkPattern(pattern) !== undefined) return false;
    const tokens = pattern.split(SEPARATOR);
    const last = tokens[tokens.length - 1];
    const path = last === REST_TOKENS ? tokens.slice(0, -1) : tokens;
    const trail: TrieNode<T>[] = [this.root];
    for (const token of path) {
      const child = trail[trail.length - 1]!.children.get(token);
      if (child === undefined) return false;
      trail.push(child);
    }
    const end = trail[trail.length - 1]!;
    if (!(last === REST_TOKENS ? end.rest : end.here).delete(value)) return false;
    this.count--;
    // Prune from the leaf up, so a churn of short-lived subscriptions leaves no dead branches.
    for (let i = path.length; i > 0; i--) {
      const node = trail[i]!;
      if (node.here.size > 0 || node.rest.size > 0 || node.children.size > 0) break;
      trail[i - 1]!.children.delete(path[i - 1]!);
    }
    return true;
  }

  /** Every value whose pattern matches `topic`, each once; none for an invalid topic. */
  match(topic: string): T[] {
    if (checkTopic(topic) !== undefined) return [];
    const found = new Set<T>();
    let level: TrieNode<T>[] = [this.root];
    for (const token of topic.split(SEPARATOR)) {
      const next: TrieNode<T>[] = [];
      for (const node of level) {
        // At least this token remains, so a `>` ending here matches.
        for (const value of node.rest) found.add(value);
        const literal = node.children.get(token);
        if (literal !== undefined) next.push(literal);
        const one = node.children.get(ONE_TOKEN);
        if (one !== undefined) next.push(one);
      }
      level = next;
      if (level.length === 0) break;
    }
    for (const node of level) for (const value of node.here) found.add(value);
    return [...found];
  }
}
