/**
 * The client side of the `twinstar` command: set, get, del, watch and dump, in the spirit of
 * etcdctl and `nats kv`. Every command takes `--servers` (or TWINSTAR_SERVERS), defaulting to the
 * local pair that `npm start` runs. Output goes to stdout, diagnostics to stderr; exit code 0 on
 * success, 1 on failure (for example a key that does not exist), 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { connect, type Client, type ClientOptions, type Mode } from '../client/index.js';
import { TwinstarError } from '../errors.js';

const DEFAULT_SERVERS = 'tcp://127.0.0.1:5556,tcp://127.0.0.1:5566';

const COMMON = `Options:
  --servers LIST     comma-separated snapshot endpoints (env TWINSTAR_SERVERS; default ${DEFAULT_SERVERS})
  --timeout MS       how long to wait for the active server (default 5000)
  --mode MODE        auto, native or chp (plain RFC 12 server) (default auto)
  --key-file FILE    this client's CURVE secret key file, for servers run with --curve
                     (env TWINSTAR_KEY_FILE)
  --server-key FILES the servers' public key files, one for all or comma-separated per
                     server (env TWINSTAR_SERVER_KEY)
  --help             this text`;

const HELP: Record<string, string> = {
  set: `Usage: twinstar set KEY VALUE [--ttl SECONDS]\n\nWrites VALUE and prints its sequence number once the pair has acknowledged it.\n  --ttl SECONDS      the key expires after this many seconds\n${COMMON}\n`,
  get: `Usage: twinstar get KEY\n\nPrints the value of KEY; exits 1 if there is none.\n${COMMON}\n`,
  del: `Usage: twinstar del KEY\n\nDeletes KEY and prints the sequence number of the delete.\n${COMMON}\n`,
  watch: `Usage: twinstar watch [SUBTREE] [--no-initial]\n\nPrints the current values under SUBTREE, then every change, as JSON lines\n({"key","value","seq","deleted"}), until interrupted.\n  --no-initial       only changes from now on\n${COMMON}\n`,
  dump: `Usage: twinstar dump [SUBTREE]\n\nPrints every key under SUBTREE (default: all) as one JSON object.\n${COMMON}\n`,
};

class UsageError extends Error {}

async function withClient<T>(
  values: Record<string, unknown>,
  subtree: string,
  run: (client: Client) => Promise<T>,
): Promise<T> {
  const servers = String(values.servers ?? process.env.TWINSTAR_SERVERS ?? DEFAULT_SERVERS)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const timeout = Number(values.timeout ?? 5000);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new UsageError('--timeout must be a positive number of ms');
  const keyFile = (values['key-file'] as string | undefined) ?? process.env.TWINSTAR_KEY_FILE;
  const serverKey = (values['server-key'] as string | undefined) ?? process.env.TWINSTAR_SERVER_KEY;
  if ((keyFile === undefined) !== (serverKey === undefined))
    throw new UsageError('--key-file and --server-key go together');
  const options: ClientOptions = {
    servers,
    subtree,
    mode: (values.mode as Mode | undefined) ?? 'auto',
    connectTimeoutMs: timeout,
    writeTimeoutMs: timeout,
    ...(keyFile && serverKey ? { curve: { keyFile, serverKeyFile: serverKey.split(',') } } : {}),
  };
  const client = await connect(options);
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      servers: { type: 'string' },
      timeout: { type: 'string' },
      mode: { type: 'string' },
      'key-file': { type: 'string' },
      'server-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ttl: { type: 'string' },
      'no-initial': { type: 'boolean' },
    },
  });
}

function jsonValue(value: Buffer | undefined): string | null {
  return value === undefined ? null : value.toString();
}

async function run(command: string, args: string[]): Promise<number> {
  const { values, positionals } = parse(args);
  if (values.ttl !== undefined && command !== 'set') throw new UsageError('--ttl goes with set only');
  if (values['no-initial'] && command !== 'watch') throw new UsageError('--no-initial goes with watch only');
  if (values.help) {
    process.stdout.write(HELP[command]!);
    return 0;
  }
  switch (command) {
    case 'set': {
      if (positionals.length !== 2) throw new UsageError('set takes KEY VALUE');
      const [key, value] = positionals as [string, string];
      const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
      if (ttl !== undefined && !(ttl >= 0)) throw new UsageError('--ttl must be a number of seconds');
      return withClient(values, key, async (client) => {
        const seq = await client.set(key, value, { ttl });
        if (client.mode === 'chp')
          process.stderr.write('twinstar: plain CHP server: the write was sent but cannot be acknowledged\n');
        if (client.degraded)
          process.stderr.write(
            'twinstar: warning: the pair is degraded (no passive): acknowledged by the active alone\n',
          );
        process.stdout.write(`${seq}\n`);
        return 0;
      });
    }
    case 'get': {
      if (positionals.length !== 1) throw new UsageError('get takes KEY');
      const key = positionals[0]!;
      return withClient(values, key, async (client) => {
        const value = client.get(key);
        if (value === undefined) {
          process.stderr.write(`twinstar: key not found: ${key}\n`);
          return 1;
        }
        process.stdout.write(`${value.toString()}\n`);
        return 0;
      });
    }
    case 'del': {
      if (positionals.length !== 1) throw new UsageError('del takes KEY');
      const key = positionals[0]!;
      return withClient(values, key, async (client) => {
        process.stdout.write(`${await client.delete(key)}\n`);
        return 0;
      });
    }
    case 'dump': {
      if (positionals.length > 1) throw new UsageError('dump takes at most one SUBTREE');
      const subtree = positionals[0] ?? '';
      return withClient(values, subtree, async (client) => {
        const entries: Record<string, string> = {};
        for (const [key, value] of [...client.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
          entries[key] = value.toString();
        process.stdout.write(
          `${JSON.stringify({ sequence: client.sequence, server: client.server, entries }, null, 2)}\n`,
        );
        return 0;
      });
    }
    case 'watch': {
      if (positionals.length > 1) throw new UsageError('watch takes at most one SUBTREE');
      const subtree = positionals[0] ?? '';
      return withClient(values, subtree, async (client) => {
        client.on('failover', (info) =>
          process.stderr.write(`twinstar: failover to ${info.to} at sequence ${info.sequence}\n`),
        );
        const stream = client.watch(subtree, { initial: !values['no-initial'] });
        const stop = () => void stream.return?.();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        for await (const u of stream) {
          process.stdout.write(
            `${JSON.stringify({ key: u.key, value: jsonValue(u.value), seq: u.seq, deleted: u.deleted })}\n`,
          );
        }
        return 0;
      });
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

export function clientCommand(command: string): (args: string[]) => Promise<number> {
  return async (args) => {
    try {
      return await run(command, args);
    } catch (error) {
      if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`twinstar ${command}: ${(error as Error).message}\n\n${HELP[command]}`);
        return 2;
      }
      if (error instanceof TwinstarError) {
        process.stderr.write(`twinstar ${command}: ${error.message} (${error.code})\n`);
        return 1;
      }
      throw error;
    }
  };
}
