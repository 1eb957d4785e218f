/**
 * Regenerates the parts of docs/ that are derived from code, so they cannot drift:
 *   docs/configuration.md   from the convict schema (src/config)
 *   docs/binary-star.md     the state diagram between the GENERATED markers, from the FSM table
 * Run: npm run docs. test/unit/docs.test.ts fails when the committed docs are stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeSettings } from '../src/config/index.js';
import { EVENT_KINDS, STATES, mermaid, ruleName } from '../src/fsm/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

export function configurationDoc(): string {
  const rows = describeSettings().map(
    (s) =>
      `| \`${s.flag}\` | \`${s.env}\` | ${s.default === null ? 'by role' : `\`${JSON.stringify(s.default)}\``} | ${s.doc} |`,
  );
  return [
    '# Configuration',
    '',
    '<!-- Generated from src/config/index.ts by `npm run docs`; edit the schema, not this file. -->',
    '',
    'Every setting can be given as a command-line flag of `twinstar server`, as an environment',
    'variable, or in a JSON file named by `--config FILE` or `TWINSTAR_CONFIG` (keys as in the',
    'schema, e.g. `{"heartbeatMs": 100}`). Flags win over the environment, which wins over the file.',
    'A bad value stops start-up with one line naming the setting and exit code 2; so does a port',
    'that cannot be bound (`twinstar: cannot bind tcp://127.0.0.1:5556: address already in use`).',
    '',
    '"By role" defaults let a primary and a backup pair on one host with no flags: the primary uses',
    'snapshot port 5556, heartbeat port 5003 and HTTP port 9556 and looks for its peer at',
    '127.0.0.1:5566 / 127.0.0.1:5004; the backup is the mirror image (5566, 5004, 9566).',
    '`twinstar pair --port N` moves both nodes of a local pair to ports N..N+14 (README, Command line).',
    '`heartbeatMs` and `failoverMs` must be equal on both nodes: a node refuses to pair otherwise.',
    '',
    '| flag | environment | default | meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

export function fsmTable(): string {
  const header = `| state | ${EVENT_KINDS.map((k) => (k === 'CLIENT_REQUEST' ? 'client request' : `peer ${k}`)).join(' | ')} |`;
  const sep = `| --- | ${EVENT_KINDS.map(() => '---').join(' | ')} |`;
  const rows = STATES.map((s) => `| ${s} | ${EVENT_KINDS.map((k) => ruleName(s, k)).join(' | ')} |`);
  return [header, sep, ...rows].join('\n');
}

export function binaryStarGenerated(): string {
  return [
    '```mermaid',
    mermaid(),
    '```',
    '',
    'The rule in each cell (from `TABLE` in src/fsm/binary-star.ts):',
    '',
    fsmTable(),
  ].join('\n');
}

const BEGIN = '<!-- BEGIN GENERATED: npm run docs -->';
const END = '<!-- END GENERATED -->';

export function withGenerated(doc: string, generated: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start === -1 || end === -1) throw new Error('docs/binary-star.md lacks the GENERATED markers');
  return `${doc.slice(0, start + BEGIN.length)}\n${generated}\n${doc.slice(end)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(`${root}docs/configuration.md`, configurationDoc());
  const star = `${root}docs/binary-star.md`;
  writeFileSync(star, withGenerated(readFileSync(star, 'utf8'), binaryStarGenerated()));
  console.log('docs/configuration.md and docs/binary-star.md regenerated');
}
