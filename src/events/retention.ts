/**
 * What a stream keeps (issue 16), pure: no I/O, and no clock read (time is passed in).
 *
 * Events are not keys: they live in a stream of the log, never in the key-value map. Retention is
 * configured per topic prefix. Each rule owns a bucket: a topic belongs to the rule with the
 * longest prefix it lies under, token-aligned (`orders` holds `orders` and `orders.eu`, not
 * `ordersx`). Limits apply to a bucket alone, not nested: with rules for `` and `metrics`, the
 * events of `metrics.cpu` count against the `metrics` limits only, and the `` limits bound every
 * other topic. So a noisy prefix never evicts another prefix's events. Without a `` rule, topics
 * under no rule share an implicit bucket with no limits.
 *
 * Within a bucket the oldest events (by sequence) go first, so a bucket always holds a contiguous
 * run of its own events:
 *  - maxEvents and maxBytes are enforced at each append, but never drop the event just appended
 *    (a bucket keeps its newest event even when that alone exceeds maxBytes);
 *  - maxAgeMs is enforced by expire(now): an event goes once `now - time > maxAgeMs`. Age is read
 *    at the head of the bucket, so an event published with an earlier time than the one before it
 *    (a clock stepped back) waits for its elders rather than leaving a hole.
 *
 * Cost, for B rules, n events held, t tokens in a topic: append O(t) plus amortised O(1) per
 * event dropped (queues with a moving head, compacted when half empty); expire O(B + d log d) for
 * d dropped; first/last without a pattern O(B); after O(B log n) to find where to start, then
 * O(B) per event scanned in the buckets a pattern can reach; last with a pattern scans back from
 * the newest; covers O(1), O(B) with a pattern.
 */
import { InvalidArgumentError } from '../errors.js';
import {
  ONE_TOKEN,
  REST_TOKENS,
  SEPARATOR,
  checkPattern,
  checkTopic,
  tokensMatch,
  underPrefix,
} from './topics.js';

export interface RetentionRule {
  /** Dotted topic prefix, '' for every topic. */
  readonly prefix: string;
  /** At most this many events in the bucket (a positive integer). */
  readonly maxEvents?: number;
  /** Events older than this, by their publish time, are dropped at expire(now). */
  readonly maxAgeMs?: number;
  /** At most this many bytes of event payload in the bucket (a positive integer). */
  readonly maxBytes?: number;
}

export interface StreamEvent {
  /** The log's sequence: strictly increasing from one append to the next. */
  readonly sequence: number;
  readonly topic: string;
  /** Size counted against maxBytes. */
  readonly bytes: number;
  /** When it was published, in ms, as the caller's clock says. */
  readonly time: number;
}

export interface StreamStats {
  readonly events: number;
  readonly bytes: number;
  /** Sequences of the oldest and newest events held; undefined when none are. */
  readonly firstSequence: number | undefined;
  readonly lastSequence: number | undefined;
  /** Events dropped by retention since this index was created. */
  readonly dropped: number;
}

const positiveInteger = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n > 0;

/** Why a set of rules cannot be used, or undefined when it can. */
export function checkRules(rules: readonly RetentionRule[]): string | undefined {
  const seen = new Set<string>();
  for (const rule of rules) {
    const { prefix } = rule;
    if (prefix !== '') {
      const problem = checkTopic(prefix);
      if (problem !== undefined) return `retention prefix '${prefix}': ${problem.replace(/^topic /, '')}`;
    }
    if (seen.has(prefix)) return `retention prefix '${prefix}' has two rules`;
    seen.add(prefix);
    if (rule.maxEvents !== undefined && !positiveInteger(rule.maxEvents))
      return `retention prefix '${prefix}': maxEvents must be a positive integer`;
    if (rule.maxBytes !== undefined && !positiveInteger(rule.maxBytes))
      return `retention prefix '${prefix}': maxBytes must be a positive integer`;
    const age = rule.maxAgeMs;
    if (age !== undefined && !(typeof age === 'number' && Number.isFinite(age) && age > 0))
      return `retention prefix '${prefix}': maxAgeMs must be a positive number`;
  }
  return undefined;
}

/** The rule that applies to `topic`: the one with the longest prefix it lies under (the first, on a tie). */
export function ruleFor(rules: readonly RetentionRule[], topic: string): RetentionRule | undefined {
  let best: RetentionRule | undefined;
  for (const rule of rules)
    if (underPrefix(rule.prefix, topic) && (best === undefined || rule.prefix.length > best.prefix.length))
      best = rule;
  return best;
}

/** Whether a topic under `prefix` could match the split pattern (conservative: may say yes wrongly, never no). */
function mayHold(prefix: string, pattern: readonly string[]): boolean {
  if (prefix === '') return true;
  const tokens = prefix.split(SEPARATOR);
  for (const [i, token] of tokens.entries()) {
    const p = pattern[i];
    if (p === REST_TOKENS) return true;
    if (p === undefined || (p !== ONE_TOKEN && p !== token)) return false;
  }
  return true;
}

const COMPACT_AT = 1024;

/** One rule's events, oldest first, in a queue whose head moves on as events are dropped. */
class Bucket {
  private events: StreamEvent[] = [];
  private head = 0;
  bytes = 0;
  dropped = 0;
  /** Sequence of the newest event dropped from this bucket. */
  droppedThrough = Number.NEGATIVE_INFINITY;

  constructor(readonly rule: RetentionRule) {}

  get count(): number {
    return this.events.length - this.head;
  }
  get oldest(): StreamEvent | undefined {
    return this.events[this.head];
  }
  get newest(): StreamEvent | undefined {
    return this.count > 0 ? this.events[this.events.length - 1] : undefined;
  }
  at(i: number): StreamEvent | undefined {
    return i >= this.head ? this.events[i] : undefined;
  }
  get end(): number {
    return this.events.length;
  }

  push(event: StreamEvent): void {
    this.events.push(event);
    this.bytes += event.bytes;
  }

  /** Over maxEvents or maxBytes, with more than the newest event left to drop. */
  overLimit(): boolean {
    const { maxEvents, maxBytes } = this.rule;
    if (this.count <= 1) return false;
    return (
      (maxEvents !== undefined && this.count > maxEvents) || (maxBytes !== undefined && this.bytes > maxBytes)
    );
  }

  expired(now: number): boolean {
    const { maxAgeMs } = this.rule;
    const oldest = this.oldest;
    return maxAgeMs !== undefined && oldest !== undefined && now - oldest.time > maxAgeMs;
  }

  dropOldest(): number {
    const event = this.events[this.head]!;
    this.head++;
    this.bytes -= event.bytes;
    this.dropped++;
    this.droppedThrough = event.sequence;
    if (this.head >= COMPACT_AT && this.head * 2 >= this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
    return event.sequence;
  }

  /** Index of the first event held with a sequence above `sequence` (end when none). */
  indexAfter(sequence: number): number {
    let lo = this.head;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid]!.sequence > sequence) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Newest event held matching the split pattern, scanning back from the end. */
  lastMatching(pattern: readonly string[]): StreamEvent | undefined {
    for (let i = this.events.length - 1; i >= this.head; i--) {
      const event = this.events[i]!;
      if (tokensMatch(pattern, event.topic.split(SEPARATOR))) return event;
    }
    return undefined;
  }

  stats(): StreamStats {
    return {
      events: this.count,
      bytes: this.bytes,
      firstSequence: this.oldest?.sequence,
      lastSequence: this.newest?.sequence,
      dropped: this.dropped,
    };
  }
}

function splitPattern(pattern: string): string[] {
  const problem = checkPattern(pattern);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return pattern.split(SEPARATOR);
}

/**
 * The events a stream retains, indexed in memory by rule bucket and sequence: what a subscriber
 * reading `from: { sequence }` or a group's cursor can still get. It holds sizes and topics, not
 * payloads, which live in the log. Methods given invalid input throw InvalidArgumentError: they are
 * called by the server with input it has already checked.
 */
export class StreamIndex {
  private readonly buckets = new Map<string, Bucket>();
  private lastAppended = Number.NEGATIVE_INFINITY;
  private droppedThrough = Number.NEGATIVE_INFINITY;

  constructor(rules: readonly RetentionRule[]) {
    const problem = checkRules(rules);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
    for (const rule of rules) this.buckets.set(rule.prefix, new Bucket({ ...rule }));
    if (!this.buckets.has('')) this.buckets.set('', new Bucket({ prefix: '' }));
  }

  /** The bucket of the longest rule prefix `topic` lies under, walking its prefixes from the longest. */
  private bucketOf(topic: string): Bucket {
    let prefix = topic;
    for (;;) {
      const bucket = this.buckets.get(prefix);
      if (bucket !== undefined) return bucket;
      const dot = prefix.lastIndexOf(SEPARATOR);
      if (dot < 0) return this.buckets.get('')!;
      prefix = prefix.slice(0, dot);
    }
  }

  /** Events held, over every bucket. */
  get size(): number {
    let n = 0;
    for (const bucket of this.buckets.values()) n += bucket.count;
    return n;
  }

  /**
   * Adds an event; returns the sequences its bucket dropped to stay within maxEvents and
   * maxBytes, oldest first.
   */
  append(event: StreamEvent): number[] {
    const { sequence, topic, bytes, time } = event;
    const problem = checkTopic(topic);
    if (problem !== undefined) throw new InvalidArgumentError(problem);
    if (!Number.isSafeInteger(sequence) || sequence < 0)
      throw new InvalidArgumentError(`event sequence ${sequence} is not a non-negative integer`);
    if (sequence <= this.lastAppended)
      throw new InvalidArgumentError(
        `event sequence ${sequence} is not above the last, ${this.lastAppended}`,
      );
    if (!Number.isSafeInteger(bytes) || bytes < 0)
      throw new InvalidArgumentError(`event size ${bytes} is not a non-negative integer`);
    if (!Number.isFinite(time)) throw new InvalidArgumentError(`event time ${time} is not a finite number`);
    this.lastAppended = sequence;
    const bucket = this.bucketOf(topic);
    bucket.push({ sequence, topic, bytes, time });
    const dropped: number[] = [];
    while (bucket.overLimit()) dropped.push(bucket.dropOldest());
    this.noteDropped(dropped);
    return dropped;
  }

  /** Drops what the rules no longer allow at time `now`; returns the sequences dropped, oldest first. */
  expire(now: number): number[] {
    if (typeof now !== 'number' || Number.isNaN(now))
      throw new InvalidArgumentError(`time ${now} is not a number`);
    const dropped: number[] = [];
    for (const bucket of this.buckets.values())
      while (bucket.expired(now) || bucket.overLimit()) dropped.push(bucket.dropOldest());
    dropped.sort((a, b) => a - b);
    this.noteDropped(dropped);
    return dropped;
  }

  private noteDropped(dropped: readonly number[]): void {
    const newest = dropped[dropped.length - 1];
    if (newest !== undefined && newest > this.droppedThrough) this.droppedThrough = newest;
  }

  /**
   * Drops the event with this sequence if it is the oldest of its bucket (a retention delete the
   * active sequenced, applied on the passive); false when no bucket starts with it.
   */
  dropIfOldest(sequence: number): boolean {
    for (const bucket of this.buckets.values()) {
      if (bucket.oldest?.sequence !== sequence) continue;
      this.noteDropped([bucket.dropOldest()]);
      return true;
    }
    return false;
  }

  /** Sequence of the oldest event held (matching `pattern` when given), undefined when none. */
  first(pattern?: string): number | undefined {
    if (pattern !== undefined) return this.after(Number.NEGATIVE_INFINITY, pattern, 1)[0]?.sequence;
    let first: number | undefined;
    for (const bucket of this.buckets.values()) {
      const s = bucket.oldest?.sequence;
      if (s !== undefined && (first === undefined || s < first)) first = s;
    }
    return first;
  }

  /** Sequence of the newest event held (matching `pattern` when given), undefined when none. */
  last(pattern?: string): number | undefined {
    const tokens = pattern === undefined ? undefined : splitPattern(pattern);
    let last: number | undefined;
    for (const bucket of this.buckets.values()) {
      if (tokens !== undefined && !mayHold(bucket.rule.prefix, tokens)) continue;
      const s = (tokens === undefined ? bucket.newest : bucket.lastMatching(tokens))?.sequence;
      if (s !== undefined && (last === undefined || s > last)) last = s;
    }
    return last;
  }

  /**
   * Up to `max` events held with a sequence above `sequence` whose topic matches `pattern`, in
   * sequence order: the next page for a subscriber or a group cursor at `sequence`.
   */
  after(sequence: number, pattern: string, max: number): StreamEvent[] {
    const tokens = splitPattern(pattern);
    if (!(max === Number.POSITIVE_INFINITY || (Number.isSafeInteger(max) && max >= 0)))
      throw new InvalidArgumentError(`max ${max} is not a non-negative integer`);
    // One cursor per bucket that can hold a matching topic; merge them by sequence.
    const cursors: { bucket: Bucket; i: number }[] = [];
    for (const bucket of this.buckets.values())
      if (mayHold(bucket.rule.prefix, tokens)) cursors.push({ bucket, i: bucket.indexAfter(sequence) });
    const out: StreamEvent[] = [];
    while (out.length < max) {
      let next: { bucket: Bucket; i: number } | undefined;
      let nextEvent: StreamEvent | undefined;
      for (const cursor of cursors) {
        const event = cursor.i < cursor.bucket.end ? cursor.bucket.at(cursor.i) : undefined;
        if (event !== undefined && (nextEvent === undefined || event.sequence < nextEvent.sequence)) {
          next = cursor;
          nextEvent = event;
        }
      }
      if (next === undefined || nextEvent === undefined) break;
      next.i++;
      if (tokensMatch(tokens, nextEvent.topic.split(SEPARATOR))) out.push(nextEvent);
    }
    return out;
  }

  /**
   * Whether a reader that has seen every event up to and including `sequence` can still read
   * every event after it: true when no event with a greater sequence has been dropped. With a
   * pattern, only the buckets that can hold a matching topic count; that is conservative (a
   * bucket's dropped events may not have matched), so `false` means "may have lost some", while
   * `true` is certain.
   */
  covers(sequence: number, pattern?: string): boolean {
    if (pattern === undefined) return sequence >= this.droppedThrough;
    const tokens = splitPattern(pattern);
    for (const bucket of this.buckets.values())
      if (mayHold(bucket.rule.prefix, tokens) && sequence < bucket.droppedThrough) return false;
    return true;
  }

  /**
   * Totals over every bucket, or, given a rule's prefix, that rule's bucket alone (undefined when
   * no rule has that prefix; '' always has a bucket).
   */
  stats(): StreamStats;
  stats(prefix: string): StreamStats | undefined;
  stats(prefix?: string): StreamStats | undefined {
    if (prefix !== undefined) return this.buckets.get(prefix)?.stats();
    let events = 0;
    let bytes = 0;
    let dropped = 0;
    for (const bucket of this.buckets.values()) {
      events += bucket.count;
      bytes += bucket.bytes;
      dropped += bucket.dropped;
    }
    return { events, bytes, firstSequence: this.first(), lastSequence: this.last(), dropped };
  }

  /** Each bucket's rule and stats, by prefix, for `twinstar stream ls`. */
  streams(): { rule: RetentionRule; stats: StreamStats }[] {
    return [...this.buckets.values()]
      .sort((a, b) => (a.rule.prefix < b.rule.prefix ? -1 : a.rule.prefix > b.rule.prefix ? 1 : 0))
      .map((bucket) => ({ rule: { ...bucket.rule }, stats: bucket.stats() }));
  }
}
