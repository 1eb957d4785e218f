/**
 * `twinstar completion`: the scripts parse in their shell and complete what a user types (run
 * through bash, and zsh with its completion builtins stubbed), every command is completed, and
 * every flag offered is one the command's --help documents (so the lists stay true).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { commands } from '../../../src/cli/index.js';
import { commandSpecs, completionCommand, script } from '../../../src/cli/completion.js';
import { requireTool } from '../../helpers/index.js';

/** What `run` writes to stdout (the commands print their help there). */
async function stdoutOf(run: () => Promise<unknown>): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  let text = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    text += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await run();
  } finally {
    process.stdout.write = write;
  }
  return text;
}

function shell(command: 'bash' | 'zsh', code: string): string {
  const r = spawnSync(command, ['-c', code], { encoding: 'utf8', timeout: 10_000 });
  expect(r.status, `${command}: ${r.stderr}`).to.equal(0);
  return r.stdout;
}

describe('cli completion', () => {
  it('completes every command there is, and only those', () => {
    expect(Object.keys(commandSpecs()).sort()).to.deep.equal(Object.keys(commands).sort());
  });

  it("every flag it offers is in that command's --help (server and pair: from the schema)", async function () {
    this.timeout(20_000);
    for (const [name, spec] of Object.entries(commandSpecs())) {
      if (name === 'server' || name === 'pair') continue;
      const help = await stdoutOf(async () => (await commands[name]!())(['--help']));
      for (const flag of spec.flags)
        expect(help, `${name} --help should document ${flag}`).to.match(
          new RegExp(`(^|[\\s,\\[])${flag}\\b`),
        );
      for (const sub of spec.subs ?? []) expect(help, `${name} --help should name ${sub}`).to.contain(sub);
    }
    const server = commandSpecs().server!.flags;
    expect(server).to.include.members(['--port', '--http-port', '--role', '--data-dir', '--config']);
    expect(commandSpecs().pair!.flags).to.not.include('--role');
  });

  describe('bash', () => {
    const complete = (words: string[]) => {
      const array = words.map((w) => `'${w}'`).join(' ');
      return shell(
        'bash',
        `${script('bash')}\nCOMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _twinstar; echo "\${COMPREPLY[*]}"`,
      ).trim();
    };

    it('parses (bash -n) and registers for twinstar', () => {
      shell('bash', `set -n\n${script('bash')}`);
      expect(shell('bash', `${script('bash')}\ncomplete -p twinstar`)).to.contain('-F _twinstar twinstar');
    });

    it('completes commands, subcommands, flags and flag values', () => {
      expect(complete(['twinstar', 'en'])).to.equal('endpoint');
      expect(complete(['twinstar', '--v'])).to.equal('--version');
      expect(complete(['twinstar', 'endpoint', ''])).to.equal('health status');
      expect(complete(['twinstar', 'completion', ''])).to.equal('bash zsh');
      expect(complete(['twinstar', 'get', '/a', '--k'])).to.equal('--key-file --keys-only');
      expect(complete(['twinstar', 'get', '/a', '-w', ''])).to.equal('simple table json');
      expect(complete(['twinstar', 'set', '/a', 'v', '--mode', 'n'])).to.equal('native');
      expect(complete(['twinstar', 'server', '--role', 'b'])).to.equal('backup');
      expect(complete(['twinstar', 'server', '--http-p'])).to.equal('--http-port');
    });

    it('offers nothing for an unknown command, and no subcommand after the first', () => {
      expect(complete(['twinstar', 'nope', '--'])).to.equal('');
      expect(complete(['twinstar', 'endpoint', 'health', 'h'])).to.equal('');
    });
  });

  describe('zsh', () => {
    before(function () {
      requireTool(this, 'zsh', ['--version'], 'apt-get install zsh');
    });

    // compadd and _describe are builtins of the completion system: stubbed, they print what
    // they were given, so the script's choices can be read outside an interactive shell.
    const complete = (words: string[]) =>
      shell(
        'zsh',
        [
          'compadd() { if [[ $1 == -a ]]; then print -r -- ${(P)2}; else [[ $1 == -- ]] && shift; print -r -- "$@"; fi }',
          '_describe() { print -r -- ${(P)4%%:*} }',
          '_files() { print -r -- FILES }',
          'compdef() { print -r -- "compdef $*" }',
          script('zsh'),
          `words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _twinstar`,
        ].join('\n'),
      )
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('compdef'));

    it('parses (zsh -n) and registers with compdef when sourced', () => {
      shell('zsh', `setopt no_exec\n${script('zsh')}`);
      expect(shell('zsh', `compdef() { print -r -- "compdef $*" }\n${script('zsh')}`).trim()).to.equal(
        'compdef _twinstar twinstar',
      );
    });

    it('completes commands, subcommands, flags and flag values', () => {
      expect(complete(['twinstar', ''])[0])
        .to.contain('endpoint')
        .and.to.contain('completion');
      expect(complete(['twinstar', 'endpoint', ''])).to.deep.equal(['health status']);
      expect(complete(['twinstar', 'get', '/a', '-w', ''])).to.deep.equal(['simple table json']);
      expect(complete(['twinstar', 'get', '/a', '--'])[0])
        .to.contain('--prefix')
        .and.to.contain('--keys-only');
      expect(complete(['twinstar', 'snapshot', 'save', ''])).to.deep.equal(['FILES']);
      expect(complete(['twinstar', 'set', '--key-file', ''])).to.deep.equal(['FILES']);
    });
  });

  it('completion with no shell or an unknown one exits 128; --help exits 0', async () => {
    const write = process.stderr.write.bind(process.stderr);
    let err = '';
    process.stderr.write = ((c: string) => ((err += c), true)) as typeof process.stderr.write;
    try {
      expect(await completionCommand([])).to.equal(128);
      expect(await completionCommand(['fish'])).to.equal(128);
      expect(await completionCommand(['bash', 'zsh'])).to.equal(128);
    } finally {
      process.stderr.write = write;
    }
    expect(err.trim().split('\n')).to.have.length(3);
    expect(await stdoutOf(() => completionCommand(['--help']))).to.contain('Usage: twinstar completion');
  });
});
