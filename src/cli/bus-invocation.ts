/**
 * The command line of `twinstar stream` and `twinstar group`, which take the same shape:
 * `ls | info ARG`, `--nodes URL,URL`, `--json`, `-h`. Parsing it, and asking the active node, are
 * written once here; each command keeps its own checks of ARG and its own output.
 */
import { parseArgs } from 'node:util';
import { askActive, parseNodes, type ActiveAnswer, type BusDeps } from './bus-query.js';
import { NODE_QUERY_OPTIONS } from './status-command.js';

export interface BusInvocation {
  readonly sub: 'ls' | 'info';
  /** the NAME or PREFIX after `info` */
  readonly arg: string | undefined;
  readonly json: boolean;
  readonly urls: string[];
  out(text: string): void;
  err(text: string): void;
}

export interface BusCommandSpec {
  readonly command: 'stream' | 'group';
  readonly help: string;
  /** what `ls` must not be given and `info` needs, e.g. "a group NAME" */
  readonly argName: string;
  /** whether `info ''` is a valid argument (the default retention rule's prefix is '') */
  readonly emptyArg: boolean;
}

/** The parsed invocation, or the exit code when it ends here (help: 0, bad usage: 2). */
export function busInvocation(spec: BusCommandSpec, args: string[], deps: BusDeps): BusInvocation | number {
  const out = deps.stdout ?? ((text: string) => void process.stdout.write(text));
  const err = deps.stderr ?? ((text: string) => void process.stderr.write(text));
  const usage = (why: string) => {
    err(`twinstar ${spec.command}: ${why}\n\n${spec.help}`);
    return 2;
  };
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: NODE_QUERY_OPTIONS,
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    return usage((error as Error).message);
  }
  if (values.help) {
    out(spec.help);
    return 0;
  }
  const [sub, arg, ...extra] = positionals;
  if (sub !== 'ls' && sub !== 'info')
    return usage(sub === undefined ? 'ls or info?' : `unknown subcommand ${sub}`);
  const name = spec.argName.split(' ').at(-1)!;
  if (sub === 'ls' && arg !== undefined) return usage(`ls takes no ${name}`);
  if (sub === 'info' && (arg === undefined || (arg === '' && !spec.emptyArg)))
    return usage(`info needs ${spec.argName}`);
  if (extra.length > 0) return usage(`unexpected ${extra.join(' ')}`);
  let urls: string[];
  try {
    urls = parseNodes(values.nodes);
  } catch (error) {
    return usage(`invalid --nodes: ${(error as Error).message}`);
  }
  return { sub, arg, json: values.json === true, urls, out, err };
}

/** The active node's answer to GET `path`, or exit code 1 with one line saying why there is none. */
export async function askActiveOrFail(
  inv: BusInvocation,
  command: string,
  path: string,
  deps: BusDeps,
): Promise<Extract<ActiveAnswer, { node: unknown }> | number> {
  const answer = await askActive(inv.urls, path, deps);
  if ('error' in answer) {
    inv.err(`twinstar ${command}: ${answer.error}\n`);
    return 1;
  }
  if (answer.warning) inv.err(`twinstar ${command}: warning: ${answer.warning}\n`);
  return answer;
}
