/**
 * Helpers for the container tests: commands with a time limit, bounded polling, Docker health and
 * resource queries, and a docker-compose project handle. Everything here waits for a condition
 * with a deadline; nothing sleeps for a fixed time hoping that something happened meanwhile.
 *
 * The compose file is driven with the `docker-compose` command (Debian's v1.29): testcontainers'
 * own compose support needs the v2 `docker compose` plugin, which this machine does not have.
 */
import { freePorts, portIsFree } from '../helpers/index.js';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const COMPOSE_FILE = fileURLToPath(new URL('../../docker-compose.ha.yml', import.meta.url));

export const IMAGES = {
  app: process.env.TWINSTAR_IMAGE ?? 'twinstar:local',
  prometheus: process.env.TWINSTAR_PROMETHEUS_IMAGE ?? 'twinstar-prometheus:local',
};

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** kill the command (SIGKILL) and reject after this long; default 60 s */
  timeoutMs?: number;
  cwd?: string;
  /** added to process.env */
  env?: NodeJS.ProcessEnv;
  /** resolve with the result instead of rejecting when the command exits non-zero */
  allowFailure?: boolean;
}

/** Runs a command (no shell) and resolves with its output once it exits. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd ?? REPO_ROOT,
        env: { ...process.env, ...options.env },
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        const shown = [command, ...args].join(' ');
        if (error && (error as { killed?: boolean }).killed) {
          reject(new Error(`\`${shown}\` did not finish within ${timeoutMs} ms\n${stderr}`));
          return;
        }
        if (error && typeof error.code !== 'number') {
          reject(new Error(`\`${shown}\` could not run: ${error.message}`)); // e.g. ENOENT
          return;
        }
        const code = error ? (error.code as unknown as number) : 0;
        if (code !== 0 && !options.allowFailure) {
          reject(new Error(`\`${shown}\` exited with ${code}\n${stderr || stdout}`));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface PollOptions {
  timeoutMs: number;
  /** pause between checks; default 250 ms */
  intervalMs?: number;
  /** named in the timeout error */
  what: string;
}

/**
 * Calls `check` until it returns a truthy value, and resolves with that value; rejects after
 * `timeoutMs`, naming `what` and the last thing `check` returned or threw (via `describe`).
 */
export async function poll<T>(
  check: () => T | Promise<T>,
  options: PollOptions & { describe?: (last: T | undefined) => string },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 250;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await check();
      lastError = undefined;
      if (last) return last as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail =
        lastError !== undefined ? String(lastError) : (options.describe?.(last) ?? JSON.stringify(last));
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}; last: ${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** HTTP status of a GET, or 0 when nothing answers within `timeoutMs`. */
export async function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Parsed JSON of a GET that must answer 200. */
export async function httpJson<T>(url: string, timeoutMs = 2000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** True when a Docker engine answers. */
export async function dockerAvailable(): Promise<boolean> {
  const result = await run('docker', ['info', '--format', '{{.ServerVersion}}'], {
    timeoutMs: 15_000,
    allowFailure: true,
  }).catch(() => undefined);
  return result?.code === 0;
}

export async function imageExists(image: string): Promise<boolean> {
  const result = await run('docker', ['image', 'inspect', image], { timeoutMs: 15_000, allowFailure: true });
  return result.code === 0;
}

/**
 * Fails with a message saying what to run when the engine or an image is missing, instead of
 * letting compose try to pull from a registry that is not there.
 */
export async function requireDocker(images: string[]): Promise<void> {
  if (!(await dockerAvailable())) {
    throw new Error('no Docker engine answers: run scripts/docker/start-engine.sh (as root) first');
  }
  for (const image of images) {
    if (!(await imageExists(image)))
      throw new Error(`image ${image} is missing: run scripts/docker/build-images.sh first`);
  }
}

/**
 * What docker-compose.ha.yml needs before `up`: the engine, the app and Prometheus images, and its
 * published host ports free (it publishes fixed ones).
 */
export async function requireComposeHost(publishedPorts: readonly number[]): Promise<void> {
  await requireDocker([IMAGES.app, IMAGES.prometheus]);
  for (const port of publishedPorts) {
    if (!(await hostPortFree(port)))
      throw new Error(`host port 127.0.0.1:${port} is in use; the compose file publishes it`);
  }
}

/** A container's health status: starting, healthy, unhealthy, or none (no health check). */
export async function containerHealth(id: string): Promise<string> {
  const { stdout } = await run(
    'docker',
    ['inspect', '--format', '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}', id],
    {
      timeoutMs: 15_000,
    },
  );
  return stdout.trim();
}

/**
 * Waits until every container reports `healthy`. An `unhealthy` one is not a failure yet (its
 * restart policy may bring it back); the timeout error lists the last statuses seen.
 */
export async function waitHealthy(ids: string[], timeoutMs: number): Promise<void> {
  let statuses: string[] = [];
  await poll(
    async () => {
      statuses = await Promise.all(ids.map((id) => containerHealth(id)));
      return statuses.every((s) => s === 'healthy');
    },
    {
      timeoutMs,
      intervalMs: 500,
      what: `containers ${ids.map((id) => id.slice(0, 12)).join(', ')} to be healthy`,
      describe: () => statuses.join(', '),
    },
  );
}

/** True if nothing on 127.0.0.1 listens on `port` (so that publishing it can succeed). */
export const hostPortFree = portIsFree;

/** A compose project name no other run uses: lower-case letters and digits only. */
export function uniqueProject(prefix: string): string {
  return `${prefix}${process.pid}${Date.now().toString(36)}`.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** What Docker still holds for a compose project (by the labels compose puts on everything). */
export interface ProjectResources {
  containers: string[];
  networks: string[];
  volumes: string[];
}

/** One docker-compose project of a compose file, driven with the `docker-compose` command. */
export class ComposeProject {
  constructor(
    readonly project: string,
    readonly file: string = COMPOSE_FILE,
    /** environment for compose's `${VAR}` substitution */
    readonly env: NodeJS.ProcessEnv = {},
  ) {}

  compose(args: string[], options: RunOptions = {}): Promise<RunResult> {
    return run('docker-compose', ['-f', this.file, '-p', this.project, ...args], {
      timeoutMs: 120_000,
      ...options,
      env: { ...this.env, ...options.env },
    });
  }

  async up(): Promise<void> {
    await this.compose(['up', '-d', '--no-build'], { timeoutMs: 180_000 });
  }

  /** `down -v`: containers, networks and the project's named volumes. Safe to call twice. */
  async down(): Promise<RunResult> {
    return this.compose(['down', '-v', '--remove-orphans', '--timeout', '10'], { timeoutMs: 120_000 });
  }

  /** The container id of a service (its single replica). */
  async containerId(service: string): Promise<string> {
    const { stdout } = await this.compose(['ps', '-q', service], { timeoutMs: 30_000 });
    const id = stdout.trim().split('\n').filter(Boolean)[0];
    if (!id) throw new Error(`service ${service} of project ${this.project} has no container`);
    return id;
  }

  async logs(tail = 50): Promise<string> {
    const { stdout, stderr } = await this.compose(['logs', '--no-color', '--tail', String(tail)], {
      timeoutMs: 30_000,
      allowFailure: true,
    });
    return stdout + stderr;
  }

  async resources(): Promise<ProjectResources> {
    const label = `label=com.docker.compose.project=${this.project}`;
    const list = async (args: string[]) =>
      (await run('docker', args, { timeoutMs: 15_000 })).stdout
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean);
    const [containers, networks, volumes] = await Promise.all([
      list(['ps', '-a', '--format', '{{.Names}}', '--filter', label]),
      list(['network', 'ls', '--format', '{{.Name}}', '--filter', label]),
      list(['volume', 'ls', '--format', '{{.Name}}', '--filter', label]),
    ]);
    // Compose v1 names its resources PROJECT_NAME; catch any that were created without labels.
    const named = await list(['network', 'ls', '--format', '{{.Name}}', '--filter', `name=${this.project}_`]);
    return { containers, networks: [...new Set([...networks, ...named])], volumes };
  }
}

// ------------------------------------------------------------------------------------------------
// Fault-injection helpers (test/containers/faults.test.ts): host ports, `docker` commands, cleanup.

/** `docker ARGS`, with a time limit (default 60 s). */
export function docker(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run('docker', args, { timeoutMs: 60_000, ...options });
}

/**
 * testcontainers settings this machine needs (see docs/deploy.md and .ci/run): no reaper (its
 * image cannot be pulled) and mapped ports reached over loopback. Kept if the caller set them.
 */
export function configureTestcontainers(): void {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
}

/**
 * The first of `count` consecutive ports on 127.0.0.1 that are free right now (a node's client
 * ports P..P+3 must be consecutive on the host too: clients derive P+1, P+2 and P+3 from P).
 */
export const freeHostPortRange = freePorts;

/** The last lines of a container's output (stdout and stderr), or why they could not be read. */
export async function containerLogs(id: string, tail = 60): Promise<string> {
  const result = await docker(['logs', '--tail', String(tail), id], {
    timeoutMs: 15_000,
    allowFailure: true,
  }).catch((error: unknown) => ({ code: -1, stdout: '', stderr: String(error) }));
  return result.stdout + result.stderr;
}

/** A container's address on one network ('' when it is not attached to it). */
export async function containerIp(id: string, network: string): Promise<string> {
  const { stdout } = await docker(
    ['inspect', '--format', `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}}{{end}}`, id],
    { timeoutMs: 15_000 },
  );
  return stdout.trim();
}

/**
 * Removes containers (running, paused or stopped) and then networks, ignoring ones already gone.
 * Paused containers are unpaused first, so that removal never depends on the engine killing a
 * frozen process. Resolves with the errors it met (empty when everything is gone).
 */
export async function removeDockerResources(containers: string[], networks: string[]): Promise<string[]> {
  const errors: string[] = [];
  const gone = (text: string) => /no such (container|network)|not found/i.test(text);
  await Promise.all(
    containers.map(async (id) => {
      await docker(['unpause', id], { timeoutMs: 30_000, allowFailure: true }).catch(() => undefined);
      const rm = await docker(['rm', '-f', '-v', id], { timeoutMs: 60_000, allowFailure: true }).catch(
        (error: unknown) => ({ code: -1, stdout: '', stderr: String(error) }),
      );
      if (rm.code !== 0 && !gone(rm.stderr)) errors.push(`docker rm -f ${id}: ${rm.stderr.trim()}`);
    }),
  );
  for (const network of networks) {
    const rm = await docker(['network', 'rm', network], { timeoutMs: 60_000, allowFailure: true }).catch(
      (error: unknown) => ({ code: -1, stdout: '', stderr: String(error) }),
    );
    if (rm.code !== 0 && !gone(rm.stderr)) errors.push(`docker network rm ${network}: ${rm.stderr.trim()}`);
  }
  return errors;
}

/** Names of containers and networks that carry a label (`key=value`), for leak checks. */
export async function labelledDockerResources(
  label: string,
): Promise<{ containers: string[]; networks: string[] }> {
  const list = async (args: string[]) =>
    (await docker(args, { timeoutMs: 15_000 })).stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  const [containers, networks] = await Promise.all([
    list(['ps', '-a', '--format', '{{.Names}}', '--filter', `label=${label}`]),
    list(['network', 'ls', '--format', '{{.Name}}', '--filter', `label=${label}`]),
  ]);
  return { containers, networks };
}
