/**
 * `twinstar completion bash|zsh`: a completion script for the shell, printed to stdout, to be
 * sourced (`source <(twinstar completion bash)`) or installed (README, "Command line").
 * It completes command names, subcommands, each command's flags, and the values of the flags that
 * take a fixed set (-w, --mode, --role, ...) or a file. The server's flags come from the config
 * schema, so they stay true; the others are listed here and a unit test checks each against the
 * command's --help. `script()` is pure.
 */
import { describeSettings } from '../config/index.js';
import { parseCommandLine, UsageError } from './args.js';
import { EXIT } from './client-commands.js';

interface Spec {
  readonly about: string;
  readonly subs?: readonly string[];
  readonly flags: readonly string[];
}

const CONNECTION = ['--servers', '--timeout', '--mode', '--key-file', '--server-key', '--help'];
const BUS = ['--servers', '--timeout', '--key-file', '--server-key', '--help'];
const HTTP = ['--nodes', '--json', '--help'];
/** The flags `pair` sets for each node itself. */
const PAIR_SETS = ['--role', '--name', '--peer', '--peer-heartbeat'];

function serverFlags(): string[] {
  return [...describeSettings().map((s) => s.flag), '--config', '--help'];
}

/** Every command, what it is for, its subcommands and its flags. */
export function commandSpecs(): Record<string, Spec> {
  const server = serverFlags();
  return {
    server: { about: 'run one node', flags: server },
    pair: {
      about: 'run a primary and a backup on one host',
      flags: server.filter((f) => !PAIR_SETS.includes(f)),
    },
    set: {
      about: 'write a value',
      flags: [...CONNECTION, '--ttl', '--base64', '--create', '--if-seq', '--lease'],
    },
    get: {
      about: 'read a key, or the keys under a prefix',
      flags: [...CONNECTION, '--base64', '--prefix', '--keys-only', '-w', '--write-out'],
    },
    del: {
      about: 'delete a key, or the keys under a prefix',
      flags: [...CONNECTION, '--prefix', '--if-seq'],
    },
    watch: {
      about: 'print changes as JSON lines',
      flags: [...CONNECTION, '--no-initial', '--rev', '--base64'],
    },
    lease: {
      about: 'grant, keep alive, revoke and list leases',
      subs: ['grant', 'keep-alive', 'revoke', 'ls'],
      flags: [...CONNECTION, '--once', '-w', '--write-out'],
    },
    dump: { about: 'print the map as JSON', flags: [...CONNECTION, '--base64'] },
    pub: { about: 'publish an event', flags: [...BUS, '--header', '--base64'] },
    sub: { about: 'print events', flags: [...BUS, '--group', '--from', '--ack', '--count', '--base64'] },
    keygen: { about: 'write a CURVE key pair', flags: ['--force'] },
    endpoint: {
      about: "each server's health or status",
      subs: ['health', 'status'],
      flags: [
        '--servers',
        '--nodes',
        '-w',
        '--write-out',
        '--timeout',
        '--key-file',
        '--server-key',
        '--help',
      ],
    },
    status: { about: 'both nodes of a pair and a verdict', flags: HTTP },
    stream: { about: 'the event stream per retention rule', subs: ['ls', 'info'], flags: HTTP },
    group: { about: 'consumer groups', subs: ['ls', 'info'], flags: HTTP },
    promote: { about: 'force a node to serve', flags: ['--node', '--force', '--help'] },
    snapshot: {
      about: 'back up and restore the map',
      subs: ['save', 'status', 'restore'],
      flags: [...BUS, '--data-dir', '--pair-id', '--json'],
    },
    completion: { about: 'print a shell completion script', subs: ['bash', 'zsh'], flags: ['--help'] },
  };
}

/** Flags whose value is one of a few words. */
const VALUES: Record<string, readonly string[]> = {
  '-w': ['simple', 'table', 'json'],
  '--write-out': ['simple', 'table', 'json'],
  '--mode': ['auto', 'native', 'chp'],
  '--role': ['single', 'primary', 'backup'],
  '--fsync': ['always', 'batch', 'off'],
  '--log-level': ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  '--from': ['first', 'new'],
};
/** Flags whose value is a file or directory. */
const FILES = ['--key-file', '--server-key', '--peer-key-file', '--data-dir', '--config', '--clients-file'];

const words = (list: readonly string[]) => list.join(' ');

function bash(specs: Record<string, Spec>): string {
  const cases = Object.entries(specs)
    .map(([name, s]) => `    ${name}) subs="${words(s.subs ?? [])}"; flags="${words(s.flags)}" ;;`)
    .join('\n');
  const values = Object.entries(VALUES)
    .map(([flag, list]) => `    ${flag}) COMPREPLY=($(compgen -W "${words(list)}" -- "$cur")); return ;;`)
    .join('\n');
  return `# bash completion for twinstar: source <(twinstar completion bash)
_twinstar() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${words(Object.keys(specs))} --help --version" -- "$cur"))
    return
  fi
  local subs="" flags=""
  case "\${COMP_WORDS[1]}" in
${cases}
    *) return ;;
  esac
  case "$prev" in
${values}
    ${FILES.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ $COMP_CWORD -eq 2 && -n "$subs" && "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  elif [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
}
complete -o default -F _twinstar twinstar
`;
}

function zsh(specs: Record<string, Spec>): string {
  const described = Object.entries(specs)
    .map(([name, s]) => `    '${name}:${s.about.replace(/'/g, "'\\''")}'`)
    .join('\n');
  const cases = Object.entries(specs)
    .map(([name, s]) => `    ${name}) subs=(${words(s.subs ?? [])}); flags=(${words(s.flags)}) ;;`)
    .join('\n');
  const values = Object.entries(VALUES)
    .map(([flag, list]) => `    ${flag}) compadd -- ${words(list)}; return ;;`)
    .join('\n');
  return `#compdef twinstar
# zsh completion for twinstar: source <(twinstar completion zsh), or save it as _twinstar in $fpath
_twinstar() {
  local -a commands subs flags
  commands=(
${described}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'twinstar command' commands
    compadd -- --help --version
    return
  fi
  case \${words[2]} in
${cases}
    *) return 1 ;;
  esac
  case \${words[CURRENT-1]} in
${values}
    ${FILES.join('|')}) _files; return ;;
  esac
  if (( CURRENT == 3 && \${#subs} )) && [[ \${words[CURRENT]} != -* ]]; then
    compadd -a subs
  elif [[ \${words[CURRENT]} == -* ]]; then
    compadd -a flags
  else
    _files
  fi
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _twinstar "$@"
else
  compdef _twinstar twinstar
fi
`;
}

/** The completion script for `shell`. */
export function script(shell: 'bash' | 'zsh', specs = commandSpecs()): string {
  return shell === 'bash' ? bash(specs) : zsh(specs);
}

export const COMPLETION_HELP = `Usage: twinstar completion bash|zsh

Prints a completion script for the shell: commands, subcommands, flags and their values.
  bash   source <(twinstar completion bash)      (or save it in /etc/bash_completion.d/)
  zsh    source <(twinstar completion zsh)       (or save it as _twinstar in a $fpath folder)
  -h, --help   this text

Exit status: 0 done, 128 bad usage.
`;

export async function completionCommand(args: string[]): Promise<number> {
  try {
    const { values, positionals } = parseCommandLine(args, { help: { type: 'boolean', short: 'h' } });
    if (values.help) {
      process.stdout.write(COMPLETION_HELP);
      return EXIT.OK;
    }
    const [shell, ...rest] = positionals;
    if ((shell !== 'bash' && shell !== 'zsh') || rest.length > 0)
      throw new UsageError(
        `completion takes bash or zsh${shell === undefined ? '' : `, not ${positionals.join(' ')}`}`,
      );
    process.stdout.write(script(shell));
    return EXIT.OK;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`twinstar completion: ${error.message} (see twinstar completion --help)\n`);
    return EXIT.USAGE;
  }
}
