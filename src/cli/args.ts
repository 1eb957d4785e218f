/**
 * Command-line parsing for the client commands, with one-line messages that name the flag and
 * what it takes. Node's `util.parseArgs` refuses `--ttl -5` as "ambiguous" and words its errors
 * for programmers; here, as with getopt, an option that takes a value takes the next word
 * whatever it looks like, and the value is then checked by the command. Pure: no I/O.
 */

export class UsageError extends Error {}

export interface OptionSpec {
  /** 'string' takes a value (`--x V` or `--x=V`); 'boolean' takes none */
  readonly type: 'string' | 'boolean';
  /** what the value is, for messages: "a number of seconds" */
  readonly takes?: string;
  readonly short?: string;
}

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parseCommandLine(args: readonly string[], spec: Record<string, OptionSpec>): Parsed {
  const values: Parsed['values'] = {};
  const positionals: string[] = [];
  const shorts = new Map(
    Object.entries(spec)
      .filter(([, s]) => s.short !== undefined)
      .map(([name, s]) => [s.short!, name]),
  );
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      for (const rest of args.slice(i + 1)) positionals.push(rest); // no spread into a call: argv is unbounded
      break;
    }
    // '-' alone is a positional (stdin), as for cat and etcdctl.
    if (arg === '-' || !arg.startsWith('-')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const name = flag.startsWith('--') ? flag.slice(2) : shorts.get(flag.slice(1));
    const option = name === undefined ? undefined : spec[name];
    if (name === undefined || option === undefined) {
      throw new UsageError(
        /^-\d/.test(arg)
          ? `unknown option ${flag} (a value that starts with - goes after --, as in: -- ${arg})`
          : `unknown option ${flag}`,
      );
    }
    if (option.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`${flag} takes no value`);
      values[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (i + 1 < args.length) value = args[++i];
    if (value === undefined) throw new UsageError(`${flag} needs a value: ${option.takes ?? 'a value'}`);
    values[name] = value;
  }
  return { values, positionals };
}

/** A whole or decimal number of seconds >= 0, as `--ttl` takes it. */
export function parseSeconds(flag: string, text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text))
    throw new UsageError(`${flag} takes a number of seconds >= 0, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** A positive number of milliseconds, as `--timeout` takes it. */
export function parseMillis(flag: string, text: string): number {
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(ms > 0))
    throw new UsageError(`${flag} takes a number of milliseconds > 0, not ${JSON.stringify(text)}`);
  return ms;
}

/** Strict base64 (standard alphabet; padding optional; whitespace around is ignored). */
export function decodeBase64(what: string, text: string): Buffer {
  const trimmed = text.trim();
  const bytes = Buffer.from(trimmed, 'base64');
  const canonical = bytes.toString('base64');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || canonical.replace(/=+$/, '') !== trimmed.replace(/=+$/, ''))
    throw new UsageError(`${what} is not valid base64`);
  return bytes;
}
