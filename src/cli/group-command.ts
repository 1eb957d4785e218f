/**
 * `twinstar group ls|info [NAME]`: the consumer groups of the event bus as the ACTIVE node's
 * GET /groups and /groups/NAME tell them (in the manner of `nats consumer ls` and
 * `nats consumer info`): lag, in flight, waiting, acked, redeliveries, dead letters and members.
 * The rendering is pure (`formatGroupList`, `formatGroupInfo`), tested with plain data.
 */
import type { GroupView } from '../metrics/index.js';
import { fields, formatCount, formatMs, table, where, type BusDeps } from './bus-query.js';
import { DEFAULT_STATUS_NODES } from './status-command.js';
import { askActiveOrFail, busInvocation } from './bus-invocation.js';

export const GROUP_HELP = `Usage: twinstar group ls [--nodes URL,URL] [--json]
       twinstar group info NAME [--nodes URL,URL] [--json]

The event bus's consumer groups as the ACTIVE node reports them. ls shows one
line per group; info shows one group's settings, its state (lag: events not
yet considered; pending: delivered and not acked; waiting: for a redelivery;
acked, redeliveries, dead letters) and its members with the events each holds.

Options:
  --nodes URL,URL   the nodes' metrics/health HTTP addresses
                    (default ${DEFAULT_STATUS_NODES.join(',')})
  --json            print the active node's answer as JSON
  -h, --help        show this help

Exit status: 0 done, 1 no ACTIVE node answered or no such group, 2 bad usage.
`;

export function formatGroupList(groups: readonly GroupView[]): string {
  if (groups.length === 0) return 'No consumer groups.\n';
  const rows = groups.map(({ name, pattern, config, stats }) => [
    name,
    pattern,
    config.durable ? 'yes' : 'no',
    String(stats.members.length),
    formatCount(stats.lag),
    formatCount(stats.pending),
    formatCount(stats.waiting),
    formatCount(stats.acked),
    formatCount(stats.redeliveries),
    formatCount(stats.deadLetters),
  ]);
  return table(
    [
      'GROUP',
      'PATTERN',
      'DURABLE',
      'MEMBERS',
      'LAG',
      'PENDING',
      'WAITING',
      'ACKED',
      'REDELIVERED',
      'DEAD LETTERS',
    ],
    rows,
  );
}

export function formatGroupInfo(group: GroupView, source?: string): string {
  const { name, pattern, config, stats } = group;
  const members =
    stats.members.length === 0
      ? `  none${config.durable ? ' (durable: the group keeps its place until a member joins)' : ''}\n`
      : table(
          ['MEMBER', 'IN FLIGHT'],
          stats.members.map((m) => [m.id, formatCount(m.inFlight)]),
        )
          .split('\n')
          .map((line) => (line === '' ? line : `  ${line}`))
          .join('\n');
  return [
    `Group ${name}${source ? ` on ${source}` : ''}\n`,
    '\nConfiguration:\n',
    fields([
      ['Pattern', pattern === '' ? '-' : pattern],
      ['Durable', config.durable ? 'yes' : 'no'],
      ['Ack wait', formatMs(config.ackWaitMs)],
      ['Max deliver', formatCount(config.maxDeliver)],
      ['Max ack pending', `${formatCount(config.maxAckPending)} per member`],
    ]),
    '\nState:\n',
    fields([
      ['Lag', `${formatCount(stats.lag)} (events not yet considered for the group)`],
      ['Pending', `${formatCount(stats.pending)} (delivered, not yet acked)`],
      ['Waiting', `${formatCount(stats.waiting)} (for a redelivery)`],
      ['Acked', formatCount(stats.acked)],
      ['Termed', formatCount(stats.termed)],
      ['Redeliveries', formatCount(stats.redeliveries)],
      ['Dead letters', `${formatCount(stats.deadLetters)} (sent to $dlq.${name})`],
      ['Stale answers', `${formatCount(stats.ignored)} (acks for events a member no longer held, ignored)`],
    ]),
    '  (counts since the node started or last resynced)\n',
    `\nMembers (${stats.members.length}):\n`,
    members,
  ].join('');
}

function isGroup(value: unknown): value is GroupView {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<GroupView>;
  return (
    typeof v.name === 'string' &&
    typeof v.config === 'object' &&
    typeof v.stats === 'object' &&
    Array.isArray(v.stats?.members)
  );
}

export async function groupCommand(args: string[], deps: BusDeps = {}): Promise<number> {
  const inv = busInvocation(
    { command: 'group', help: GROUP_HELP, argName: 'a group NAME', emptyArg: false },
    args,
    deps,
  );
  if (typeof inv === 'number') return inv;
  const { sub, arg: name } = inv;
  const path = sub === 'ls' ? '/groups' : `/groups/${encodeURIComponent(name!)}`;
  const answer = await askActiveOrFail(inv, 'group', path, deps);
  if (typeof answer === 'number') return answer;
  const source = where(answer.node);
  if (sub === 'info' && answer.code === 404) {
    inv.err(`twinstar group: no group named ${JSON.stringify(name)} on ${source}\n`);
    return 1;
  }
  const body = answer.body;
  const ok =
    answer.code === 200 && (sub === 'ls' ? Array.isArray(body) && body.every(isGroup) : isGroup(body));
  if (!ok) {
    inv.err(
      `twinstar group: ${source} gave no group ${sub === 'ls' ? 'list' : 'info'} (HTTP ${answer.code})\n`,
    );
    return 1;
  }
  if (inv.json) inv.out(`${JSON.stringify(body, null, 2)}\n`);
  else if (sub === 'ls') inv.out(formatGroupList(body as GroupView[]));
  else inv.out(formatGroupInfo(body as GroupView, source));
  return 0;
}
