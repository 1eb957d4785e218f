/**
 * The server's security decisions in one place, free of sockets: which key may connect to which
 * socket (the ZAP domains), which principal sent a ROUTER request (its session token, bound to
 * the key its connection authenticated with: binding.ts), and the counting of every refusal. The
 * clone server and the peer link ask; the guard answers.
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
import { DEFAULT_SESSION_LIFETIME_MS, SessionBinder, type BindRefusal } from './binding.js';
import { readSessionToken } from './session.js';
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
  /** how long after it was minted a session token may start a connection (ms, default 5 min) */
  sessionLifetimeMs?: number;
}

const SECRET_CACHE = 10_000;

export class Guard extends EventEmitter<GuardEvents> {
  private readonly secrets = new Map<string, Buffer>();
  private readonly binder: SessionBinder;

  constructor(private readonly options: GuardOptions) {
    super();
    this.binder = new SessionBinder({
      lifetimeMs: options.sessionLifetimeMs ?? DEFAULT_SESSION_LIFETIME_MS,
      read: (id) => readSessionToken(id, options.keys.publicKey, (k) => this.secretWith(k)),
    });
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
   * The ZAP answer, given once the connection may be let in: a snapshot connection waits until
   * the one admitted before it has reached the ROUTER, so each session is bound to its own key.
   */
  async admit(domain: string, publicKey: string): Promise<ZapDecision> {
    const decision = this.authorize(domain, publicKey);
    if (decision.ok && domain === 'snapshot') await this.binder.admit(publicKey);
    return decision;
  }

  /**
   * An empty message from `routingId` on the snapshot ROUTER: a connection began or ended. A new
   * connection whose token is not bound to it is counted as `bad-session`; returns why.
   */
  connectionNotice(routingId: Buffer): BindRefusal | undefined {
    const refused = this.binder.notice(routingId);
    if (refused) this.emit('authFailure', 'snapshot', 'bad-session');
    return refused;
  }

  /**
   * The principal behind a ROUTER request, from its routing id, under the allow-list in force now;
   * undefined (and counted) when the connection holds no session (its token was not genuine,
   * named another key than the connection's, or was stale; or the session ended), or its key is
   * no longer listed.
   */
  principalOf(routingId: Buffer): Principal | undefined {
    const key = this.binder.keyOf(routingId);
    const principal = key === undefined ? undefined : this.options.access().get(key);
    if (principal === undefined)
      this.emit('authFailure', 'snapshot', key === undefined ? 'bad-session' : 'unknown-key');
    return principal;
  }

  /** Snapshot-socket connections that hold a session now. */
  get liveSessions(): number {
    return this.binder.liveSessions;
  }

  /** A CURVE handshake failed before ZAP was asked (no key, wrong server key, bad box). */
  handshakeFailed(domain: Domain): void {
    this.emit('authFailure', domain, 'handshake');
  }

  private secretWith(clientPublicKey: string): Buffer {
    let secret = this.secrets.get(clientPublicKey);
    if (secret === undefined) {
      secret = sharedSecret(this.options.keys.secretKey, clientPublicKey);
      if (this.secrets.size >= SECRET_CACHE) this.secrets.clear();
      this.secrets.set(clientPublicKey, secret);
    }
    return secret;
  }
}

function isDomain(domain: string): domain is Domain {
  return (DOMAINS as readonly string[]).includes(domain);
}
