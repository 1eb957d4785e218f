/** The `twinstar` command: servers, and a client for people (set, get, del, watch, dump, status). */

const HELP = `Usage: twinstar <command> [options]

Servers:
  server            run one node (--role single|primary|backup); see \`twinstar server --help\`
  pair              run a primary and a backup on one host (what \`npm start\` does);
                    --port N moves the pair to ports N..N+15 (\`twinstar pair --help\`)

Client (each takes --servers tcp://HOST:PORT,tcp://HOST:PORT; default the local pair):
  set KEY VALUE     write a value (--ttl SECONDS for an ephemeral key); prints its sequence
  set KEY -         the same, the value read from stdin as bytes
  get KEY           write the value to stdout as it is (bytes)
  get KEY --prefix  every key under KEY; -w simple|table|json shows each key's revision (SEQ)
                    and the TTL it has left; --keys-only
  set KEY VALUE --create | --if-seq N
                    only if KEY does not exist, or is at sequence N (compare-and-set);
                    --lease ID attaches KEY to a lease
  del KEY           delete a key; prints 1, or 0 if there was none (--if-seq N)
  del PREFIX --prefix
                    delete every key under PREFIX as one change; prints how many
  watch [SUBTREE]   print changes as JSON lines until interrupted (--rev SEQ: from SEQ on)
  lease grant TTL | keep-alive ID | revoke ID | ls
                    leases, as etcdctl's: keys attached to one go when it expires
  dump [SUBTREE]    print the whole map (or a subtree) as JSON
  pub TOPIC DATA    publish an event (--header NAME=VALUE,...); prints its sequence
  sub PATTERN       print events as JSON lines (--group NAME, --from first|new|SEQ, --ack)
  --base64          binary values as base64: set's VALUE, get's, watch's and dump's output

Security:
  keygen NAME       write a CURVE key pair: NAME.key (public) and NAME.key_secret (private)

Operations:
  endpoint health   each server's /healthz, its HTTP port found from its HUGZ (-w table|json)
  endpoint status   each server's role, state, sequence, term, keys and peer (-w table|json)
  status            both nodes of a pair from their /status endpoints (--nodes URL,URL);
                    exits 1 when the pair is unhealthy
  stream ls|info [PREFIX]
                    the event stream per retention rule: events, bytes, sequences, drops
                    (asks the ACTIVE node's HTTP, --nodes URL,URL like status)
  group ls|info [NAME]
                    consumer groups: lag, pending, waiting, redeliveries, dead letters,
                    members (exit 1 when no node is ACTIVE or there is no such group)
  promote           force a node without the complete history to serve (--node URL --force)
  snapshot save FILE
                    back up the pair's map at one sequence, without pausing it (--servers)
  snapshot status FILE
                    check a backup; print its keys, sequence, term, size and hash
  snapshot restore FILE --data-dir DIR
                    write a backup into a new, empty data directory for a node to open

Client commands exit 0 when done, 1 when they failed (no such key, nothing deleted, refused),
2 when no server answered, 3 when a plain CHP write was sent but not confirmed, 128 on bad
usage (as etcdctl). Servers exit 2 on a configuration or bind error, naming it in one line.

Shell:
  completion bash|zsh
                    print a completion script: source <(twinstar completion bash)

Each command has --help. \`twinstar --version\` (or -v) prints the version.
`;

type Command = (args: string[]) => Promise<number>;

/** The exit status of a command whose reader went away: 128 + SIGPIPE, as a shell shows for `cat`. */
export const CLOSED_OUTPUT_STATUS = 141;

/**
 * `twinstar dump | head`: once the reader has gone, a write fails with EPIPE, which Node raises as
 * an 'error' event: the command ended with a stack trace. Now it ends at once and quietly, as cat,
 * etcdctl or redis-cli do (a signal ends them). Servers keep their own handling of their log.
 */
export function endOnClosedOutput(
  stream: Pick<NodeJS.WriteStream, 'on'>,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    exit(CLOSED_OUTPUT_STATUS);
  });
}

/** Every command, loaded when run (completion.ts completes these names). */
export const commands: Record<string, () => Promise<Command>> = {
  server: async () => (await import('./server-command.js')).serverCommand,
  pair: async () => (await import('./server-command.js')).pairCommand,
  set: async () => (await import('./client-commands.js')).clientCommand('set'),
  get: async () => (await import('./get-command.js')).getCommand,
  del: async () => (await import('./client-commands.js')).clientCommand('del'),
  watch: async () => (await import('./client-commands.js')).clientCommand('watch'),
  dump: async () => (await import('./client-commands.js')).clientCommand('dump'),
  lease: async () => (await import('./lease-command.js')).leaseCommand,
  pub: async () => (await import('./event-commands.js')).eventCommand('pub'),
  sub: async () => (await import('./event-commands.js')).eventCommand('sub'),
  keygen: async () => (await import('./keygen-command.js')).keygenCommand,
  endpoint: async () => (await import('./endpoint-command.js')).endpointCommand,
  status: async () => (await import('./status-command.js')).statusCommand,
  stream: async () => (await import('./stream-command.js')).streamCommand,
  group: async () => (await import('./group-command.js')).groupCommand,
  promote: async () => (await import('./promote-command.js')).promoteCommand,
  snapshot: async () => (await import('./snapshot-command.js')).snapshotCommand,
  completion: async () => (await import('./completion.js')).completionCommand,
};

export async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`${(await import('../version.js')).packageVersion()}\n`);
    return;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`twinstar: unknown command ${JSON.stringify(name)}\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  if (name !== 'server' && name !== 'pair') endOnClosedOutput(process.stdout);
  const code = await (await load())(args);
  process.exitCode = code;
}
