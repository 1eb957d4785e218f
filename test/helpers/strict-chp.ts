/**
 * A pair of strict Model Six servers (test/compat/strict_chp_server.py, Debian's python3-zmq) as
 * real processes: their JSON lines on stdout (state changes, SIGUSR1 dumps) and their stderr log,
 * which says "E: bad request, aborting" if a client ever sent them anything but ICANHAZ?.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { freePorts, waitFor } from './index.js';

/** The system python: Debian's python3-zmq lives there, not in a pyenv python on PATH. */
export const PYTHON = '/usr/bin/python3';
export const STRICT_SERVER = fileURLToPath(new URL('../compat/strict_chp_server.py', import.meta.url));

export interface StrictEntry {
  seq: number;
  value: string;
  props: string;
}

export interface StrictDump {
  event: 'dump';
  state: string;
  sequence: number;
  pending: number;
  entries: Record<string, StrictEntry>;
}

interface Line {
  event: string;
  state?: string;
  [field: string]: unknown;
}

export interface StrictOptions {
  role: 'primary' | 'backup';
  port: number;
  peerPort: number;
  bstarPort: number;
  peerBstarPort: number;
  hugzMs?: number;
}

export class StrictServer {
  readonly child: ChildProcess;
  readonly lines: Line[] = [];
  stderr = '';
  readonly endpoint: string;
  private buffered = '';

  constructor(readonly options: StrictOptions) {
    const args = [
      STRICT_SERVER,
      '--role',
      options.role,
      '--port',
      String(options.port),
      '--peer-port',
      String(options.peerPort),
      '--bstar-port',
      String(options.bstarPort),
      '--peer-bstar-port',
      String(options.peerBstarPort),
      '--hugz-ms',
      String(options.hugzMs ?? 1000),
    ];
    this.child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.endpoint = `tcp://127.0.0.1:${options.port}`;
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) !== -1) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        if (line.trim() !== '') this.lines.push(JSON.parse(line) as Line);
      }
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The server's own words if it refused a client's request (it exits with status 3 then). */
  get aborted(): boolean {
    return /bad request|bad update|bad ttl|fatal error/.test(this.stderr);
  }

  get state(): string | undefined {
    return this.lines.filter((l) => l.event === 'state' || l.event === 'ready').at(-1)?.state;
  }

  /** Every state this node went through, in order. */
  get states(): string[] {
    return this.lines.filter((l) => l.event === 'state').map((l) => l.state!);
  }

  /** How many ICANHAZ? for `subtree` it answered (each is a full snapshot a client took). */
  snapshotsServed(subtree: string): number {
    return this.stderr.split('\n').filter((l) => l.includes(`I: snapshot b'${subtree}' at`)).length;
  }

  /** How many ICANHAZ? it dropped because it was not active (client votes refused). */
  get votesIgnored(): number {
    return this.stderr.split('\n').filter((l) => l.includes('I: ignored ICANHAZ?')).length;
  }

  describe(): string {
    const code = this.child.exitCode ?? this.child.signalCode;
    return `strict ${this.options.role} on ${this.options.port} (${this.exited ? `exited ${code}` : 'running'}):\n${this.stderr}`;
  }

  async waitState(state: string, ms = 15_000): Promise<void> {
    await waitFor(
      () => {
        if (this.exited) throw new Error(this.describe());
        return this.state === state;
      },
      ms,
      `strict ${this.options.role} to be ${state}`,
    );
  }

  /** Its state, sequence and entries, as it prints them on SIGUSR1. */
  async dump(ms = 5000): Promise<StrictDump> {
    if (this.exited) throw new Error(`cannot dump: ${this.describe()}`);
    const before = this.lines.length;
    this.child.kill('SIGUSR1');
    return waitFor(
      () => this.lines.slice(before).find((l) => l.event === 'dump') as StrictDump | undefined,
      ms,
      `a dump from the strict ${this.options.role}`,
    );
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    const done = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await done;
  }
}

export interface StrictPair {
  primary: StrictServer;
  backup: StrictServer;
  servers: string[];
  stop(): Promise<void>;
}

/** Starts a primary and a backup on fresh ports and waits until one is ACTIVE, the other PASSIVE. */
export async function startStrictPair(hugzMs = 1000): Promise<StrictPair> {
  const p = await freePorts(5); // P..P+3 and the Binary Star state port
  const b = await freePorts(5);
  const primary = new StrictServer({
    role: 'primary',
    port: p,
    peerPort: b,
    bstarPort: p + 4,
    peerBstarPort: b + 4,
    hugzMs,
  });
  const backup = new StrictServer({
    role: 'backup',
    port: b,
    peerPort: p,
    bstarPort: b + 4,
    peerBstarPort: p + 4,
    hugzMs,
  });
  const pair: StrictPair = {
    primary,
    backup,
    servers: [primary.endpoint, backup.endpoint],
    stop: async () => {
      await Promise.all([primary.kill(), backup.kill()]);
    },
  };
  try {
    await primary.waitState('ACTIVE');
    await backup.waitState('PASSIVE');
  } catch (error) {
    await pair.stop();
    // Either node's log tells why (a port taken, a peer never heard): show both, not just the one awaited.
    throw new Error(`${(error as Error).message}\n${primary.describe()}\n${backup.describe()}`);
  }
  return pair;
}
