/** The `twinstar` command: servers, and a client for people (set, get, del, watch, dump, status). */
import { clientCommand } from './client-commands.js';
import { pairCommand, serverCommand } from './server-command.js';

const HELP = `Usage: twinstar <command> [options]

Servers:
  server            run one node (--role single|primary|backup); see \`twinstar server --help\`
  pair              run a primary and a backup on loopback (what \`npm start\` does)

Client (each takes --servers tcp://HOST:PORT,tcp://HOST:PORT; default the local pair):
  set KEY VALUE     write a value (--ttl SECONDS for an ephemeral key); prints its sequence
  get KEY           print a value
  del KEY           delete a key
  watch [SUBTREE]   print changes as JSON lines until interrupted
  dump [SUBTREE]    print the whole map (or a subtree) as JSON

Security:
  keygen NAME       write a CURVE key pair: NAME.key (public) and NAME.key_secret (private)

Operations:
  status            both nodes of a pair from their /status endpoints (--nodes URL,URL);
                    exits 1 when the pair is unhealthy
  promote           force a node without the complete history to serve (--node URL --force)

Each command has --help.
`;

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  server: async () => serverCommand,
  pair: async () => pairCommand,
  set: async () => clientCommand('set'),
  get: async () => clientCommand('get'),
  del: async () => clientCommand('del'),
  watch: async () => clientCommand('watch'),
  dump: async () => clientCommand('dump'),
  keygen: async () => (await import('./keygen-command.js')).keygenCommand,
  status: async () => (await import('./status-command.js')).statusCommand,
  promote: async () => (await import('./promote-command.js')).promoteCommand,
};

export async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`twinstar: unknown command ${JSON.stringify(name)}\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  const code = await (await load())(args);
  process.exitCode = code;
}
