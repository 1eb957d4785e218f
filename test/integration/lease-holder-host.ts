/**
 * A lease holder in a process of its own, for tests that SIGKILL it (issue 17):
 *
 *   node --import tsx test/integration/lease-holder-host.ts <servers,comma> <ttlMs> <key>
 *
 * It grants a lease, writes KEY with it, prints {"id":N,"seq":S} and keeps the lease alive until
 * killed; a lost lease prints {"lost":true}.
 */
import { connect } from '../../src/index.js';

const [servers, ttl, key] = process.argv.slice(2);
const client = await connect({ servers: servers!.split(','), connectTimeoutMs: 20_000 });
const lease = await client.lease({ ttlMs: Number(ttl) });
lease.on('lost', () => process.stdout.write(`${JSON.stringify({ lost: true })}\n`));
const seq = await client.set(key!, `held by ${process.pid}`, { lease });
process.stdout.write(`${JSON.stringify({ id: lease.id, seq })}\n`);
