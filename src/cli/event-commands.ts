/**
 * `twinstar pub` and `twinstar sub`: the event bus from the shell, in the manner of `nats pub` and
 * `nats sub`. Connection options and exit codes are the client commands' (client-commands.ts).
 */
import { RESERVED_PREFIX } from '../events/index.js';
import { InvalidArgumentError, TwinstarError } from '../errors.js';
import { parseCommandLine, UsageError, decodeBase64 } from './args.js';
import { EXIT, NoServerError, withClient } from './client-commands.js';

const CONNECTION = `  --servers LIST     comma-separated snapshot endpoints (env TWINSTAR_SERVERS; default the local pair)
  --timeout MS       how long to wait for the active server, and for the publish (default 5000)
  --key-file FILE, --server-key FILES   CURVE keys, as for the other client commands
  -h, --help         this text

Exit status: 0 done, 1 failed (refused, timed out), 2 no server answered, 128 bad usage.`;

const HELP: Record<string, string> = {
  pub: `Usage: twinstar pub TOPIC DATA [--header NAME=VALUE,...] [--base64]
       twinstar pub TOPIC - ...                     (the data from stdin, as bytes)

Publishes one event on TOPIC (dotted tokens, e.g. orders.created) and prints its sequence once
both nodes hold it.
  --header LIST      headers, comma-separated NAME=VALUE pairs
  --base64           DATA (or stdin) is base64; the decoded bytes are published
${CONNECTION}\n`,
  sub: `Usage: twinstar sub PATTERN [--group NAME] [--from first|new|SEQ] [--ack] [--count N] [--base64]

Prints the events matching PATTERN (* one token, > the rest, as NATS) as JSON lines
({"topic","data","headers","seq","deliveries"}) until interrupted, or until --count events.
  --group NAME       join the consumer group NAME: each event goes to one of its members
  --from WHERE       without a group: first (the oldest still kept), new (default) or a sequence
  --ack              acknowledge each event once printed (in a group, an event not acked is
                     delivered again after the group's ack wait)
  --count N          exit after N events
  --base64           data as base64 (binary-safe; otherwise UTF-8 text)
${CONNECTION}\n`,
};

const OPTIONS = {
  servers: { type: 'string', takes: 'comma-separated tcp://HOST:PORT endpoints' },
  timeout: { type: 'string', takes: 'a number of milliseconds' },
  'key-file': { type: 'string', takes: 'a file name' },
  'server-key': { type: 'string', takes: 'file names, comma-separated' },
  help: { type: 'boolean', short: 'h' },
  header: { type: 'string', takes: 'NAME=VALUE pairs, comma-separated' },
  base64: { type: 'boolean' },
  group: { type: 'string', takes: 'a group name' },
  from: { type: 'string', takes: 'first, new or a sequence' },
  ack: { type: 'boolean' },
  count: { type: 'string', takes: 'a whole number' },
} as const;

const OWN: Record<string, string[]> = {
  pub: ['header', 'base64'],
  sub: ['group', 'from', 'ack', 'count', 'base64'],
};

const say = (command: string, line: string) => process.stderr.write(`twinstar ${command}: ${line}\n`);

function headersOf(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (text === undefined) return headers;
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--header takes NAME=VALUE pairs, not ${JSON.stringify(pair)}`);
    headers[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return headers;
}

function fromOf(text: string | undefined): 'first' | 'new' | { sequence: number } | undefined {
  if (text === undefined || text === 'first' || text === 'new') return text;
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`--from takes first, new or a sequence, not ${text}`);
  return { sequence: Number(text) };
}

async function stdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function run(command: string, args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (values.help) {
    process.stdout.write(HELP[command]!);
    return EXIT.OK;
  }
  for (const own of Object.keys(OPTIONS))
    if (['header', 'base64', 'group', 'from', 'ack', 'count'].includes(own) && values[own] !== undefined)
      if (!OWN[command]!.includes(own)) throw new UsageError(`--${own} does not go with ${command}`);
  const base64 = values.base64 === true;
  // The commands read no keys: a subtree in the bus's own namespace makes the snapshot empty.
  const connection = { ...values, mode: 'native' };
  if (command === 'pub') {
    if (positionals.length !== 2) throw new UsageError('pub takes TOPIC and DATA (or - to read stdin)');
    const [topic, arg] = positionals as [string, string];
    const raw = arg === '-' ? await stdin() : Buffer.from(arg);
    const data = base64 ? decodeBase64('DATA', raw.toString('latin1')) : raw;
    const headers = headersOf(values.header as string | undefined);
    return withClient(connection, RESERVED_PREFIX, async ({ client }) => {
      process.stdout.write(`${await client.publish(topic, data, { headers })}\n`);
      return EXIT.OK;
    });
  }
  if (positionals.length !== 1) throw new UsageError('sub takes one PATTERN');
  const pattern = positionals[0]!;
  const count = values.count === undefined ? Infinity : Number(values.count);
  if (!(count === Infinity || (Number.isSafeInteger(count) && count > 0)))
    throw new UsageError(`--count takes a whole number >= 1, not ${String(values.count)}`);
  const group = values.group as string | undefined;
  const from = fromOf(values.from as string | undefined);
  if (group !== undefined && from !== undefined)
    throw new UsageError('--from is for a subscriber without a group (a group starts at its cursor)');
  return withClient(connection, RESERVED_PREFIX, async ({ client, timeout }) => {
    const subscription = client.subscribe(pattern, {
      ...(group === undefined ? {} : { group }),
      ...(from === undefined ? {} : { from }),
    });
    await subscription.ready(timeout);
    const stop = () => void subscription.unsubscribe().catch(() => undefined);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let seen = 0;
    for await (const event of subscription) {
      const data = base64 ? event.data.toString('base64') : event.data.toString();
      const line = { topic: event.topic, data, headers: event.headers, seq: event.sequence };
      process.stdout.write(`${JSON.stringify({ ...line, deliveries: event.deliveryCount })}\n`);
      if (values.ack === true) await event.ack();
      if (++seen >= count) break;
    }
    await subscription.unsubscribe().catch(() => undefined);
    return EXIT.OK;
  });
}

export function eventCommand(command: 'pub' | 'sub'): (args: string[]) => Promise<number> {
  return async (args) => {
    try {
      return await run(command, args);
    } catch (error) {
      if (error instanceof UsageError || error instanceof InvalidArgumentError) {
        say(command, `${error.message} (see twinstar ${command} --help)`);
        return EXIT.USAGE;
      }
      if (error instanceof NoServerError) {
        say(command, error.message);
        return EXIT.NO_SERVER;
      }
      if (error instanceof TwinstarError) {
        say(command, `${error.message} (${error.code})`);
        return EXIT.FAILED;
      }
      throw error;
    }
  };
}
