/**
 * Topics and patterns (src/events/topics.ts): the grammar's accepted and rejected forms, NATS
 * wildcard semantics, prefixes for access checks, and the trie index against a brute-force filter.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  MAX_TOPIC_BYTES,
  TopicIndex,
  checkPattern,
  checkTopic,
  matches,
  prefixOf,
  underPrefix,
} from '../../../src/events/index.js';
import { TwinstarError } from '../../../src/errors.js';

describe('events/topics', () => {
  describe('checkTopic', () => {
    it('accepts dotted literal tokens, including non-ASCII and punctuation', () => {
      for (const topic of ['orders', 'orders.created.eu', 'a-b_c.d:e', 'commandes.créées', 'x.1.2'])
        expect(checkTopic(topic), topic).to.equal(undefined);
    });

    it('rejects empty topics and empty tokens, saying where', () => {
      expect(checkTopic('')).to.match(/empty/);
      expect(checkTopic('a..b')).to.match(/two dots/);
      expect(checkTopic('.a')).to.match(/leading dot/);
      expect(checkTopic('a.')).to.match(/trailing dot/);
      expect(checkTopic('.')).to.match(/empty token/);
    });

    it('rejects whitespace and control characters', () => {
      for (const topic of ['a b', 'a\tb', 'a\nb', 'a\u0000b', 'a\u007fb', 'a\u0085b', 'a\u00a0b', 'a\u3000b'])
        expect(checkTopic(topic), JSON.stringify(topic)).to.match(/whitespace or a control/);
    });

    it('rejects wildcards in a publish topic, alone or inside a token', () => {
      for (const topic of ['*', '>', 'orders.*', 'orders.>', 'ord*', 'a.b>c'])
        expect(checkTopic(topic), topic).to.match(/wildcard/);
    });

    it(`accepts up to ${MAX_TOPIC_BYTES} UTF-8 bytes and rejects one more`, () => {
      expect(checkTopic('a'.repeat(MAX_TOPIC_BYTES))).to.equal(undefined);
      expect(checkTopic('a'.repeat(MAX_TOPIC_BYTES + 1))).to.match(/257 bytes/);
      // Counted in bytes, not characters: 'é' is two bytes in UTF-8.
      const half = 'é'.repeat(MAX_TOPIC_BYTES / 2);
      expect(checkTopic(half)).to.equal(undefined);
      expect(checkTopic(`${half}a`)).to.match(/bytes/);
    });

    it('rejects a non-string from untyped input instead of throwing', () => {
      expect(checkTopic(42 as unknown as string)).to.match(/not a string/);
    });
  });

  describe('checkPattern', () => {
    it('accepts literal patterns and whole-token wildcards', () => {
      for (const pattern of ['orders', 'orders.*', '*.created.*', '*', '>', 'orders.>', '*.>', 'a.*.b.>'])
        expect(checkPattern(pattern), pattern).to.equal(undefined);
    });

    it("rejects '>' anywhere but the last token", () => {
      for (const pattern of ['>.a', 'a.>.b', '>.>'])
        expect(checkPattern(pattern), pattern).to.match(/before its last/);
    });

    it('rejects wildcards mixed with other characters in a token', () => {
      for (const pattern of ['ord*', 'a.*b', 'a.b>', '**', '>>', 'a.*>'])
        expect(checkPattern(pattern), pattern).to.match(/mixes a wildcard/);
    });

    it('rejects what topics reject: empty, empty tokens, whitespace, length', () => {
      expect(checkPattern('')).to.match(/empty/);
      expect(checkPattern('a..*')).to.match(/empty token/);
      expect(checkPattern('*.')).to.match(/empty token/);
      expect(checkPattern('a *')).to.match(/whitespace/);
      expect(checkPattern('a'.repeat(MAX_TOPIC_BYTES + 1))).to.match(/bytes/);
    });
  });

  describe('matches', () => {
    const cases: [string, string, boolean][] = [
      ['orders.created', 'orders.created', true],
      ['orders.created', 'orders.created.eu', false],
      ['orders.created.eu', 'orders.created', false],
      ['orders.*', 'orders.created', true],
      ['orders.*', 'orders.created.eu', false],
      ['orders.*', 'orders', false],
      ['*.created.*', 'orders.created.eu', true],
      ['*.created.*', 'orders.deleted.eu', false],
      ['orders.>', 'orders.a', true],
      ['orders.>', 'orders.a.b', true],
      ['orders.>', 'orders', false],
      ['orders.>', 'ordersx.a', false],
      ['>', 'a', true],
      ['>', 'a.b.c', true],
      ['*', 'a', true],
      ['*', 'a.b', false],
      ['*.>', 'a', false],
      ['*.>', 'a.b', true],
    ];
    for (const [pattern, topic, expected] of cases)
      it(`${pattern} ${expected ? 'matches' : 'does not match'} ${topic}`, () => {
        expect(matches(pattern, topic)).to.equal(expected);
      });

    it('is false for an invalid pattern or topic', () => {
      expect(matches('ord*', 'ord*')).to.equal(false);
      expect(matches('>', 'a..b')).to.equal(false);
      expect(matches('*', '*')).to.equal(false);
    });
  });

  describe('grammar properties', () => {
    // Tokens from a mix of ordinary, wildcard, separator, space and control characters.
    const text = fc
      .array(fc.constantFrom('a', 'b', 'é', '.', '*', '>', ' ', '\u0001', '-'), { maxLength: 8 })
      .map((chars) => chars.join(''));

    it('a valid topic is a valid pattern that matches itself, and `>` matches it', () => {
      fc.assert(
        fc.property(text, (topic) => {
          if (checkTopic(topic) !== undefined) return;
          expect(checkPattern(topic)).to.equal(undefined);
          expect(matches(topic, topic)).to.equal(true);
          expect(matches('>', topic)).to.equal(true);
        }),
        { numRuns: 500 },
      );
    });

    it('a valid pattern without wildcards is a valid topic; any string is checked without throwing', () => {
      fc.assert(
        fc.property(fc.oneof(text, fc.string()), (s) => {
          const problem = checkPattern(s);
          if (problem === undefined && !s.includes('*') && !s.includes('>'))
            expect(checkTopic(s)).to.equal(undefined);
          expect(['undefined', 'string']).to.include(typeof checkTopic(s));
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('prefixOf and underPrefix', () => {
    it('gives the literal tokens before the first wildcard', () => {
      expect(prefixOf('orders.*.eu')).to.equal('orders');
      expect(prefixOf('orders.created.>')).to.equal('orders.created');
      expect(prefixOf('orders.eu')).to.equal('orders.eu');
      expect(prefixOf('>')).to.equal('');
      expect(prefixOf('*.created')).to.equal('');
    });

    it('throws a typed error for an invalid pattern', () => {
      expect(() => prefixOf('ord*')).to.throw(TwinstarError, /mixes/);
    });

    it('underPrefix is token-aligned', () => {
      expect(underPrefix('orders', 'orders')).to.equal(true);
      expect(underPrefix('orders', 'orders.eu')).to.equal(true);
      expect(underPrefix('orders', 'ordersx')).to.equal(false);
      expect(underPrefix('orders.eu', 'orders')).to.equal(false);
      expect(underPrefix('', 'anything')).to.equal(true);
    });

    it('every topic a pattern matches lies under its prefix (property)', () => {
      const token = fc.constantFrom('a', 'b', 'c');
      const patternToken = fc.constantFrom('a', 'b', 'c', '*');
      fc.assert(
        fc.property(
          fc.array(patternToken, { minLength: 1, maxLength: 4 }),
          fc.boolean(),
          fc.array(token, { minLength: 1, maxLength: 5 }),
          (tokens, rest, topicTokens) => {
            const pattern = [...tokens, ...(rest ? ['>'] : [])].join('.');
            const topic = topicTokens.join('.');
            if (matches(pattern, topic)) expect(underPrefix(prefixOf(pattern), topic)).to.equal(true);
          },
        ),
      );
    });
  });

  describe('TopicIndex', () => {
    it('fans a topic out to every matching pattern, each value once', () => {
      const index = new TopicIndex<string>();
      index.add('orders.created', 'exact');
      index.add('orders.*', 'one');
      index.add('orders.>', 'rest');
      index.add('>', 'all');
      index.add('payments.>', 'other');
      index.add('orders.*', 'twice');
      index.add('orders.>', 'twice');
      expect(index.match('orders.created').sort()).to.deep.equal(['all', 'exact', 'one', 'rest', 'twice']);
      expect(index.match('orders.created.eu').sort()).to.deep.equal(['all', 'rest', 'twice']);
      expect(index.match('orders').sort()).to.deep.equal(['all']);
      expect(index.match('payments.x').sort()).to.deep.equal(['all', 'other']);
    });

    it('counts (pattern, value) pairs, ignoring a repeated add', () => {
      const index = new TopicIndex<number>();
      expect(index.add('a.*', 1)).to.equal(true);
      expect(index.add('a.*', 1)).to.equal(false);
      expect(index.add('a.>', 1)).to.equal(true);
      expect(index.size).to.equal(2);
    });

    it('remove takes one pair out and leaves the others', () => {
      const index = new TopicIndex<number>();
      index.add('a.b', 1);
      index.add('a.b', 2);
      index.add('a.>', 1);
      expect(index.match('a.b').sort()).to.deep.equal([1, 2]);
      expect(index.remove('a.b', 1)).to.equal(true);
      expect(index.match('a.b').sort()).to.deep.equal([1, 2]); // 1 still via a.>
      expect(index.remove('a.>', 1)).to.equal(true);
      expect(index.match('a.b')).to.deep.equal([2]);
      expect(index.remove('a.>', 1)).to.equal(false);
      expect(index.remove('x.y.z', 2)).to.equal(false);
      expect(index.remove('ord*', 2)).to.equal(false);
      expect(index.size).to.equal(1);
    });

    it('matches nothing for an invalid topic and refuses an invalid pattern', () => {
      const index = new TopicIndex<number>();
      index.add('>', 1);
      expect(index.match('a..b')).to.deep.equal([]);
      expect(index.match('a.*')).to.deep.equal([]);
      expect(() => index.add('a.>.b', 1)).to.throw(TwinstarError, /before its last/);
      expect(index.size).to.equal(1);
    });

    it('match equals the brute-force filter over matches, through adds and removes (property)', () => {
      const token = fc.constantFrom('a', 'b', 'c');
      const pattern = fc
        .tuple(fc.array(fc.constantFrom('a', 'b', 'c', '*'), { minLength: 1, maxLength: 4 }), fc.boolean())
        .map(([tokens, rest]) => (rest ? [...tokens.slice(0, -1), '>'] : tokens).join('.'));
      const topic = fc.array(token, { minLength: 1, maxLength: 4 }).map((t) => t.join('.'));
      const op = fc.oneof(
        fc.record({ kind: fc.constant('add' as const), pattern, value: fc.integer({ min: 0, max: 5 }) }),
        fc.record({ kind: fc.constant('remove' as const), pattern, value: fc.integer({ min: 0, max: 5 }) }),
        fc.record({ kind: fc.constant('match' as const), topic }),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
          const index = new TopicIndex<number>();
          const pairs = new Map<string, [string, number]>();
          for (const o of ops) {
            if (o.kind === 'add') {
              const key = `${o.pattern}|${o.value}`;
              expect(index.add(o.pattern, o.value)).to.equal(!pairs.has(key));
              pairs.set(key, [o.pattern, o.value]);
            } else if (o.kind === 'remove') {
              const key = `${o.pattern}|${o.value}`;
              expect(index.remove(o.pattern, o.value)).to.equal(pairs.delete(key));
            } else {
              const expected = new Set(
                [...pairs.values()].filter(([p]) => matches(p, o.topic)).map(([, v]) => v),
              );
              expect(index.match(o.topic).sort()).to.deep.equal([...expected].sort());
            }
            expect(index.size).to.equal(pairs.size);
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
