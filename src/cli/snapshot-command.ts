/**
 * `twinstar snapshot save|status|restore`: backups in the manner of `etcdctl snapshot` (issue 15,
 * item 5).
 *
 * - `save FILE` connects as a client does and writes the map the client's replica holds right
 *   after its first sync: that is the active's native snapshot (TSNAP), served from a
 *   point-in-time array of entries while the active goes on serving, so the pair is never paused.
 *   The file (snapshot-file.ts) goes to FILE.tmp, is fsynced and renamed over FILE, so FILE is
 *   always either the old backup or the whole new one.
 * - `status FILE` checks the file's checksum and layout and prints what it holds.
 * - `restore FILE --data-dir DIR` writes a data directory a node opens (snapshot-restore.ts).
 *
 * A file that is damaged, cut short, of another version or not a snapshot, and a directory that is
 * not empty: one line naming it and the problem, exit status 2.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { InvalidArgumentError, TwinstarError } from '../errors.js';
import { parseCommandLine, UsageError } from './args.js';
import { EXIT, NoServerError, withClient } from './client-commands.js';
import { decodeSnapshot, encodeSnapshot, SnapshotFileError, withoutDeadline } from './snapshot-file.js';
import { restoreInto, RestoreRefused } from './snapshot-restore.js';

/** A file that cannot be used, or a directory a restore refuses: exit 2, as etcdctl's bad input. */
const BAD_INPUT = 2;

const HELP = `Usage: twinstar snapshot save FILE [connection options]
       twinstar snapshot status FILE [--json]
       twinstar snapshot restore FILE --data-dir DIR [--pair-id ID]

Backups of a pair's map, like etcdctl snapshot.

  save FILE      writes the active's map at one sequence to FILE (through FILE.tmp, fsynced,
                 then renamed): every key with its value, sequence, write uuid, properties and
                 absolute TTL deadline. The active is not paused: it serves the snapshot from a
                 point-in-time view. Prints the keys, the sequence and the size.
  status FILE    checks FILE (its SHA-256 and layout) and prints its keys, sequence, term, size
                 and hash; --json prints them as one JSON object.
  restore FILE   writes FILE's map into --data-dir DIR, a new or empty directory, for a node
                 started with --data-dir DIR. The node starts a new history at the snapshot's
                 sequence (no term, epoch 0: clients of the old pair take a full snapshot).
                 --pair-id ID: the pair id the directory belongs to (default: a new one); give
                 the id the node is configured with.

Connection options (save):
  --servers LIST     comma-separated snapshot endpoints (env TWINSTAR_SERVERS; default the local pair)
  --timeout MS       how long to wait for the active server (default 5000)
  --key-file FILE    this client's CURVE secret key file (env TWINSTAR_KEY_FILE)
  --server-key FILES the servers' public key files (env TWINSTAR_SERVER_KEY)
  -h, --help         this text

Exit status: 0 done, 1 failed (the file could not be written, the restore failed), 2 no
server answered (save), or FILE is damaged, cut short, of another version or not a snapshot,
or DIR is not empty; 128 bad usage.
`;

const OPTIONS = {
  servers: { type: 'string', takes: 'comma-separated tcp://HOST:PORT endpoints' },
  timeout: { type: 'string', takes: 'a number of milliseconds' },
  'key-file': { type: 'string', takes: 'a file name' },
  'server-key': { type: 'string', takes: 'file names, comma-separated' },
  json: { type: 'boolean' },
  'data-dir': { type: 'string', takes: 'a directory' },
  'pair-id': { type: 'string', takes: 'a pair id' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Which subcommand takes which option. */
const OWN: Record<string, string[]> = {
  save: ['servers', 'timeout', 'key-file', 'server-key'],
  status: ['json'],
  restore: ['data-dir', 'pair-id'],
};

/** A problem with FILE or DIR, said in one line, exit 2. */
class BadInput extends Error {}

const say = (sub: string, line: string) => process.stderr.write(`twinstar snapshot ${sub}: ${line}\n`);

/** The bytes on disk: FILE.tmp written and fsynced, renamed over FILE, the rename fsynced. */
function writeDurably(file: string, pieces: readonly Buffer[]): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    try {
      for (const piece of pieces) {
        for (let at = 0; at < piece.length;) at += writeSync(fd, piece, at, piece.length - at);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true }); // a disk that filled up gets its space back
    throw error;
  }
  const dir = openSync(dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

function readSnapshot(file: string): ReturnType<typeof decodeSnapshot> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new BadInput(`${file}: cannot read it: ${(error as Error).message}`);
  }
  try {
    return decodeSnapshot(bytes);
  } catch (error) {
    if (error instanceof SnapshotFileError) throw new BadInput(`${file}: ${error.message}`);
    throw error;
  }
}

async function save(file: string, values: Record<string, string | boolean | undefined>): Promise<number> {
  // Native mode: a plain CHP snapshot carries neither TTL deadlines nor a term.
  const snapshot = await withClient({ ...values, mode: 'native' }, '', async ({ client }) => {
    const view = client.view(); // at once: the replica is the active's snapshot, nothing applied since
    return { sequence: view.sequence, term: view.term, savedAt: Date.now(), entries: view.entries };
  });
  const pieces = encodeSnapshot(snapshot);
  const bytes = pieces.reduce((n, p) => n + p.length, 0);
  try {
    writeDurably(file, pieces);
  } catch (error) {
    say('save', `${file}: cannot write it: ${(error as Error).message}`);
    return EXIT.FAILED;
  }
  const unknown = withoutDeadline(snapshot);
  if (unknown > 0)
    say(
      'save',
      `warning: ${unknown} keys with a ttl were seen only as live updates, without their deadline: stored without one`,
    );
  process.stdout.write(
    `Snapshot saved at ${file}: ${snapshot.entries.length} keys at sequence ${snapshot.sequence}` +
      ` (term ${snapshot.term || 'none'}), ${bytes} bytes\n`,
  );
  return EXIT.OK;
}

function status(file: string, json: boolean): number {
  const { info } = readSnapshot(file);
  const savedAt = new Date(info.savedAt).toISOString();
  if (json) {
    const { hash, sequence, term, keys, bytes, version } = info;
    process.stdout.write(
      `${JSON.stringify({ file, hash, sequence, term, keys, bytes, savedAt, version })}\n`,
    );
  } else {
    process.stdout.write(
      `${file}: ${info.keys} keys at sequence ${info.sequence} (term ${info.term || 'none'}), ` +
        `${info.bytes} bytes, saved ${savedAt}, format ${info.version}, sha256 ${info.hash}\n`,
    );
  }
  return EXIT.OK;
}

async function restore(file: string, dir: string, pairId: string | undefined): Promise<number> {
  const snapshot = readSnapshot(file);
  let restored;
  try {
    restored = await restoreInto(snapshot, dir, pairId);
  } catch (error) {
    if (error instanceof RestoreRefused) throw new BadInput(error.message);
    say('restore', `into ${dir}: ${(error as Error).message}`);
    return EXIT.FAILED;
  }
  const expired = restored.expired > 0 ? `, ${restored.expired} past their TTL (deleted once served)` : '';
  process.stdout.write(
    `Restored ${snapshot.entries.length} keys at sequence ${snapshot.sequence} into ${dir}` +
      ` (pair ${restored.pairId}; a new history: no term, epoch 0${expired})\n`,
  );
  return EXIT.OK;
}

async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (!Object.hasOwn(OWN, sub))
    throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: save, status or restore`);
  const { values, positionals } = parseCommandLine(rest, OPTIONS);
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  for (const [name, value] of Object.entries(values))
    if (value !== undefined && name !== 'help' && !OWN[sub]!.includes(name))
      throw new UsageError(`--${name} does not go with snapshot ${sub}`);
  if (positionals.length !== 1) throw new UsageError(`snapshot ${sub} takes one FILE`);
  const file = positionals[0]!;
  switch (sub) {
    case 'save':
      return save(file, values);
    case 'status':
      return status(file, values.json === true);
    default: {
      const dir = values['data-dir'];
      if (typeof dir !== 'string' || dir === '')
        throw new UsageError('snapshot restore needs --data-dir DIR');
      const pairId = values['pair-id'] as string | undefined;
      if (pairId === '') throw new UsageError('--pair-id takes a pair id, not an empty string');
      return restore(file, dir, pairId);
    }
  }
}

export async function snapshotCommand(args: string[]): Promise<number> {
  const sub = Object.hasOwn(OWN, args[0] ?? '') ? args[0]! : '';
  const name = sub ? `snapshot ${sub}` : 'snapshot';
  try {
    return await run(args);
  } catch (error) {
    const line = (text: string) => process.stderr.write(`twinstar ${name}: ${text}\n`);
    if (error instanceof UsageError) {
      line(`${error.message} (see twinstar snapshot --help)`);
      return EXIT.USAGE;
    }
    if (error instanceof BadInput) {
      line(error.message);
      return BAD_INPUT;
    }
    if (error instanceof NoServerError) {
      line(error.message);
      return EXIT.NO_SERVER;
    }
    if (error instanceof InvalidArgumentError) {
      line(error.message);
      return EXIT.USAGE;
    }
    if (error instanceof TwinstarError) {
      line(`${error.message} (${error.code})`);
      return EXIT.FAILED;
    }
    throw error;
  }
}
