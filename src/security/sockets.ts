/** CURVE settings for zeromq.js sockets, so every socket is configured the same way. */
import type * as zmq from 'zeromq';
import type { KeyPair } from './keys.js';
import type { Domain, Guard } from './guard.js';
import { SocketWatch } from '../zmq/index.js';

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
  const watch = SocketWatch.of(socket);
  watch.on('handshake:error:protocol', failed);
  watch.on('handshake:error:other', failed);
}

/** libzmq's ZMQ_ROUTER_NOTIFY (draft API; zeromq.js is built with it but has no setter for it). */
const ROUTER_NOTIFY = 97;
const NOTIFY_CONNECT_AND_DISCONNECT = 1 | 2;

/**
 * Makes a ROUTER deliver an empty message from a peer's routing id when its connection is made
 * (before anything the peer sends) and when it ends: how the guard binds sessions (binding.ts).
 */
export function notifyConnections(router: zmq.Router): void {
  (router as unknown as { setInt32Option(option: number, value: number): void }).setInt32Option(
    ROUTER_NOTIFY,
    NOTIFY_CONNECT_AND_DISCONNECT,
  );
}
