/** Reading and writing key files (their text is keys.ts's business). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { KeyError, formatKeyFile, parseKeyFile, type KeyPair } from './keys.js';

/** The keys in a file; with `secret` it must hold a secret key too. Errors are one line. */
export function readKeyFile(path: string, secret: true): KeyPair;
export function readKeyFile(path: string, secret?: false): { publicKey: string; secretKey?: string };
export function readKeyFile(path: string, secret = false): { publicKey: string; secretKey?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new KeyError(`cannot read key file ${path}: ${(error as NodeJS.ErrnoException).code}`);
  }
  const keys = parseKeyFile(text, path);
  if (secret && keys.secretKey === undefined)
    throw new KeyError(`${path} holds no secret-key (use the .key_secret file)`);
  return keys;
}

/** Writes BASE.key (public, mode 0644) and BASE.key_secret (both keys, mode 0600). */
export function writeKeyPair(
  base: string,
  pair: KeyPair,
  overwrite = false,
): { publicFile: string; secretFile: string } {
  const publicFile = `${base}.key`;
  const secretFile = `${base}.key_secret`;
  for (const file of [publicFile, secretFile]) {
    if (!overwrite && existsSync(file)) throw new KeyError(`${file} exists; pass --force to replace it`);
  }
  writeFileSync(secretFile, formatKeyFile(pair, true), { mode: 0o600 });
  writeFileSync(publicFile, formatKeyFile(pair, false), { mode: 0o644 });
  return { publicFile, secretFile };
}
