/**
 * Fault injection for the real-process tests: loopback packet drops with iptables (a cut peer
 * link), a monitor that polls both nodes' /status all through an episode, and the amount of data
 * queued on a TCP connection (proof that a stream was in flight when we struck).
 *
 * Every iptables rule we add carries a comment naming this test process and is removed by
 * `heal()`; `healAll()` (for after-hooks) removes every rule this process still has, so a failed
 * test never leaves the machine's loopback cut.
 */
import { spawnSync } from 'node:child_process';
import { waitFor, type NodeStatus, type ServerProcess } from './index.js';

export const IPTABLES = '/usr/sbin/iptables';
const TAG = `twinstar-test-${process.pid}`;

function iptables(args: string[]): void {
  const r = spawnSync(IPTABLES, ['-w', '5', ...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`iptables ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

/** A rule drops loopback TCP packets whose source or destination port is `port`. */
type Rule = { port: number; dir: 'sport' | 'dport' };

const active: Rule[] = [];

function spec(rule: Rule): string[] {
  return [
    'INPUT',
    '-i',
    'lo',
    '-p',
    'tcp',
    `--${rule.dir}`,
    String(rule.port),
    '-m',
    'comment',
    '--comment',
    TAG,
    '-j',
    'DROP',
  ];
}

/**
 * Drops packets on `lo`. On loopback every packet passes INPUT once, so dropping by source and by
 * destination port silences both directions of every TCP connection that uses the port, existing
 * ones included (they stall; TCP retransmits once the rules go).
 */
export function drop(rules: Rule[]): void {
  for (const rule of rules) {
    iptables(['-I', ...spec(rule)]);
    active.push(rule);
  }
}

/** Both directions of every connection to or from these ports. */
export function cutPorts(...ports: number[]): void {
  drop(
    ports.flatMap((port) => [
      { port, dir: 'dport' as const },
      { port, dir: 'sport' as const },
    ]),
  );
}

/** Removes every rule this process added (idempotent). */
export function healAll(): void {
  const errors: string[] = [];
  while (active.length > 0) {
    const rule = active.pop()!;
    try {
      iptables(['-D', ...spec(rule)]);
    } catch (error) {
      errors.push(String(error));
    }
  }
  if (errors.length > 0) throw new Error(errors.join('; '));
}

/** True if this process still has rules in the table (for the tests' own sanity checks). */
export function rulesInPlace(): number {
  const r = spawnSync(IPTABLES, ['-w', '5', '-S', 'INPUT'], { encoding: 'utf8', timeout: 10_000 });
  return r.stdout.split('\n').filter((l) => l.includes(TAG)).length;
}

export interface Sample {
  at: number;
  /** one entry per node, in the order given to the monitor; undefined if /status did not answer */
  states: (Pick<NodeStatus, 'state' | 'epoch'> | undefined)[];
}

/**
 * Polls every node's /status every `everyMs` (both at once) until stopped, keeping each sample.
 * A node that does not answer within the poll is recorded as undefined, not as "not active".
 */
export class PairMonitor {
  readonly samples: Sample[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly nodes: ServerProcess[],
    everyMs = 50,
  ) {
    this.done = this.loop(everyMs);
  }

  private async loop(everyMs: number): Promise<void> {
    const t0 = Date.now();
    while (this.running) {
      const started = Date.now();
      const states = await Promise.all(
        this.nodes.map(async (n) => {
          try {
            const s = await n.status();
            return { state: s.state, epoch: s.epoch };
          } catch {
            return undefined;
          }
        }),
      );
      this.samples.push({ at: started - t0, states });
      const wait = everyMs - (Date.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async stop(): Promise<Sample[]> {
    this.running = false;
    await this.done;
    return this.samples;
  }

  /** The first sample at which more than one node said ACTIVE, described for an assertion message. */
  dualActive(): string | undefined {
    const i = this.samples.findIndex((s) => s.states.filter((x) => x?.state === 'ACTIVE').length > 1);
    if (i < 0) return undefined;
    const s = this.samples[i]!;
    return `poll ${i} of ${this.samples.length} (t=${s.at} ms): ${JSON.stringify(s.states)}`;
  }

  /** Every state and epoch node `index` reported. */
  seen(index: number): { states: Set<string>; epochs: Set<number>; answered: number } {
    const states = new Set<string>();
    const epochs = new Set<number>();
    let answered = 0;
    for (const s of this.samples) {
      const x = s.states[index];
      if (!x) continue;
      answered++;
      states.add(x.state);
      epochs.add(x.epoch);
    }
    return { states, epochs, answered };
  }
}

/**
 * Bytes received so far, by both ends, over the established loopback TCP connections on `port`
 * (the kernel's cumulative per-connection `bytes_received`, from `ss -ti`). Heartbeats add a few
 * hundred bytes a tick; a 30 MB snapshot adds megabytes. Unlike queue depth this never goes down,
 * so a poll cannot miss it.
 */
export function bytesReceived(port: number): number {
  const r = spawnSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) throw new Error(`ss failed: ${r.stderr || r.error?.message}`);
  let total = 0;
  for (const m of r.stdout.matchAll(/bytes_received:(\d+)/g)) total += Number(m[1]);
  return total;
}

/**
 * Resolves once more than `bytes` have crossed the connections on `port` (a stream is on the
 * wire), with the amount seen; rejects after `ms`.
 */
export async function crossed(port: number, bytes: number, ms: number): Promise<number> {
  let seen = 0;
  await waitFor(
    () => (seen = bytesReceived(port)) > bytes,
    ms,
    `more than ${bytes} bytes to cross port ${port}`,
    10,
  ).catch((error: Error) => {
    throw new Error(`${error.message} (saw ${seen})`);
  });
  return seen;
}

/**
 * Collects every broken promise of one episode so a failing run reports all of them at once
 * (two actives at poll N, K writes lost, ...) rather than only the first.
 */
export class Violations {
  readonly found: string[] = [];

  check(ok: boolean, what: string): void {
    if (!ok) this.found.push(what);
  }

  assertNone(): void {
    if (this.found.length > 0)
      throw new Error(`${this.found.length} broken promise(s):\n  - ${this.found.join('\n  - ')}`);
  }
}
