/**
 * Clients following updates over the snapshot socket (TFOLLOW): a PUB cannot filter per
 * subscriber, so a client whose key may read only some subtrees gets its updates here, each one
 * only if it matches one of its prefixes and its read rights. Each follower is its own stream on
 * the ROUTER's outbox (per-follower flow control): once one message to it fails, none queued
 * after it goes out, and the follower is forgotten. A gap it never learnt of would leave its
 * replica silently wrong, while a forgotten follower hears no HUGZ and resyncs.
 */
import type { Principal } from '../security/index.js';
import { encodePublication } from '../wire/index.js';

export interface Follower {
  readonly identity: Buffer;
  readonly prefixes: readonly string[];
  readonly principal: Principal | undefined;
}

export interface FollowerSink {
  /** send on the ROUTER; messages of one `stream` stop at its first failure */
  send(frames: Buffer[], stream: object): Promise<void>;
  /** a message to this follower failed: it is forgotten already */
  failed(error: unknown, identity: Buffer): void;
}

export class Followers {
  private readonly byId = new Map<string, Follower>();

  constructor(private readonly sink: FollowerSink) {}

  get size(): number {
    return this.byId.size;
  }

  /** Follows `prefixes` from now on, replacing what this client followed before. */
  add(identity: Buffer, prefixes: readonly string[], principal: Principal | undefined): void {
    this.byId.set(identity.toString('latin1'), { identity, prefixes: [...prefixes], principal });
  }

  remove(identity: Buffer): void {
    this.byId.delete(identity.toString('latin1'));
  }

  /** The node stepped down, or the allow-list changed: every follower resyncs and follows again. */
  clear(): void {
    this.byId.clear();
  }

  /**
   * A KVPUB (with its `key`) or a HUGZ (no key: every follower gets it), already encoded for the
   * publisher, to every follower that may see it.
   */
  publish(kvmsg: readonly Buffer[], key?: string, deletesPrefix = false): void {
    if (this.byId.size === 0) return;
    const message = encodePublication(kvmsg);
    for (const [id, follower] of this.byId) {
      if (key !== undefined) {
        if (follower.principal && !follower.principal.canRead(key)) continue;
        // A delete by prefix (issue 17) also reaches followers of a narrower prefix under it.
        const under = (prefix: string) => key.startsWith(prefix) || (deletesPrefix && prefix.startsWith(key));
        if (!follower.prefixes.some(under)) continue;
      }
      this.sink.send([follower.identity, ...message], follower).catch((error: unknown) => {
        if (this.byId.get(id) !== follower) return;
        this.byId.delete(id);
        this.sink.failed(error, follower.identity);
      });
    }
  }
}
