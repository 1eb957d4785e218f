/**
 * What issue 17 adds to set, del and watch (client-commands.ts parses them): a conditional write
 * that reports a conflict in one line, delete by prefix with the count of keys it deleted, and
 * the line for a watch whose history is gone.
 */
import type { Client } from '../client/index.js';
import { ConflictError, type HistoryUnavailableError } from '../errors.js';
import { EXIT, say } from './client-commands.js';
import { conflictLine } from './kv-options.js';

/**
 * Runs a conditional write; on a conflict says what the key is at (one line) and resolves
 * undefined. Other errors go on to the command's handler.
 */
export async function refusedSays(
  command: string,
  asked: number | undefined,
  write: () => Promise<number>,
): Promise<number | undefined> {
  try {
    return await write();
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    say(command, conflictLine(error.key, asked, error.currentSequence));
    return undefined;
  }
}

/**
 * `del PREFIX --prefix`: one sequenced change deletes every key under PREFIX; prints how many the
 * replica (the subtree PREFIX) saw deleted by it, each an update with the change's sequence. As a
 * delete of a missing key, deleting nothing writes nothing, prints 0 and exits 1.
 */
export async function deletePrefix(client: Client, prefix: string): Promise<number> {
  if (client.count(prefix) === 0) {
    process.stdout.write('0\n');
    return EXIT.FAILED;
  }
  const deleted: { seq: number; key: string }[] = [];
  const listener = (u: { key: string; seq: number; deleted: boolean }) => {
    if (u.deleted && u.key.startsWith(prefix)) deleted.push(u);
  };
  client.on('update', listener);
  try {
    // resolves after the replica applied the change and its updates were emitted
    const seq = await client.deletePrefix(prefix);
    process.stdout.write(`${deleted.filter((u) => u.seq === seq).length}\n`);
    return EXIT.OK;
  } finally {
    client.off('update', listener);
  }
}

export function historyLine(error: HistoryUnavailableError): string {
  const oldest =
    error.oldestAvailable === undefined ? '' : `: the oldest still available is ${error.oldestAvailable}`;
  return `history unavailable (compacted)${oldest} (${error.message})`;
}
