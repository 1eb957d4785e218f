/* global process */
/**
 * Watchers for bench/watchers.ts (issue 18, fan-out through twinstar's own client): one process
 * holding N clients of the compiled client (dist/, as users run it), each following the same
 * subtree and listening for 'update' the way the API docs show. Each value carries its write time
 * (CLOCK_MONOTONIC ms as a double in its first 8 bytes, shared by every process on the machine);
 * each delivery records write-to-delivery latency in a 1 %-wide log histogram.
 *
 * IPC: { cmd: 'start', servers, subtree, count } → { connectMs }; { cmd: 'reset' };
 * { cmd: 'stats' } → { delivered, counts: histogram, maxUs }; { cmd: 'stop' } closes and exits.
 */
// WATCHERS_CLIENT: another build of the client (bench/watchers.ts --variants), e.g. the one before
// a change, copied under dist/variants/NAME/ so that it resolves the same node_modules.
const { connect } = await import(process.env.WATCHERS_CLIENT ?? '../dist/src/index.js');

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const GROWTH = Math.log(1.01);
const BUCKETS = 2600;

let clients = [];
let hist = new Array(BUCKETS).fill(0);
let delivered = 0;
let maxUs = 0;

function record(us) {
  const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / GROWTH));
  hist[i]++;
  if (us > maxUs) maxUs = us;
}

async function start({ servers, subtree, count }) {
  const t0 = nowMs();
  // Connected a few at a time, as an application starting many would (and bounded by connect()).
  for (let i = 0; i < count; i += 10) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 10); j++)
      batch.push(connect({ servers, subtree, mode: 'native', connectTimeoutMs: 30_000 }));
    clients.push(...(await Promise.all(batch)));
  }
  for (const client of clients) {
    client.on('update', (update) => {
      if (update.deleted || update.value.length < 8) return;
      delivered++;
      record((nowMs() - update.value.readDoubleBE(0)) * 1000);
    });
  }
  return { connectMs: nowMs() - t0 };
}

process.on('message', async (msg) => {
  try {
    let result;
    if (msg.cmd === 'start') result = await start(msg);
    else if (msg.cmd === 'reset') {
      hist = new Array(BUCKETS).fill(0);
      delivered = 0;
      maxUs = 0;
      result = {};
    } else if (msg.cmd === 'stats') result = { delivered, counts: hist, maxUs };
    else if (msg.cmd === 'stop') {
      await Promise.all(clients.map((c) => c.close()));
      clients = [];
      process.send({ id: msg.id, result: {} }, () => process.exit(0));
      return;
    }
    process.send({ id: msg.id, result });
  } catch (error) {
    process.send({ id: msg.id, error: String(error?.stack ?? error) });
  }
});
process.on('disconnect', () => process.exit(0));
