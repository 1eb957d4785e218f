/**
 * Event consumers for the events suite (suites/events.ts), in a process of their own, driven over
 * IPC like bench/worker.ts. One process holds `count` consumers, each with its own connection:
 *
 *   start   twinstar: `count` clients, each subscribing `pattern` (in `group`, or fan-out);
 *           jetstream: `count` NATS connections, each consuming the durable pull consumer
 *           `consumer` of `stream` (explicit ack)
 *   reset   forget what was counted
 *   stats   per consumer: events received, first and last receipt time; the publish-to-receipt
 *           latency histogram; redeliveries and failed acks
 *   seqs    every sequence received since the reset (for the exactly-once check)
 *   redelivered  [sequence, receipt time] of every event received with a delivery count above 1
 *   held    sequences received and never acked (a `hold` consumer acks nothing)
 *
 * Every event's data starts with its publish time (CLOCK_MONOTONIC ms as a double, shared by every
 * process on the machine): latency is from the publish call to the consumer's handler. Each event
 * is acked in the handler, without waiting for the answer, so a consumer is never one round trip
 * per event; acks answered and acks that fail are counted.
 */
import { connect as twinstar, type Client, type Subscription } from '../src/index.js';
import { connect as nats, type ConsumerMessages, type NatsConnection } from 'nats';
import { pino } from 'pino';
import { Histogram } from './lib/stats.js';
import { nowMs } from './lib/proc.js';
import { serveRequests, type WorkerRequest } from './lib/worker-ipc.js';

interface Counters {
  counts: number[];
  firstAt: number[];
  lastAt: number[];
  hist: Histogram;
  seqs: number[];
  /** the sequences each consumer received, in the order received */
  perClient: number[][];
  redelivered: [number, number][];
  held: Set<number>;
  redeliveries: number;
  /** acks the broker confirmed (twinstar); acks sent (JetStream's ack() is not answered) */
  acked: number;
  ackFailed: number;
  firstAckError?: string;
}

const fresh = (count: number): Counters => ({
  counts: new Array<number>(count).fill(0),
  firstAt: new Array<number>(count).fill(0),
  lastAt: new Array<number>(count).fill(0),
  hist: new Histogram(),
  seqs: [],
  perClient: Array.from({ length: count }, () => []),
  redelivered: [],
  held: new Set(),
  redeliveries: 0,
  acked: 0,
  ackFailed: 0,
});

let counters = fresh(0);
/** what the clients told: drops, disconnections, failovers, resyncs, subscription errors, warnings */
const notices: { client: number; at: number; name: string; info: string }[] = [];
let hold = false;
const clients: Client[] = [];
const subscriptions: Subscription[] = [];
const connections: NatsConnection[] = [];
const natsLoops: ConsumerMessages[] = [];

function received(i: number, sequence: number, deliveryCount: number, data: Uint8Array): void {
  const now = nowMs();
  const c = counters;
  if (c.counts[i] === 0) c.firstAt[i] = now;
  c.counts[i]!++;
  c.lastAt[i] = now;
  if (data.length >= 8) {
    const sent = Buffer.from(data.buffer, data.byteOffset, 8).readDoubleBE(0);
    c.hist.record((now - sent) * 1000);
  }
  c.seqs.push(sequence);
  c.perClient[i]?.push(sequence);
  if (deliveryCount > 1) {
    c.redeliveries++;
    c.redelivered.push([sequence, now]);
  }
  if (hold) c.held.add(sequence);
}

function ackFailed(error: unknown): void {
  counters.ackFailed++;
  counters.firstAckError ??= String(error);
}

async function startTwinstar(args: Record<string, unknown>, count: number): Promise<void> {
  const servers = args.servers as string[];
  const options = (args.options as Record<string, unknown> | undefined) ?? {};
  for (let i = 0; i < count; i++) {
    // The client's warnings and errors (e.g. a subscription buffer overflowing) become notices.
    const log = pino(
      { level: 'warn' },
      {
        write: (line: string) =>
          notices.push({ client: i, at: nowMs(), name: 'log', info: line.slice(0, 400) }),
      },
    );
    const client = await twinstar({
      servers,
      subtree: '/bench-events-none/',
      mode: 'native',
      connectTimeoutMs: 15_000,
      log,
    });
    clients.push(client);
    for (const name of [
      'dropped',
      'disconnected',
      'reconnected',
      'failover',
      'resync',
      'unavailable',
    ] as const)
      client.on(name, (info: unknown) =>
        notices.push({ client: i, at: nowMs(), name, info: JSON.stringify(info) }),
      );
    const subscription = client.subscribe(String(args.pattern), options);
    subscription.on('error', (error) =>
      notices.push({ client: i, at: nowMs(), name: 'error', info: String(error) }),
    );
    subscriptions.push(subscription);
    await subscription.ready(15_000);
    void (async () => {
      try {
        for await (const event of subscription) {
          received(i, event.sequence, event.deliveryCount, event.data);
          if (!hold) event.ack().then(() => counters.acked++, ackFailed);
        }
      } catch (error) {
        ackFailed(error);
      }
    })();
  }
}

async function startJetStream(args: Record<string, unknown>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const nc = await nats({ servers: String(args.url) });
    connections.push(nc);
    const consumer = await nc.jetstream().consumers.get(String(args.stream), String(args.consumer));
    const messages = await consumer.consume({ max_messages: Number(args.batch ?? 1000) });
    natsLoops.push(messages);
    void (async () => {
      try {
        for await (const m of messages) {
          received(i, m.seq, m.info.redeliveryCount, m.data);
          if (hold) continue;
          m.ack();
          counters.acked++;
        }
      } catch (error) {
        ackFailed(error);
      }
    })();
  }
}

async function start(args: Record<string, unknown>): Promise<{ consumers: number }> {
  const count = Number(args.count ?? 1);
  hold = Boolean(args.hold);
  counters = fresh(count);
  if (args.kind === 'jetstream') await startJetStream(args, count);
  else await startTwinstar(args, count);
  return { consumers: count };
}

async function stop(): Promise<void> {
  for (const s of subscriptions.splice(0)) await s.unsubscribe().catch(() => undefined);
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
  for (const m of natsLoops.splice(0)) m.stop();
  for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
}

async function handle(req: WorkerRequest): Promise<unknown> {
  const c = counters;
  switch (req.cmd) {
    case 'start':
      return start(req.args);
    case 'reset':
      counters = fresh(c.counts.length);
      return undefined;
    case 'stats':
      return {
        counts: c.counts,
        firstAt: c.firstAt,
        lastAt: c.lastAt,
        hist: { counts: c.hist.counts, maxUs: c.hist.maxUs },
        redeliveries: c.redeliveries,
        acked: c.acked,
        ackFailed: c.ackFailed,
        firstAckError: c.firstAckError,
      };
    case 'seqs':
      return c.seqs;
    case 'redelivered':
      return c.redelivered;
    case 'seqsOf':
      return c.perClient[Number(req.args.client)] ?? [];
    case 'notices':
      return notices;
    case 'held':
      return [...c.held];
    case 'exit':
      await Promise.race([stop(), new Promise((resolve) => setTimeout(resolve, 2000))]);
      setTimeout(() => process.exit(0), 10);
      return undefined;
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
}

serveRequests(handle);
