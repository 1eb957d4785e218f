/**
 * Readers that connect while a writer pipelines must miss no update (promise 4). Used against
 * plain CHP clients, with and without CURVE, which have no resume to mend a hole.
 */
import type { Client } from '../../src/index.js';
import { waitFor } from '../support/index.js';

/**
 * `rounds` rounds, each on its own prefix: the writer keeps 50 acknowledged writes in flight, and
 * `readers` readers connect one after another while it does (after 200 writes, and for 200 more).
 * Then a last write proves each reader's subscription delivers, and every reader must hold every
 * key. Returns a line per reader that does not (empty: none missed anything); a reader that never
 * sees the last write fails the wait.
 */
export async function missedWhileConnecting(
  writer: Client,
  connectReader: (prefix: string) => Promise<Client>,
  { rounds, readers }: { rounds: number; readers: number },
): Promise<string[]> {
  const missed: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const prefix = `/race${round}/`;
    let written = 0;
    let stop = false;
    const writing = (async () => {
      while (!stop)
        await Promise.all(Array.from({ length: 50 }, () => writer.set(`${prefix}k${written++}`, 'v')));
    })();
    await waitFor(() => written >= 200, 10_000, 'writes to flow');
    const connected: Client[] = [];
    for (let i = 0; i < readers; i++) connected.push(await connectReader(prefix));
    const connectedAt = written;
    await waitFor(() => written >= connectedAt + 200, 10_000, 'writes after the last connect');
    stop = true;
    await writing;
    await writer.set(`${prefix}end`, 'e');
    for (const [i, reader] of connected.entries()) {
      await waitFor(() => reader.get(`${prefix}end`) !== undefined, 10_000, `reader ${i}: the last write`);
      const have = reader.count(prefix);
      if (have !== written + 1) missed.push(`round ${round}, reader ${i}: ${have} of ${written + 1} keys`);
    }
  }
  return missed;
}
