/** CURVE settings for zeromq.js sockets, so every socket is configured the same way. */
import type * as zmq from 'zeromq';
import type { KeyPair } from './keys.js';
import type { Domain, Guard } from './guard.js';

/** A bound socket that encrypts, proves it holds `keys`, and asks ZAP about `domain`. */
export function curveServerOptions(keys: KeyPair, domain: Domain) {
  return {
    curveServer: true,
    curveSecretKey: keys.secretKey,
    curvePublicKey: keys.publicKey,
    zapDomain: domain,
  };
}

/** A connecting socket that only talks to the holder of `serverPublicKey`. */
export function curveClientOptions(own: KeyPair, serverPublicKey: string) {
  return { curveServerKey: serverPublicKey, curvePublicKey: own.publicKey, curveSecretKey: own.secretKey };
}

/**
 * Counts handshakes that failed before ZAP was asked: a client without CURVE, one that expects
 * another server key, or garbage. (ZAP's own refusals are counted by the guard with a reason.)
 */
export function watchHandshakes(socket: zmq.Socket, guard: Guard, domain: Domain): void {
  const failed = () => guard.handshakeFailed(domain);
  socket.events.on('handshake:error:protocol', failed);
  socket.events.on('handshake:error:other', failed);
}
