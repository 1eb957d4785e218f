/**
 * The first acknowledged write after a pair is spawned, for the durability suite's restart figure
 * (suites/durability.ts): firstAck() connects a writer to the servers as they come up, retrying
 * connect() while the only node answering has no complete history yet (UnavailableError), then
 * writes until one write is acknowledged, and says when that was (nowMs) and how many connects it
 * took. Bounded by a deadline and a count of attempts.
 */
import { UnavailableError, type Client } from '../../src/index.js';
import { value, writer } from './load.js';
import { nowMs, sleep } from './proc.js';

/**
 * Connects a writer and writes until a write is acknowledged; resolves with when it was (nowMs)
 * and how many connects it took. While the pair starts, connect() can fail at once with
 * UnavailableError (the only node answering has no complete history yet): it is tried again, as
 * an application would, every 10 ms until the deadline.
 */
export async function firstAck(servers: string[], ms: number): Promise<{ at: number; connects: number }> {
  const deadline = nowMs() + ms;
  let client: Client | undefined;
  let connects = 0;
  while (client === undefined) {
    connects++;
    try {
      client = await writer(servers, { connectTimeoutMs: Math.max(1, deadline - nowMs()) });
    } catch (error) {
      if (!(error instanceof UnavailableError) || nowMs() > deadline) throw error;
      await sleep(10);
    }
  }
  try {
    const body = value(false);
    for (let attempt = 1; ; attempt++) {
      try {
        await client.set('/probe/restart', body);
        return { at: nowMs(), connects };
      } catch (error) {
        if (nowMs() > deadline || attempt >= 10_000) throw error;
        await sleep(10);
      }
    }
  } finally {
    await client.close();
  }
}
