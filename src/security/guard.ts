/**
 * The server's security decisions in one place, free of sockets: which key may connect to which
 * socket (the ZAP domains), which principal sent a ROUTER request (its session token), and the
 * counting of every refusal. The clone server and the peer link ask; the guard answers.
 *
 * Domains, one per kind of socket:
 *   snapshot   any listed key; what it may read and write is checked per request
 *   publisher  listed keys that may read everything: a PUB cannot filter per subscriber, so a
 *              reader limited to some subtrees follows its updates over the snapshot socket
 *   collector  listed keys that may write everything: a SUB cannot tell senders apart
 *   peer       the other server's key alone
 */
import { EventEmitter } from 'node:events';
import type { AccessList, Principal } from './access.js';
import { sharedSecret, type KeyPair } from './keys.js';
import { verifySessionToken } from './session.js';
import type { ZapDecision } from './zap.js';

export type Domain = 'snapshot' | 'publisher' | 'collector' | 'peer';
export const DOMAINS: readonly Domain[] = ['snapshot', 'publisher', 'collector', 'peer'];

export type AuthFailure =
  | 'unknown-key'
  | 'not-the-peer'
  | 'restricted-reader'
  | 'restricted-writer'
  | 'bad-session'
  | 'handshake'
  | 'unknown-domain';

export interface GuardEvents {
  authFailure: [domain: Domain | 'unknown', reason: AuthFailure];
}

export interface GuardOptions {
  /** this server's key pair */
  keys: KeyPair;
  /** the other server's public key; undefined for a single server */
  peerPublicKey?: string;
  /** the allow-list in force now (it may be reloaded at any time) */
  access: () => AccessList;
}

const SESSION_CACHE = 10_000;

export class Guard extends EventEmitter<GuardEvents> {
  /** verified routing ids, to the client key they stand for (null: not a valid token) */
  private readonly sessions = new Map<string, string | null>();
  private readonly secrets = new Map<string, Buffer>();

  constructor(private readonly options: GuardOptions) {
    super();
  }

  get keys(): KeyPair {
    return this.options.keys;
  }

  get peerPublicKey(): string | undefined {
    return this.options.peerPublicKey;
  }

  /** The ZAP answer for a connection to a socket of `domain` by `publicKey`. */
  authorize(domain: string, publicKey: string): ZapDecision {
    const refuse = (reason: AuthFailure): ZapDecision => {
      this.emit('authFailure', isDomain(domain) ? domain : 'unknown', reason);
      return { ok: false, reason };
    };
    if (!isDomain(domain)) return refuse('unknown-domain');
    if (domain === 'peer') {
      return publicKey === this.options.peerPublicKey ? { ok: true, userId: 'peer' } : refuse('not-the-peer');
    }
    const principal = this.options.access().get(publicKey);
    if (principal === undefined) return refuse('unknown-key');
    if (domain === 'publisher' && !principal.readsEverything) return refuse('restricted-reader');
    if (domain === 'collector' && !principal.writesEverything) return refuse('restricted-writer');
    return { ok: true, userId: principal.name };
  }

  /**
   * The principal behind a ROUTER request, from its routing id, under the allow-list in force now;
   * undefined (and counted) when the id is not a valid session token or its key is not listed.
   */
  principalOf(routingId: Buffer): Principal | undefined {
    const id = routingId.toString('latin1');
    let key = this.sessions.get(id);
    if (key === undefined) {
      key = verifySessionToken(routingId, this.options.keys.publicKey, (k) => this.secretWith(k)) ?? null;
      if (this.sessions.size >= SESSION_CACHE) this.sessions.clear();
      this.sessions.set(id, key);
    }
    const principal = key === null ? undefined : this.options.access().get(key);
    if (principal === undefined)
      this.emit('authFailure', 'snapshot', key === null ? 'bad-session' : 'unknown-key');
    return principal;
  }

  /** A CURVE handshake failed before ZAP was asked (no key, wrong server key, bad box). */
  handshakeFailed(domain: Domain): void {
    this.emit('authFailure', domain, 'handshake');
  }

  private secretWith(clientPublicKey: string): Buffer {
    let secret = this.secrets.get(clientPublicKey);
    if (secret === undefined) {
      secret = sharedSecret(this.options.keys.secretKey, clientPublicKey);
      if (this.secrets.size >= SESSION_CACHE) this.secrets.clear();
      this.secrets.set(clientPublicKey, secret);
    }
    return secret;
  }
}

function isDomain(domain: string): domain is Domain {
  return (DOMAINS as readonly string[]).includes(domain);
}
