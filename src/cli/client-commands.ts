/**
 * The client side of the `twinstar` command: set, del, watch and dump (get: get-command.ts), in
 * the spirit of etcdctl and `nats kv`. Every command takes `--servers` (or TWINSTAR_SERVERS), defaulting to the
 * local pair that `npm start` runs. Values are bytes: `set KEY -` reads stdin, `get` writes the
 * value as it is, and `--base64` carries binary values through text. Output goes to stdout,
 * diagnostics to stderr, one line each. Exit codes follow etcdctl's (EXIT below).
 */
import { connect, type Client, type ClientOptions, type Mode } from '../client/index.js';
import { HistoryUnavailableError, InvalidArgumentError, TwinstarError } from '../errors.js';
import { parseCommandLine, parseMillis, parseSeconds, UsageError, decodeBase64 } from './args.js';
import { awaitEcho } from './confirm.js';
import { deletePrefix, historyLine, refusedSays } from './kv-commands.js';
import { conditionsOf, fromSequenceOf } from './kv-options.js';

export const DEFAULT_SERVERS = 'tcp://127.0.0.1:5556,tcp://127.0.0.1:5566';
const DEFAULT_TIMEOUT_MS = 5000;

/** etcdctl's codes where it has one (ExitError 1, ExitBadConnection 2, ExitBadArgs 128). */
export const EXIT = {
  OK: 0,
  /** the command ran and failed: no such key, nothing deleted, the server refused, a timeout */
  FAILED: 1,
  /** no active server answered (etcdctl's ExitBadConnection) */
  NO_SERVER: 2,
  /** a plain CHP write was sent but not seen published back within --timeout */
  NOT_CONFIRMED: 3,
  /** bad usage: a wrong option, value or number of arguments (etcdctl's ExitBadArgs) */
  USAGE: 128,
} as const;

export const COMMON = `Options:
  --servers LIST     comma-separated snapshot endpoints (env TWINSTAR_SERVERS; default ${DEFAULT_SERVERS})
  --timeout MS       how long to wait for the active server, and for a write (default ${DEFAULT_TIMEOUT_MS})
  --mode MODE        auto, native or chp (plain RFC 12 server) (default auto)
  --key-file FILE    this client's CURVE secret key file, for servers run with --curve
                     (env TWINSTAR_KEY_FILE)
  --server-key FILES the servers' public key files, one for all or comma-separated per
                     server (env TWINSTAR_SERVER_KEY)
  -h, --help         this text

Exit status: 0 done, 1 failed (no such key, nothing deleted, refused), 2 no server
answered, 3 a plain CHP write not confirmed, 128 bad usage.`;

const CHP_NOTE = `With a plain CHP server (--mode chp, or found by auto) writes are not acknowledged: the
command waits up to --timeout to see the write published back and says "confirmed", or
"sent, not confirmed" and exits 3.`;

const HELP: Record<string, string> = {
  set: `Usage: twinstar set KEY VALUE [--ttl SECONDS] [--base64] [--create | --if-seq N] [--lease ID]
       twinstar set KEY - ...                            (the value from stdin, as bytes)

Writes VALUE and prints its sequence number once the pair has acknowledged it.
  --ttl SECONDS      the key expires after this many seconds (0: never)
  --base64           VALUE (or stdin) is base64; the decoded bytes are stored
  --create           only if KEY does not exist (else exit 1, naming its sequence)
  --if-seq N         only if KEY is at sequence N, its revision (else exit 1, naming the
                     sequence it is at): compare-and-set
  --lease ID         attach KEY to lease ID (twinstar lease grant): deleted with the lease
${CHP_NOTE}
${COMMON}\n`,
  del: `Usage: twinstar del KEY [--if-seq N]
       twinstar del PREFIX --prefix

Deletes KEY and prints how many keys were deleted: 1, or 0 (and exit status 1) if
KEY does not exist. Nothing is written for a key that does not exist.
  --prefix           every key that starts with PREFIX, as one change; prints how many
  --if-seq N         only if KEY is at sequence N (else exit 1, naming the sequence it is at)
${CHP_NOTE}
${COMMON}\n`,
  watch: `Usage: twinstar watch [SUBTREE] [--no-initial | --rev SEQ] [--base64]\n\nPrints the current values under SUBTREE, then every change, as JSON lines
({"key","value","seq","deleted"}), until interrupted.
  --no-initial       only changes from now on
  --rev SEQ          every change from sequence SEQ on (SEQ included), then live ones; exit 1
                     when the server's history no longer reaches back to SEQ (etcd: compacted)
  --base64           values as base64 (binary-safe; otherwise UTF-8 text)
${COMMON}\n`,
  dump: `Usage: twinstar dump [SUBTREE] [--base64]\n\nPrints every key under SUBTREE (default: all) as one JSON object.
  --base64           values as base64 (binary-safe; otherwise UTF-8 text)
${COMMON}\n`,
};

/** The options every client command takes (withClient reads them). */
export const CONNECTION_OPTIONS = {
  servers: { type: 'string', takes: 'comma-separated tcp://HOST:PORT endpoints' },
  timeout: { type: 'string', takes: 'a number of milliseconds' },
  mode: { type: 'string', takes: 'auto, native or chp' },
  'key-file': { type: 'string', takes: 'a file name' },
  'server-key': { type: 'string', takes: 'file names, comma-separated' },
  help: { type: 'boolean', short: 'h' },
} as const;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  ttl: { type: 'string', takes: 'a number of seconds >= 0' },
  'no-initial': { type: 'boolean' },
  base64: { type: 'boolean' },
  create: { type: 'boolean' },
  'if-seq': { type: 'string', takes: "the key's current sequence" },
  lease: { type: 'string', takes: 'a lease id' },
  prefix: { type: 'boolean' },
  rev: { type: 'string', takes: 'a sequence' },
} as const;

/** Which command takes which of its own options (the connection options go with every one). */
const OWN: Record<string, string[]> = {
  set: ['ttl', 'base64', 'create', 'if-seq', 'lease'],
  del: ['prefix', 'if-seq'],
  watch: ['no-initial', 'base64', 'rev'],
  dump: ['base64'],
};

type Values = Record<string, string | boolean | undefined>;

/** connect() failed: no active server (exit 2), as opposed to a command that failed (exit 1). */
export class NoServerError extends Error {}

interface Connected {
  client: Client;
  timeout: number;
}

export async function withClient<T>(
  values: Values,
  subtree: string,
  run: (c: Connected) => Promise<T>,
): Promise<T> {
  const servers = String(values.servers ?? process.env.TWINSTAR_SERVERS ?? DEFAULT_SERVERS)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const timeout =
    values.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseMillis('--timeout', String(values.timeout));
  const mode = (values.mode as Mode | undefined) ?? 'auto';
  if (!['auto', 'native', 'chp'].includes(mode))
    throw new UsageError(`--mode takes auto, native or chp, not ${JSON.stringify(mode)}`);
  const keyFile = (values['key-file'] as string | undefined) ?? process.env.TWINSTAR_KEY_FILE;
  const serverKey = (values['server-key'] as string | undefined) ?? process.env.TWINSTAR_SERVER_KEY;
  if ((keyFile === undefined) !== (serverKey === undefined))
    throw new UsageError('--key-file and --server-key go together');
  const options: ClientOptions = {
    servers,
    subtree,
    mode,
    connectTimeoutMs: timeout,
    writeTimeoutMs: timeout,
    ...(keyFile && serverKey ? { curve: { keyFile, serverKeyFile: serverKey.split(',') } } : {}),
  };
  let client: Client;
  try {
    client = await connect(options);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new UsageError(error.message);
    if (error instanceof TwinstarError) throw new NoServerError(`${error.message} (${error.code})`);
    throw error;
  }
  try {
    return await run({ client, timeout });
  } finally {
    await client.close();
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The bytes `set` stores: from the argument or stdin ('-'), base64-decoded with --base64. */
async function valueOf(arg: string, base64: boolean): Promise<Buffer> {
  const raw = arg === '-' ? await readStdin() : Buffer.from(arg);
  const value = base64 ? decodeBase64(arg === '-' ? 'stdin' : 'VALUE', raw.toString('latin1')) : raw;
  if (value.length === 0)
    throw new UsageError(
      `the value${arg === '-' ? ' from stdin' : ''} is empty (an empty value deletes in CHP: use twinstar del)`,
    );
  return value;
}

export const say = (command: string, line: string) => process.stderr.write(`twinstar ${command}: ${line}\n`);

export const text = (value: Buffer | undefined, base64: boolean): string | null =>
  value === undefined ? null : base64 ? value.toString('base64') : value.toString();

/**
 * In plain CHP mode the server does not acknowledge: wait for the write to be published back.
 * Returns the sequence it was published at, or undefined (and says so) if it was not seen.
 */
async function sendUnacknowledged(
  command: string,
  { client, timeout }: Connected,
  key: string,
  value: Buffer | undefined,
  send: () => Promise<number>,
): Promise<number | undefined> {
  const echo = awaitEcho(client, key, value, client.sequence, timeout);
  try {
    await send();
  } catch (error) {
    echo.cancel();
    throw error;
  }
  const seq = await echo.seen;
  if (seq === undefined)
    say(
      command,
      `sent, not confirmed (plain CHP writes are not acknowledged): not seen published back within ${timeout} ms`,
    );
  else say(command, `confirmed: published back at sequence ${seq} (plain CHP server)`);
  return seq;
}

async function run(command: string, args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (values.help) {
    process.stdout.write(HELP[command]!);
    return EXIT.OK;
  }
  for (const own of ['ttl', 'no-initial', 'base64', 'create', 'if-seq', 'lease', 'prefix', 'rev'])
    if (values[own] !== undefined && !OWN[command]!.includes(own))
      throw new UsageError(`--${own} does not go with ${command}`);
  const base64 = values.base64 === true;
  switch (command) {
    case 'set': {
      if (positionals.length !== 2) throw new UsageError('set takes KEY and VALUE (or - to read stdin)');
      const [key, arg] = positionals as [string, string];
      const ttl = values.ttl === undefined ? undefined : parseSeconds('--ttl', String(values.ttl));
      const value = await valueOf(arg, base64);
      const conditions = conditionsOf(values);
      if (Object.keys(conditions).length > 0)
        return withClient(values, key, async ({ client }) => {
          const seq = await refusedSays('set', conditions.ifSequence, () =>
            client.set(key, value, { ttl, ...conditions }),
          );
          if (seq !== undefined) process.stdout.write(`${seq}\n`);
          return seq === undefined ? EXIT.FAILED : EXIT.OK;
        });
      return withClient(values, key, async (c) => {
        const { client } = c;
        if (client.mode === 'chp') {
          const seq = await sendUnacknowledged('set', c, key, value, () => client.set(key, value, { ttl }));
          if (seq === undefined) return EXIT.NOT_CONFIRMED;
          process.stdout.write(`${seq}\n`);
          return EXIT.OK;
        }
        const seq = await client.set(key, value, { ttl });
        if (client.degraded)
          say('set', 'warning: the pair is degraded (no passive): acknowledged by the active alone');
        process.stdout.write(`${seq}\n`);
        return EXIT.OK;
      });
    }
    case 'del': {
      if (positionals.length !== 1) throw new UsageError(`del takes one ${values.prefix ? 'PREFIX' : 'KEY'}`);
      const key = positionals[0]!;
      if (values.prefix === true) {
        if (values['if-seq'] !== undefined) throw new UsageError('--if-seq does not go with --prefix');
        return withClient(values, key, ({ client }) => deletePrefix(client, key));
      }
      const { ifSequence } = conditionsOf(values);
      // The client mirrors the subtree KEY, so its replica says whether KEY exists. Like etcd,
      // deleting nothing writes nothing (a CHP delete of an absent key would still take a sequence).
      return withClient(values, key, async (c) => {
        const { client } = c;
        if (client.get(key) === undefined) {
          process.stdout.write('0\n');
          return EXIT.FAILED;
        }
        if (ifSequence !== undefined) {
          const seq = await refusedSays('del', ifSequence, () => client.delete(key, { ifSequence }));
          if (seq === undefined) return EXIT.FAILED;
        } else if (client.mode === 'chp') {
          const seq = await sendUnacknowledged('del', c, key, undefined, () => client.delete(key));
          if (seq === undefined) return EXIT.NOT_CONFIRMED;
        } else {
          await client.delete(key);
        }
        process.stdout.write('1\n');
        return EXIT.OK;
      });
    }
    case 'dump': {
      if (positionals.length > 1) throw new UsageError('dump takes at most one SUBTREE');
      const subtree = positionals[0] ?? '';
      return withClient(values, subtree, async ({ client }) => {
        const entries: Record<string, string | null> = {};
        for (const [key, value] of [...client.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
          entries[key] = text(value, base64);
        process.stdout.write(
          `${JSON.stringify({ sequence: client.sequence, server: client.server, entries }, null, 2)}\n`,
        );
        return EXIT.OK;
      });
    }
    case 'watch': {
      if (positionals.length > 1) throw new UsageError('watch takes at most one SUBTREE');
      const subtree = positionals[0] ?? '';
      const fromSequence = fromSequenceOf(values);
      if (fromSequence !== undefined && values['no-initial'] === true)
        throw new UsageError('--rev and --no-initial do not go together');
      return withClient(values, subtree, async ({ client }) => {
        client.on('failover', (info) => say('watch', `failover to ${info.to} at sequence ${info.sequence}`));
        const stream = client.watch(
          subtree,
          fromSequence === undefined ? { initial: !values['no-initial'] } : { fromSequence },
        );
        const stop = () => void stream.return?.();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        for await (const u of stream) {
          process.stdout.write(
            `${JSON.stringify({ key: u.key, value: text(u.value, base64), seq: u.seq, deleted: u.deleted })}\n`,
          );
        }
        return EXIT.OK;
      });
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

export function clientCommand(command: string): (args: string[]) => Promise<number> {
  return guarded(command, (args) => run(command, args));
}

/** Runs a client command, turning what it throws into etcdctl's exit codes and one line on stderr. */
export function guarded(
  command: string,
  body: (args: string[]) => Promise<number>,
): (args: string[]) => Promise<number> {
  return async (args) => {
    try {
      return await body(args);
    } catch (error) {
      if (error instanceof UsageError) {
        say(command, `${error.message} (see twinstar ${command.split(' ')[0]} --help)`);
        return EXIT.USAGE;
      }
      if (error instanceof NoServerError) {
        say(command, error.message);
        return EXIT.NO_SERVER;
      }
      if (error instanceof InvalidArgumentError) {
        say(command, error.message);
        return EXIT.USAGE;
      }
      if (error instanceof HistoryUnavailableError) {
        say(command, historyLine(error));
        return EXIT.FAILED;
      }
      if (error instanceof TwinstarError) {
        say(command, `${error.message} (${error.code})`);
        return EXIT.FAILED;
      }
      throw error;
    }
  };
}
