/**
 * A producer: writes a few configuration keys, each acknowledged once both nodes hold it, then an
 * ephemeral heartbeat key with a TTL that disappears on its own when the producer stops.
 */
import { connect } from '../src/index.js';

const servers = (process.env.TWINSTAR_SERVERS ?? 'tcp://127.0.0.1:5556,tcp://127.0.0.1:5566').split(',');
const client = await connect({ servers, subtree: '/app/' });

for (const [key, value] of Object.entries({
  'log-level': 'info',
  'max-connections': '100',
  region: 'eu-west',
})) {
  const seq = await client.set(`/app/config/${key}`, value);
  console.log(`set /app/config/${key} = ${value} (sequence ${seq}${client.degraded ? ', degraded' : ''})`);
}

// An ephemeral key: refreshed every second with a 3-second TTL; the active deletes it after we stop.
for (let i = 0; i < 5; i++) {
  await client.setJson('/app/config/producer-alive', { at: new Date().toISOString() }, { ttl: 3 });
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
await client.close();
console.log('done: /app/config/producer-alive expires in about 3 seconds');
