/**
 * NATS JetStream for the events suite's comparison: a `nats-server -js` process on a free loopback
 * port, its store in a temporary folder (removed after), a work-queue stream and one durable pull
 * consumer with explicit acks that several connections share (JetStream's work queue).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AckPolicy,
  connect,
  nanos,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type NatsConnection,
} from 'nats';
import { freePorts, track, waitFor } from './proc.js';

/**
 * The nats-server binary (NATS_SERVER names it, else the PATH and Debian's /usr/sbin), or why
 * there is none.
 */
export function findNatsServer(): { path: string; version: string } | { missing: string } {
  const named = process.env.NATS_SERVER;
  const candidates = named ? [named] : ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server'];
  for (const path of candidates) {
    if (path.includes('/') && !existsSync(path)) continue;
    const run = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5000 });
    if (run.status === 0) return { path, version: run.stdout.trim() };
  }
  return {
    missing: named
      ? `NATS_SERVER=${named} does not run`
      : 'nats-server is not installed (Debian: apt-get install nats-server)',
  };
}

export interface JetStreamServer {
  url: string;
  version: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startNatsServer(path: string, version: string): Promise<JetStreamServer> {
  const port = await freePorts(1);
  const store = mkdtempSync(join(tmpdir(), 'twinstar-bench-js-'));
  const child: ChildProcess = track(
    spawn(path, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-4000)));
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(store, { recursive: true, force: true });
  };
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${log}`);
        return /Server is ready/.test(log);
      },
      15_000,
      'nats-server to be ready',
      20,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: `nats://127.0.0.1:${port}`, version, pid: child.pid!, stop };
}

export const STREAM = 'BENCH';
export const CONSUMER = 'workers';

/**
 * A work-queue stream on `subject` (in memory, as the twinstar pair of the suite keeps its log) and
 * its durable pull consumer: explicit ack, `ackWaitMs`, at most `maxAckPending` in flight.
 */
export async function workQueue(
  url: string,
  subject: string,
  o: { ackWaitMs: number; maxAckPending: number },
): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
  const nc = await connect({ servers: url });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({
    name: STREAM,
    subjects: [subject],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.Memory,
  });
  await jsm.consumers.add(STREAM, {
    durable_name: CONSUMER,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(o.ackWaitMs),
    max_ack_pending: o.maxAckPending,
  });
  return { nc, js: nc.jetstream() };
}
