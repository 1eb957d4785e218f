/**
 * `twinstar promote --node URL --force`: the operator's override of "no data, no vote". A node that
 * never completed its sync refuses every client vote, so when the active is lost for good the pair
 * stays unavailable rather than serve a history with holes and reused sequence numbers. An
 * operator who knows what was lost (or accepts it) promotes that node anyway; the node refuses
 * while it still hears an active peer. Only Node built-ins: it must start fast.
 */
import { parseArgs } from 'node:util';
import { httpFetch } from './http.js';

export const PROMOTE_HELP = `Usage: twinstar promote --node URL --force

Promotes a node that refuses votes because it does not hold the pair's
complete history (its /status says unavailable: no-history). It may then
serve a state without writes that were acknowledged by the lost active:
that is what --force acknowledges. The node refuses while its peer is active.
The request must come from the node's own host (loopback).

Options:
  --node URL    the node's metrics/health HTTP address, e.g. http://127.0.0.1:9566
  --force       required: you accept that acknowledged writes may be missing
  -h, --help    show this help

Exit status: 0 promoted (or already active), 1 refused by the node, 2 bad usage
or the node could not be reached.
`;

export async function promoteCommand(args: string[]): Promise<number> {
  let values: { node?: string; force?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        node: { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`twinstar promote: ${(error as Error).message}\n\n${PROMOTE_HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(PROMOTE_HELP);
    return 0;
  }
  if (!values.node) {
    process.stderr.write(`twinstar promote: --node URL is required\n\n${PROMOTE_HELP}`);
    return 2;
  }
  if (!values.force) {
    process.stderr.write(
      'twinstar promote: refusing without --force: the node may not hold every acknowledged write\n',
    );
    return 2;
  }
  let response: Response;
  try {
    response = await httpFetch(new URL('/promote?force=1', values.node), {
      method: 'POST',
      signal: AbortSignal.timeout(5000),
    });
  } catch (error) {
    process.stderr.write(`twinstar promote: cannot reach ${values.node}: ${(error as Error).message}\n`);
    return 2;
  }
  const text = (await response.text()).trim();
  if (response.ok) {
    process.stdout.write(`${text}\n`);
    return 0;
  }
  process.stderr.write(`twinstar promote: ${values.node} refused (${response.status}): ${text}\n`);
  return 1;
}
