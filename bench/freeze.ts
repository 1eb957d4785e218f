/**
 * How long one large native write freezes a node's event loop (issue 13, B1).
 *
 *   npm run build && node --import tsx bench/freeze.ts [--entries 50000,100000,200000]
 *       [--followers 1000 --batch 200] [--max-batch-entries N] [--max-batch-bytes N]
 *
 * A pair (default timing: heartbeat 100 ms, failover 500 ms) is started through the CLI. A raw
 * DEALER sends one TSET of N small writes while a second DEALER sends a TPING every 5 ms; the
 * freeze is the longest time the active left a TPING unanswered (the reactor did nothing else
 * meanwhile). The node's own stall log (`stalledMs`) and promotions on either node are reported
 * too. With --followers F, F DEALERs TFOLLOW '/' first and the TSET holds --batch entries.
 */
import { parseArgs } from 'node:util';
import * as zmq from 'zeromq';
import { encodeRequestId, Native, packBatch } from '../src/wire/index.js';
import { metric, pairOptions, pairPorts, ServerProcess, waitFor } from '../test/helpers/index.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '50000,100000,200000' },
    followers: { type: 'string', default: '0' },
    batch: { type: 'string', default: '200' },
    'max-batch-entries': { type: 'string' },
    'max-batch-bytes': { type: 'string' },
  },
});

const extra: string[] = [];
if (values['max-batch-entries']) extra.push('--max-batch-entries', values['max-batch-entries']);
if (values['max-batch-bytes']) extra.push('--max-batch-bytes', values['max-batch-bytes']);

function batchOf(n: number, tag: string): Buffer {
  const entries = [];
  for (let i = 0; i < n; i++) {
    const uuid = Buffer.alloc(16);
    uuid.writeUInt32BE(i, 0);
    uuid.write(tag.slice(0, 12), 4, 'latin1');
    entries.push({
      key: `/f/${tag}/${i}`,
      sequence: 0,
      uuid: uuid.toString('latin1'),
      properties: '',
      expiresAt: 0,
      body: Buffer.from('0123456789'),
    });
  }
  return packBatch(entries);
}

async function run(entries: number, followers: number): Promise<void> {
  const ports = await pairPorts();
  const opts = pairOptions(ports);
  // FREEZE_PROFILE_DIR=DIR: the active runs under --cpu-prof (analyze with bench/profile.ts analyze).
  const dir = process.env.FREEZE_PROFILE_DIR;
  const env = dir ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` } : undefined;
  const primary = new ServerProcess({ ...opts.primary, extraArgs: extra, env });
  const backup = new ServerProcess({ ...opts.backup, extraArgs: extra });
  const sockets: zmq.Socket[] = [];
  try {
    await primary.ready('ACTIVE', 20_000);
    await backup.ready('PASSIVE', 20_000);
    await waitFor(async () => (await primary.status()).peer?.synced, 20_000, 'the passive to sync');
    for (let i = 0; i < followers; i++) {
      const d = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 0 });
      d.connect(primary.endpoint);
      await d.send([Buffer.from(Native.FOLLOW), encodeRequestId(0), Buffer.from('/')]);
      sockets.push(d);
    }
    const writer = new zmq.Dealer({ linger: 0 });
    const pinger = new zmq.Dealer({ linger: 0 });
    sockets.push(writer, pinger);
    writer.connect(primary.endpoint);
    pinger.connect(primary.endpoint);
    // A ping round trip first, so the pinger's connection is up before the clock starts.
    await pinger.send([Buffer.from(Native.PING), encodeRequestId(0)]);
    await pinger.receive();
    let worst = 0;
    let done = false;
    const pinging = (async () => {
      for (let id = 1; !done; id++) {
        const sent = performance.now();
        await pinger.send([Buffer.from(Native.PING), encodeRequestId(id)]);
        await pinger.receive();
        worst = Math.max(worst, performance.now() - sent);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const frame = batchOf(followers > 0 ? Number(values.batch) : entries, `r${entries}`);
    const started = performance.now();
    await writer.send([Buffer.from(Native.SET), encodeRequestId(1), frame]);
    // Old servers never answered a batch above ~120k writes (a stack overflow): wait 60 s at most.
    const reply = await Promise.race([
      writer.receive(),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000)),
    ]);
    const [tag, , reason] = reply ?? [Buffer.from('no answer within 60 s')];
    const answeredMs = performance.now() - started;
    done = true;
    await pinging;
    const stalls = primary.logs((l) => typeof l.stalledMs === 'number').map((l) => l.stalledMs);
    const promoted = async (node: ServerProcess) =>
      waitFor(() => metric(node.http, 'twinstar_promotions_total').then(String), 20_000, 'metrics');
    console.log(
      JSON.stringify({
        entries: followers > 0 ? Number(values.batch) : entries,
        followers,
        frameBytes: frame.length,
        reply: `${tag}${tag?.toString() === Native.ERROR ? ` ${reason}` : ''}`,
        answeredMs: Math.round(answeredMs),
        worstPingMs: Math.round(worst),
        stallLogMs: stalls,
        promotions: { primary: await promoted(primary), backup: await promoted(backup) },
      }),
    );
  } finally {
    for (const s of sockets) s.close();
    await primary.stop(); // SIGTERM, so that a profile is written
    await backup.kill();
  }
}

const followers = Number(values.followers);
if (followers > 0) await run(0, followers);
else for (const n of values.entries.split(',').map(Number)) await run(n, 0);
