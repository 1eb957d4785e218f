/**
 * Session tokens: how the server learns which client key sent a request on its ROUTER.
 *
 * libzmq authenticates each connection's CURVE key (and the ZAP handler checks it against the
 * allow-list), but zeromq.js does not hand the key to the application with each message. So a
 * native client names itself in its routing id, which it picks before connecting:
 *
 *   "t1." Z85(client public key, 32) Z85(nonce, 16) Z85(HMAC-SHA256(X25519(c, S), context), 32)
 *
 * The MAC is keyed by the X25519 secret the client shares with this server, so only the holder of
 * the client's secret key can make a token for that key. The routing id travels inside the CURVE
 * handshake, encrypted, and a fresh nonce is drawn per connection, so no other client can learn a
 * token to replay it. Pure apart from the random nonce; verification is constant-time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { keyBytes, sharedSecret } from './keys.js';
import { z85Decode, z85Encode } from './z85.js';

const PREFIX = 't1.';
const TOKEN_LENGTH = PREFIX.length + 40 + 20 + 40;

function mac(secret: Buffer, clientPublic: Buffer, serverPublic: Buffer, nonce: Buffer): Buffer {
  return createHmac('sha256', secret)
    .update('twinstar session v1')
    .update(clientPublic)
    .update(serverPublic)
    .update(nonce)
    .digest();
}

/** The routing id a client with `client` keys uses towards the server whose public key is given. */
export function sessionToken(
  client: { publicKey: string; secretKey: string },
  serverPublicKey: string,
  nonce: Buffer = randomBytes(16),
): string {
  const secret = sharedSecret(client.secretKey, serverPublicKey);
  const tag = mac(secret, keyBytes(client.publicKey), keyBytes(serverPublicKey), nonce);
  return PREFIX + client.publicKey + z85Encode(nonce) + z85Encode(tag);
}

/**
 * Checks a routing id against this server's keys. Returns the client's public key when the token
 * is genuine, undefined otherwise. `secretFor` returns X25519(server secret, client public), which
 * the caller may cache per client key.
 */
export function verifySessionToken(
  routingId: Buffer,
  serverPublicKey: string,
  secretFor: (clientPublicKey: string) => Buffer,
): string | undefined {
  if (routingId.length !== TOKEN_LENGTH) return undefined;
  const text = routingId.toString('latin1');
  if (!text.startsWith(PREFIX)) return undefined;
  const clientPublicKey = text.slice(3, 43);
  const clientPublic = z85Decode(clientPublicKey);
  const nonce = z85Decode(text.slice(43, 63));
  const tag = z85Decode(text.slice(63));
  if (!clientPublic || !nonce || !tag) return undefined;
  const expected = mac(secretFor(clientPublicKey), clientPublic, keyBytes(serverPublicKey), nonce);
  return timingSafeEqual(expected, tag) ? clientPublicKey : undefined;
}
