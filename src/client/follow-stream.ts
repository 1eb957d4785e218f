/**
 * How the client follows a server's update stream without CURVE: its own ZMTP SUB
 * (zmq/zmtp-sub.ts) behind a gate that passes only what proves its subscriptions (`UpdateGate`).
 */
import type { ServerAddress } from './servers.js';
import { guarded } from './listen.js';
import { HUGZ, isUpdates, updatesPrefix } from '../wire/index.js';
import { ZmtpSub } from '../zmq/index.js';

/**
 * What a subscriber of the update stream (wire/updates.ts) passes on: the batches of its own
 * prefixes (not those of a longer prefix under one of them, which its subscription also matches),
 * and HUGZ once the first of those batches came. The server sends an empty batch as it reads each
 * subscription, and every batch after it holds the prefix's changes; a HUGZ may come before, when
 * it says nothing yet of the subscriptions, and the client would take it as their proof (it
 * resumes at the first message: inbound.ts).
 */
export class UpdateGate {
  /** what to subscribe to: each prefix's topic, and HUGZ */
  readonly subscriptions: readonly string[];
  private readonly own: ReadonlySet<string>;
  private confirmed = false;

  /** `prefixes`: what the client follows; HUGZ among them is taken as the HUGZ subscription */
  constructor(prefixes: readonly string[]) {
    const own = prefixes.filter((prefix) => prefix !== HUGZ);
    this.own = new Set(own);
    this.subscriptions = [...own.map((prefix) => `${prefix}\0`), HUGZ];
  }

  /** A new connection: its HUGZ prove nothing until a batch of its own shows the subscription. */
  reset(): void {
    this.confirmed = false;
  }

  passes(frames: readonly Buffer[]): boolean {
    if (!isUpdates(frames)) return this.confirmed;
    const prefix = updatesPrefix(frames[0]!);
    if (prefix === undefined || !this.own.has(prefix)) return false;
    this.confirmed = true;
    return true;
  }
}

/**
 * The client's own ZMTP subscriber (every message of a TCP read in one call, where libzmq costs an
 * I/O-thread wake-up, a poll, a promise and an ArrayBuffer per frame), on the server's update
 * stream (wire/updates.ts: a batch of updates per message; issue 18). Its subscription takes a
 * few event-loop turns to reach the server: an update published meanwhile is missed, which only a
 * native client recovers (it resumes at the first message on the subscription). That first
 * message is the first batch of one of its own prefixes (an empty one is sent as each
 * subscription is read): a HUGZ before it proves nothing and is not passed on. Without a stream
 * (a P above 65532), the publisher's KVPUBs.
 */
export function followStream(
  server: ServerAddress,
  prefixes: string[],
  handlers: {
    /** the link still follows with this subscriber, and is open */
    current(): boolean;
    update(frames: Buffer[]): void;
    resubscribed(): void;
  },
): ZmtpSub {
  const { updates } = server;
  const gate = updates === undefined ? undefined : new UpdateGate(prefixes);
  let warned = false;
  return new ZmtpSub(
    updates ?? server.publisher,
    gate?.subscriptions ?? prefixes,
    (updates === undefined ? server.frames?.sub : server.frames?.updates) ?? -1,
    guarded((frames) => {
      if (handlers.current() && (!gate || gate.passes(frames))) handlers.update(frames);
    }),
    (error) => {
      // Once per subscriber: a broken publisher would otherwise warn at every reconnect (10/s).
      if (!handlers.current() || warned) return;
      warned = true;
      process.emitWarning(`twinstar client: dropped the publisher connection: ${error.message}`);
    },
    () => {
      gate?.reset();
      if (handlers.current()) handlers.resubscribed();
    },
  );
}
