/**
 * Session tokens: how the server learns which client key sent a request on its ROUTER.
 *
 * libzmq authenticates each connection's CURVE key (and the ZAP handler checks it against the
 * allow-list), but zeromq.js does not hand the key to the application with each message. So a
 * native client names itself in its routing id, which it picks before connecting:
 *
 *   "t2." Z85(client public key, 32) Z85(nonce, 16) Z85(HMAC-SHA256(X25519(c, S), context), 32)
 *   nonce = mint time (ms since the epoch, 8 bytes big-endian) | 8 random bytes
 *
 * The MAC is keyed by the X25519 secret the client shares with this server, so only the holder of
 * the client's secret key can make a token for that key, and it covers the mint time. A token
 * alone proves nothing about the connection it arrives on: the server also checks that the
 * connection authenticated with the key the token names, and that the token is fresh (binding.ts).
 * Pure apart from the clock and the random bytes; verification is constant-time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { keyBytes, sharedSecret } from './keys.js';
import { z85Decode, z85Encode } from './z85.js';

const PREFIX = 't2.';
const CONTEXT = 'twinstar session v2';
const TOKEN_LENGTH = PREFIX.length + 40 + 20 + 40;

/** What a genuine token says: whose it is and when it was made. */
export interface SessionClaim {
  publicKey: string;
  mintedAt: number;
}

function mac(secret: Buffer, clientPublic: Buffer, serverPublic: Buffer, nonce: Buffer): Buffer {
  return createHmac('sha256', secret)
    .update(CONTEXT)
    .update(clientPublic)
    .update(serverPublic)
    .update(nonce)
    .digest();
}

/**
 * The routing id a client with `client` keys uses for one connection to the server whose public
 * key is given. A client mints a new one for every connection it makes.
 */
export function sessionToken(
  client: { publicKey: string; secretKey: string },
  serverPublicKey: string,
  mintedAt: number = Date.now(),
  random: Buffer = randomBytes(8),
): string {
  const nonce = Buffer.alloc(16);
  nonce.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(mintedAt))));
  random.copy(nonce, 8, 0, 8);
  const secret = sharedSecret(client.secretKey, serverPublicKey);
  const tag = mac(secret, keyBytes(client.publicKey), keyBytes(serverPublicKey), nonce);
  return PREFIX + client.publicKey + z85Encode(nonce) + z85Encode(tag);
}

/**
 * Checks a routing id against this server's keys. Returns the key it names and its mint time
 * when the token is genuine, undefined otherwise. `secretFor` returns X25519(server secret,
 * client public), which the caller may cache per client key.
 */
export function readSessionToken(
  routingId: Buffer,
  serverPublicKey: string,
  secretFor: (clientPublicKey: string) => Buffer,
): SessionClaim | undefined {
  if (routingId.length !== TOKEN_LENGTH) return undefined;
  const text = routingId.toString('latin1');
  if (!text.startsWith(PREFIX)) return undefined;
  const publicKey = text.slice(3, 43);
  const clientPublic = z85Decode(publicKey);
  const nonce = z85Decode(text.slice(43, 63));
  const tag = z85Decode(text.slice(63));
  if (!clientPublic || !nonce || !tag) return undefined;
  const expected = mac(secretFor(publicKey), clientPublic, keyBytes(serverPublicKey), nonce);
  if (!timingSafeEqual(expected, tag)) return undefined;
  return { publicKey, mintedAt: Number(nonce.readBigUInt64BE()) };
}

/** The mint time of a token this process made (no verification: for the client's own tokens). */
export function tokenMintedAt(token: string): number | undefined {
  if (token.length !== TOKEN_LENGTH || !token.startsWith(PREFIX)) return undefined;
  const nonce = z85Decode(token.slice(43, 63));
  return nonce ? Number(nonce.readBigUInt64BE()) : undefined;
}
