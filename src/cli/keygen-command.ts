/**
 * `twinstar keygen NAME` writes a CURVE key pair as CZMQ-style certificate files: NAME.key (the
 * public key, to hand out) and NAME.key_secret (both keys, mode 0600, to keep). It prints the
 * public key, which is what goes into a server's allow-list.
 */
import { parseArgs } from 'node:util';
import { generateKeyPair, KeyError, writeKeyPair } from '../security/index.js';

const HELP = `Usage: twinstar keygen NAME [--force]

Writes a new CURVE key pair: NAME.key holds the public key (share it), NAME.key_secret
holds both keys (mode 0600; keep it private). Prints the public key (Z85, 40 characters).
  --force    replace existing files
`;

export async function keygenCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    process.stderr.write(`twinstar keygen: ${(error as Error).message}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [name, ...extra] = parsed.positionals;
  if (name === undefined || extra.length > 0) {
    process.stderr.write(`twinstar keygen: give one NAME\n\n${HELP}`);
    return 2;
  }
  try {
    const pair = generateKeyPair();
    const files = writeKeyPair(name, pair, parsed.values.force ?? false);
    process.stderr.write(`wrote ${files.publicFile} and ${files.secretFile}\n`);
    process.stdout.write(`${pair.publicKey}\n`);
    return 0;
  } catch (error) {
    if (error instanceof KeyError) {
      process.stderr.write(`twinstar keygen: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
