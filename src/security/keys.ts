/**
 * CURVE key pairs and their files. A key is 32 bytes of X25519, written as 40 characters of Z85.
 * Key files use the layout of CZMQ certificates (`zcert`), so keys made by other ZeroMQ tools load
 * here and ours load there: `NAME.key` holds the public key only and can be shared; `NAME.key_secret`
 * holds both and must stay private.
 *
 * Everything here is pure; reading and writing the files is in key-files.ts.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { z85Decode, z85Encode } from './z85.js';

export interface KeyPair {
  /** Z85, 40 characters */
  readonly publicKey: string;
  /** Z85, 40 characters */
  readonly secretKey: string;
}

/** A key that is not 40 characters of Z85, or a key file that does not hold one. */
export class KeyError extends Error {
  override name = 'KeyError';
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    publicKey: z85Encode(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')),
    secretKey: z85Encode(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url')),
  };
}

/** The 32 bytes of a Z85 key; throws KeyError naming `what` when it is not one. */
export function keyBytes(key: string, what = 'key'): Buffer {
  const bytes = typeof key === 'string' && key.length === 40 ? z85Decode(key) : undefined;
  if (bytes === undefined) throw new KeyError(`${what} is not a CURVE key (40 characters of Z85)`);
  return bytes;
}

export function isKey(key: unknown): key is string {
  return typeof key === 'string' && key.length === 40 && z85Decode(key) !== undefined;
}

/** The public key that belongs to a secret key. */
export function publicKeyOf(secretKey: string): string {
  const d = keyBytes(secretKey, 'secret key');
  const jwk = createPublicKey(
    createPrivateKey({
      key: { kty: 'OKP', crv: 'X25519', d: d.toString('base64url'), x: '' },
      format: 'jwk',
    }),
  ).export({ format: 'jwk' });
  return z85Encode(Buffer.from(jwk.x!, 'base64url'));
}

/**
 * X25519 of one side's secret key and the other side's public key: both ends of a connection
 * compute the same 32 bytes. twinstar uses it to key the MAC of a session token (session.ts).
 */
export function sharedSecret(ownSecretKey: string, otherPublicKey: string): Buffer {
  const d = keyBytes(ownSecretKey, 'secret key').toString('base64url');
  const x = keyBytes(otherPublicKey, 'public key').toString('base64url');
  // JWK import wants the private key's own public half; it is not checked against `d`.
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x }, format: 'jwk' });
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
  return diffieHellman({ privateKey, publicKey });
}

/** The text of a key file; with `secret` it holds both keys. */
export function formatKeyFile(pair: KeyPair, secret: boolean, created = new Date()): string {
  const lines = [
    `#   ****  Generated on ${created.toISOString()} by twinstar keygen  ****`,
    secret
      ? '#   twinstar CURVE secret key: keep this file private (mode 0600), never share it.'
      : '#   twinstar CURVE public key: give this file to whoever must trust this key.',
    'metadata',
    'curve',
    `    public-key = "${pair.publicKey}"`,
  ];
  if (secret) lines.push(`    secret-key = "${pair.secretKey}"`);
  return lines.join('\n') + '\n';
}

/**
 * The keys in a key file's text. Accepts the zcert layout and, for convenience, a file holding
 * nothing but a 40-character public key. A secret key must match its public key.
 */
export function parseKeyFile(text: string, source = 'key file'): { publicKey: string; secretKey?: string } {
  const bare = text.trim();
  if (isKey(bare)) return { publicKey: bare };
  const field = (name: string): string | undefined => {
    const match = new RegExp(`^\\s*${name}\\s*=\\s*"([^"]*)"\\s*$`, 'm').exec(text);
    return match?.[1];
  };
  const publicKey = field('public-key');
  const secretKey = field('secret-key');
  if (publicKey === undefined) throw new KeyError(`${source} has no public-key`);
  keyBytes(publicKey, `${source}: public-key`);
  if (secretKey === undefined) return { publicKey };
  keyBytes(secretKey, `${source}: secret-key`);
  if (publicKeyOf(secretKey) !== publicKey)
    throw new KeyError(`${source}: secret-key does not belong to public-key`);
  return { publicKey, secretKey };
}
