/**
 * A consumer-group member in a process of its own, for tests that SIGKILL one (issue 16):
 *
 *   node --import tsx test/integration/event-member-host.ts <servers,comma> <group> <pattern> [options JSON]
 *
 * It subscribes and prints JSON lines on stdout: {"ready":true} once the server has the
 * subscription, then {"got":seq,"n":deliveryCount} for every event it receives and
 * {"acked":seq} once the server has that ack, each with `t`, the time (ms). Options: the subscribe options, plus `holdMs`
 * (wait this long before acking each event) and `noAck` (never ack). On SIGTERM it unsubscribes
 * (the member leaves the group at once) and exits.
 */
import { connect } from '../../src/index.js';

const [servers, group, pattern, json] = process.argv.slice(2);
const { holdMs = 0, noAck = false, ...options } = JSON.parse(json ?? '{}') as Record<string, unknown>;
const say = (line: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...line, t: Date.now() })}\n`);

const client = await connect({ servers: servers!.split(','), connectTimeoutMs: 20_000 });
const subscription = client.subscribe(pattern!, { group: group!, ...options });
// SIGTERM: leave the group the way a service that shuts down does, then exit. Installed before
// the ready line: a test may send SIGTERM as soon as it reads it, and a signal that came between
// that write and this line ended the process by the default action (exit code null; seen once in CI).
process.once('SIGTERM', () => {
  void subscription
    .unsubscribe()
    .then(() => client.close())
    .finally(() => process.exit(0));
});
await subscription.ready();
say({ ready: true });
for await (const event of subscription) {
  say({ got: event.sequence, n: event.deliveryCount });
  if (noAck) continue;
  const ack = async () => {
    await event.ack();
    say({ acked: event.sequence });
  };
  if ((holdMs as number) > 0)
    setTimeout(
      () => void ack().catch((error: unknown) => say({ ackError: String(error), seq: event.sequence })),
      holdMs as number,
    );
  else await ack().catch((error: unknown) => say({ ackError: String(error), seq: event.sequence }));
}
