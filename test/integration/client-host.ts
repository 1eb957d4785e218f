/**
 * A host process for one client, for tests that must see whether the process survives (a crash in
 * the test's own process would take mocha with it). Usage:
 *
 *   node --import tsx test/integration/client-host.ts <connectTimeoutMs> <endpoint>...
 *
 * It calls connect({ mode: 'native' }) and prints JSON lines on stdout: the client's warnings (one
 * per dropped message, 'dropped a malformed reply message', at a bounded rate), then an 'event'
 * line 'connected' or 'rejected', then 'closed'; it exits 0 on its own.
 */
import { connect, type Client } from '../../src/index.js';
import { pino } from 'pino';

const [timeout, ...servers] = process.argv.slice(2);
const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

// connect() hands the client out only once connected: its drops are seen in its log (a public
// option), where each one is a warning line.
const log = pino({ level: 'warn' }, process.stdout);

let client: Client | undefined;
try {
  client = await connect({
    servers,
    mode: 'native',
    serverTimeoutMs: 300,
    connectTimeoutMs: Number(timeout),
    log,
  });
  say({
    event: 'connected',
    server: client.server,
    dropped: client.stats().dropped,
    value: client.getString('/k'),
  });
} catch (error) {
  const e = error as { name?: string; code?: string; message?: string };
  say({ event: 'rejected', name: e.name, code: e.code, message: e.message });
}
await client?.close();
say({ event: 'closed' });
