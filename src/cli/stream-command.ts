/**
 * `twinstar stream ls|info [PREFIX]`: what the event stream retains, per retention rule, as the
 * ACTIVE node's GET /streams tells it (in the manner of `nats stream ls` and `nats stream info`).
 * The rendering is pure (`formatStreamList`, `formatStreamInfo`), tested with plain data.
 */
import type { StreamView } from '../metrics/index.js';
import { fields, formatBytes, formatCount, formatMs, table, where, type BusDeps } from './bus-query.js';
import { DEFAULT_STATUS_NODES } from './status-command.js';
import { askActiveOrFail, busInvocation } from './bus-invocation.js';

export const STREAM_HELP = `Usage: twinstar stream ls [--nodes URL,URL] [--json]
       twinstar stream info PREFIX [--nodes URL,URL] [--json]

What the event stream holds, per retention rule (topic prefix), as the ACTIVE
node reports it: events, bytes, first and last sequence, events dropped by
retention, and the rule's limits. The rule for '' covers every topic no other
rule covers: \`twinstar stream info ''\`.

Options:
  --nodes URL,URL   the nodes' metrics/health HTTP addresses
                    (default ${DEFAULT_STATUS_NODES.join(',')})
  --json            print the active node's answer as JSON
  -h, --help        show this help

Exit status: 0 done, 1 no ACTIVE node answered or no rule for PREFIX, 2 bad usage.
`;

/** '' is shown quoted, so that the rule for every other topic is visible in a table. */
export const showPrefix = (prefix: string) => (prefix === '' ? "''" : prefix);

const seq = (n: number | null) => (n === null ? '-' : String(n));

export function formatStreamList(streams: readonly StreamView[]): string {
  if (streams.length === 0) return 'No retention rules.\n';
  const rows = streams.map(({ prefix, rule, stats }) => [
    showPrefix(prefix),
    formatCount(stats.events),
    formatBytes(stats.bytes),
    seq(stats.firstSequence),
    seq(stats.lastSequence),
    formatCount(stats.dropped),
    rule.maxEvents === undefined ? '-' : formatCount(rule.maxEvents),
    formatMs(rule.maxAgeMs),
    formatBytes(rule.maxBytes),
  ]);
  return table(
    ['PREFIX', 'EVENTS', 'BYTES', 'FIRST', 'LAST', 'DROPPED', 'MAX EVENTS', 'MAX AGE', 'MAX BYTES'],
    rows,
  );
}

export function formatStreamInfo(stream: StreamView, source?: string): string {
  const { prefix, rule, stats } = stream;
  const unlimited = 'unlimited';
  return [
    `Stream ${showPrefix(prefix)}${source ? ` on ${source}` : ''}\n`,
    '\nRetention rule:\n',
    fields([
      [
        'Topic prefix',
        prefix === '' ? "'' (every topic no other rule covers)" : `${prefix} (and ${prefix}.>)`,
      ],
      ['Max events', rule.maxEvents === undefined ? unlimited : formatCount(rule.maxEvents)],
      ['Max age', rule.maxAgeMs === undefined ? unlimited : formatMs(rule.maxAgeMs)],
      ['Max bytes', rule.maxBytes === undefined ? unlimited : formatBytes(rule.maxBytes)],
    ]),
    '\nState:\n',
    fields([
      ['Events', formatCount(stats.events)],
      ['Bytes', `${formatBytes(stats.bytes)} (${formatCount(stats.bytes)})`],
      ['First sequence', seq(stats.firstSequence)],
      ['Last sequence', seq(stats.lastSequence)],
      ['Dropped', `${formatCount(stats.dropped)} (by retention, since the node started or resynced)`],
    ]),
  ].join('');
}

function isStreamList(body: unknown): body is StreamView[] {
  return (
    Array.isArray(body) &&
    body.every(
      (s: unknown) =>
        typeof s === 'object' &&
        s !== null &&
        typeof (s as StreamView).prefix === 'string' &&
        typeof (s as StreamView).stats === 'object',
    )
  );
}

export async function streamCommand(args: string[], deps: BusDeps = {}): Promise<number> {
  const spec = {
    command: 'stream',
    help: STREAM_HELP,
    argName: "a PREFIX ('' for the default rule)",
    emptyArg: true,
  } as const;
  const inv = busInvocation(spec, args, deps);
  if (typeof inv === 'number') return inv;
  const answer = await askActiveOrFail(inv, 'stream', '/streams', deps);
  if (typeof answer === 'number') return answer;
  if (answer.code !== 200 || !isStreamList(answer.body)) {
    inv.err(`twinstar stream: ${where(answer.node)} gave no stream list (HTTP ${answer.code})\n`);
    return 1;
  }
  const streams = answer.body;
  if (inv.sub === 'ls') {
    inv.out(inv.json ? `${JSON.stringify(streams, null, 2)}\n` : formatStreamList(streams));
    return 0;
  }
  const prefix = inv.arg!;
  const stream = streams.find((s) => s.prefix === prefix);
  if (stream === undefined) {
    const known = streams.map((s) => showPrefix(s.prefix)).join(', ');
    inv.err(`twinstar stream: no retention rule for prefix ${showPrefix(prefix)} (rules: ${known})\n`);
    return 1;
  }
  inv.out(inv.json ? `${JSON.stringify(stream, null, 2)}\n` : formatStreamInfo(stream, where(answer.node)));
  return 0;
}
