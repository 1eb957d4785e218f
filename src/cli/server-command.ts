/**
 * `twinstar server` runs one node until SIGINT/SIGTERM; `twinstar pair` runs a primary and a
 * backup as two child processes on loopback (what `npm start` does) and stops both on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeSettings, loadConfig, ROLE_DEFAULTS } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { startServer } from '../server.js';

export const SERVER_HELP = `Usage: twinstar server [options]

Runs one twinstar node. Every option also has an environment variable, and
TWINSTAR_CONFIG (or --config FILE) names a JSON file with the same settings.

Options:
${describeSettings()
  .map(
    (s) =>
      `  ${s.flag.padEnd(24)} ${s.doc}\n  ${''.padEnd(24)} env ${s.env}, default ${JSON.stringify(s.default)}`,
  )
  .join('\n')}
  --config FILE            JSON configuration file (env TWINSTAR_CONFIG)
`;

export async function serverCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(SERVER_HELP);
    return 0;
  }
  let file: string | undefined;
  const rest = [...args];
  const at = rest.indexOf('--config');
  if (at !== -1) {
    file = rest[at + 1];
    rest.splice(at, 2);
  }
  let config;
  try {
    config = loadConfig({ args: rest, file });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`twinstar: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  let running;
  try {
    running = await startServer(config);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`twinstar: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`twinstar: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
  const server = running;
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      server.log.info({ signal }, 'stopping');
      void server.close().then(() => resolve(0));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

export async function pairCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`Usage: twinstar pair [server options for both nodes]

Starts a primary and a backup on 127.0.0.1 as two processes (what \`npm start\` runs):
  primary  snapshot tcp://127.0.0.1:5556  publisher :5557  collector :5558  peer :5003  http :9556
  backup   snapshot tcp://127.0.0.1:5566  publisher :5567  collector :5568  peer :5004  http :9566
Ctrl-C stops both.
`);
    return 0;
  }
  const bin = fileURLToPath(new URL('../../../bin/twinstar.js', import.meta.url));
  const children: ChildProcess[] = (['primary', 'backup'] as const).map((role) =>
    spawn(process.execPath, [bin, 'server', '--role', role, ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const p = ROLE_DEFAULTS.primary;
  const b = ROLE_DEFAULTS.backup;
  process.stdout.write(
    [
      'twinstar pair on 127.0.0.1 (Ctrl-C stops both):',
      `  primary  snapshot tcp://127.0.0.1:${p.port}  publisher :${p.port + 1}  collector :${p.port + 2}  metrics http://127.0.0.1:${p.httpPort}/metrics`,
      `  backup   snapshot tcp://127.0.0.1:${b.port}  publisher :${b.port + 1}  collector :${b.port + 2}  metrics http://127.0.0.1:${b.httpPort}/metrics`,
      `  try:     npx twinstar set /demo/hello world && npx twinstar watch /demo/`,
      '',
    ].join('\n'),
  );
  return new Promise<number>((resolve) => {
    let exited = 0;
    let worst = 0;
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    };
    for (const child of children) {
      child.on('exit', (code) => {
        worst = Math.max(worst, code ?? 1);
        if (++exited === children.length) resolve(stopping ? 0 : worst);
        else if (!stopping && code !== 0) stop(); // one failed to start: take the other down too
      });
    }
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
