/**
 * `twinstar server` runs one node until SIGINT/SIGTERM; `twinstar pair` runs a primary and a
 * backup as two child processes on loopback (what `npm start` does) and stops both on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeSettings, loadConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { startServer } from '../server.js';
import { nodeArgs, pairLayout, PairUsageError, type PairLayout } from './pair-layout.js';

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

export const PAIR_HELP = `Usage: twinstar pair [--port N] [--heartbeat-port H] [--http-port M] [server options]

Starts a primary and a backup on one host as two processes (what \`npm start\` runs).
Other server options (see \`twinstar server --help\`) go to both nodes. Ports:
  default    primary  snapshot 5556 (publisher 5557, collector 5558, updates 5559)  heartbeat 5003  http 9556
             backup   snapshot 5566 (publisher 5567, collector 5568, updates 5569)  heartbeat 5004  http 9566
  --port N   primary  snapshot N    (N+1, N+2, N+3)                   heartbeat N+4   http N+5
             backup   snapshot N+10 (N+11, N+12, N+13)                heartbeat N+14  http N+15
  --heartbeat-port H  heartbeats on H (primary) and H+1 (backup)
  --http-port M       HTTP on M (primary) and M+10 (backup); 0 picks a free port for each
Data: each node keeps its state in data/primary and data/backup under the working directory;
  --data-dir D        in D/primary and D/backup instead; --memory keeps it in memory only
--role, --name, --peer and --peer-heartbeat are set by pair for each node.
Ctrl-C stops both. If either node fails to start or stops, pair stops the other and exits
with that node's exit code (2: a configuration or bind error, or a refused data dir, named on the
line above).
`;

export async function pairCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(PAIR_HELP);
    return 0;
  }
  let layout: PairLayout;
  try {
    layout = pairLayout(args, process.env);
  } catch (error) {
    if (error instanceof PairUsageError) {
      process.stderr.write(`twinstar pair: ${error.message} (see twinstar pair --help)\n`);
      return 2;
    }
    throw error;
  }
  const bin = fileURLToPath(new URL('../../../bin/twinstar.js', import.meta.url));
  const roles = ['primary', 'backup'] as const;
  const children = roles.map((role) =>
    spawn(process.execPath, [bin, 'server', ...nodeArgs(layout, role)], {
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const line = (role: 'primary' | 'backup') => {
    const n = layout[role];
    const http =
      n.httpPort === 0 ? 'a free port (see its log)' : `http://${layout.peerHost}:${n.httpPort}/metrics`;
    return `  ${role.padEnd(8)} snapshot tcp://${layout.host}:${n.port}  publisher :${n.port + 1}  collector :${n.port + 2}  updates :${n.port + 3}  heartbeat :${n.heartbeatPort}  metrics ${http}`;
  };
  const servers = `tcp://${layout.peerHost}:${layout.primary.port},tcp://${layout.peerHost}:${layout.backup.port}`;
  const defaultServers =
    layout.primary.port === 5556 && layout.backup.port === 5566 && layout.peerHost === '127.0.0.1';
  const flag = defaultServers ? '' : ` --servers ${servers}`;
  const httpUrls = [layout.primary, layout.backup].map((n) => `http://${layout.peerHost}:${n.httpPort}`);
  const nodes =
    layout.primary.httpPort === 9556 && layout.backup.httpPort === 9566 && layout.peerHost === '127.0.0.1'
      ? ''
      : layout.primary.httpPort === 0
        ? ' --nodes URL,URL (the nodes log their metrics URLs)'
        : ` --nodes ${httpUrls.join(',')}`;
  process.stdout.write(
    [
      `twinstar pair on ${layout.host} (Ctrl-C stops both):`,
      line('primary'),
      line('backup'),
      `  try:     npx twinstar set /demo/hello world${flag} && npx twinstar watch /demo/${flag}`,
      `  health:  npx twinstar status${nodes}`,
      '',
    ].join('\n'),
  );
  return new Promise<number>((resolve) => {
    let exited = 0;
    let result = 0;
    /** a signal asked us to stop: the nodes' exit codes then say how they stopped, not failure */
    let stopping = false;
    let failed = false;
    const stopAll = () => {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
    const stop = () => {
      stopping = true;
      stopAll();
    };
    children.forEach((child, i) => {
      child.on('exit', (code, signal) => {
        if (!stopping && !failed && signal !== null) {
          // Killed from outside (kill -9, the OOM killer): that is a failover to watch, not a
          // reason to stop the survivor, which takes over as the pair is designed to.
          process.stderr.write(
            `twinstar pair: the ${roles[i]} was killed by ${signal}; the ${roles[1 - i]} keeps serving (Ctrl-C stops it)\n`,
          );
          result = 1;
        } else if (!stopping && !failed) {
          // A node that exits on its own (it failed to start: a port in use, bad settings) takes
          // the pair down: half a pair on the advertised ports is not what the user asked for.
          failed = true;
          result = code !== null && code !== 0 ? code : 1;
          const other = roles[1 - i]!;
          process.stderr.write(
            `twinstar pair: the ${roles[i]} ${code !== null ? `exited with code ${code}` : `was killed by ${signal}`}; stopping the ${other}\n`,
          );
          stopAll();
        }
        if (++exited === children.length) resolve(result);
      });
    });
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
