/**
 * What the client does with each message a server sends, on the agent's state (`InboundHost`):
 * updates and HUGZ from the publisher in use, HUGZ advertisements from the others ('auto'), native
 * replies (sync streams, TNOTACTIVE, TACK, TERROR, TPONG) and plain CHP snapshots. `guard` is the
 * only way in: nothing a server sends may throw out of a socket handler (it would end the receive
 * loop or the application's process). A malformed message is dropped and counted by the host.
 */
import {
  ADVERTISE,
  decodeKvMsg,
  decodeRequestId,
  decodeSequence,
  HUGZ,
  KTHXBAI,
  KvMsgError,
  Native,
  unpackBatch,
  type Limits,
} from '../wire/index.js';
import type { Entry, Replica, ReplicaChange } from '../kv/index.js';
import type { Logger } from '../log/index.js';
import { ReplyError, type DropSource, type Quarantine } from './drops.js';
import { properties, type Finder } from './finder.js';
import type { ResolvedOptions } from './options.js';
import type { Phase, PhaseContext } from './session.js';
import type { SyncAssembly } from './sync.js';
import { busyBackoffMs } from './votes.js';
import type { Writes } from './writes.js';

/** The agent's state and transitions the message handlers use (agent.ts implements it). */
export interface InboundHost {
  readonly options: ResolvedOptions;
  readonly limits: Limits;
  readonly log: Logger;
  readonly replica: Replica;
  readonly finder: Finder;
  readonly writes: Writes;
  readonly syncs: SyncAssembly;
  readonly quarantine: Quarantine;
  readonly phase: Phase;
  readonly modeNow: string;
  /** the server in use (-1: none) */
  current: number;
  /** when the server in use was last heard */
  lastHeard: number;
  /** the first message on a new subscription has come */
  subscriptionConfirmed: boolean;
  now(): number;
  setPhase(next: Phase, context: Omit<PhaseContext, 'now'>): void;
  setMode(mode: 'native' | 'chp'): void;
  findActive(reason: string | undefined): void;
  probe(): void;
  choose(server: number): void;
  startFollowing(): void;
  sendSync(server: number, fresh: boolean): void;
  finishSync(sequence: number, term: string, kind: string, entries: Entry[], wasVote?: boolean): void;
  resyncCurrent(): void;
  deliver(changes: ReplicaChange[], resync: boolean): void;
  dropped(server: number, source: DropSource, error: unknown, broken?: boolean): void;
}

/** Every message from a socket comes through here. */
export function guard(host: InboundHost, server: number, source: DropSource, frames: Buffer[]): void {
  try {
    if (source === 'reply') onReply(host, server, frames);
    else onPublished(host, server, frames);
  } catch (error) {
    try {
      host.dropped(server, source, error);
    } catch (inner) {
      host.log.error({ err: inner }, 'failed to handle a dropped message');
    }
  }
}

function onPublished(host: InboundHost, server: number, frames: Buffer[]): void {
  if (host.phase === 'closed') return;
  if (server !== host.current) return onAdvertisement(host, server, frames);
  const now = host.now();
  host.lastHeard = now;
  host.finder.discovery.heard(server, now);
  const msg = decodeKvMsg(frames, host.limits);
  if (msg.key === HUGZ) {
    const props = properties(msg.properties);
    host.finder.discovery.hugz(server, now, props);
    // A node that is not active says so on its HUGZ (a demoted active keeps sending them).
    const state = props.get(ADVERTISE.STATE);
    if (state !== undefined) return host.findActive(`server says ${state}`);
  }
  if (!host.subscriptionConfirmed) {
    host.subscriptionConfirmed = true;
    // The subscription is in force from now on, but updates published between the sync's answer
    // and this moment were missed (a subtree client cannot see the hole). Resume first, so that
    // this message and the ones after it are held, not applied past the hole.
    if (host.phase === 'ready' && host.modeNow === 'native') host.resyncCurrent();
  }
  if (msg.key === HUGZ) {
    if (host.replica.heartbeat(msg.sequence)) host.resyncCurrent();
  } else {
    const { changes, gap } = host.replica.offer({ ...msg, expiresAt: 0 });
    host.deliver(changes, false);
    if (gap) host.resyncCurrent();
  }
}

function onReply(host: InboundHost, server: number, frames: Buffer[]): void {
  if (host.phase === 'closed') return;
  host.finder.discovery.heard(server, host.now());
  const tag = frames[0]?.toString('latin1');
  const reqId = decodeRequestId(frames[1]);
  if (
    reqId !== undefined &&
    tag !== undefined &&
    tag.startsWith('T') &&
    onNativeReply(host, server, tag, reqId, frames)
  ) {
    return;
  }
  if (frames.length === 5 && host.modeNow !== 'native') return onChpSnapshot(host, server, frames);
  // Not a message of the protocol (or an answer in the other mode): counted, the server kept.
  const what = `unexpected reply ${JSON.stringify(tag?.slice(0, 16))} (${frames.length} frames)`;
  host.dropped(server, 'reply', new ReplyError('unexpected-reply', what), false);
}

const text = (frame: Buffer | undefined) => (frame ?? Buffer.alloc(0)).toString();

/** Returns false if the frames are not a native reply after all. */
function onNativeReply(
  host: InboundHost,
  server: number,
  tag: string,
  reqId: number,
  frames: Buffer[],
): boolean {
  switch (tag) {
    case Native.SYNC:
    case Native.SYNC_END: {
      if (!host.syncs.answers(server, reqId)) return true; // a stale answer
      // Decode before acting on it: a malformed answer throws here and changes nothing.
      if (frames[2] === undefined) throw new KvMsgError('frame-count', `${tag} without its data frame`);
      const batch = tag === Native.SYNC ? unpackBatch(frames[2], host.limits) : undefined;
      const sequence = tag === Native.SYNC_END ? decodeSequence(frames[2]) : -1;
      host.lastHeard = host.now();
      if (batch) {
        host.syncs.batch(batch, host.lastHeard);
      } else {
        const { entries, fresh } = host.syncs.end();
        host.finishSync(sequence, text(frames[3]), text(frames[4]), entries, fresh);
      }
      return true;
    }
    case Native.NOT_ACTIVE: {
      if (host.finder.onRefused(server, reqId, frames)) return true;
      if (server !== host.current) return true;
      if (host.writes.waiting(reqId) || host.syncs.isNative(reqId))
        host.findActive(`server says ${text(frames[2])}`);
      return true;
    }
    case Native.ACK:
      host.writes.onAck(reqId, frames);
      return true;
    case Native.ERROR: {
      if (host.writes.onError(reqId, frames)) return true;
      const reason = text(frames[2]);
      if (reason === 'busy' && host.syncs.answers(server, reqId)) {
        // The server is at its cap of snapshot streams: a transient refusal, asked again later.
        const { requestTimeoutMs, random } = host.options;
        host.syncs.busy(host.now() + busyBackoffMs(requestTimeoutMs, random));
        return true;
      }
      const message = text(frames[3]);
      const endpoint = host.options.servers[server]!.snapshot;
      host.log.warn({ server: endpoint, reason, message }, 'server refused a request');
      return true;
    }
    case Native.PONG: {
      const pong = host.finder.onPong(server, reqId, frames);
      // a late pong from a quarantined server does not make it the one in use
      if (
        pong?.state === 'ACTIVE' &&
        host.phase === 'finding' &&
        host.modeNow === 'native' &&
        !host.quarantine.has(server, host.now())
      )
        host.choose(server);
      return true;
    }
    default:
      return false;
  }
}

function onChpSnapshot(host: InboundHost, server: number, frames: Buffer[]): void {
  const msg = decodeKvMsg(frames, host.limits);
  if (host.phase === 'finding') {
    if (host.quarantine.has(server, host.now())) return; // a late answer from a broken server
    host.current = server;
    host.setPhase('syncing', { server: host.options.servers[server]!.snapshot });
    host.replica.beginSync();
    host.syncs.startChp(server, host.now());
    host.startFollowing();
  }
  if (!host.syncs.receivingChp(server)) return;
  host.lastHeard = host.now();
  if (msg.key === KTHXBAI) {
    const entries = host.syncs.chpEnd();
    host.finder.discovery.advertised(server, properties(msg.properties));
    if (host.modeNow === 'auto' && host.finder.discovery.native(server) === true) {
      // a twinstar server answered the RFC 12 way: from now on, its native protocol
      host.setMode('native');
      return host.sendSync(server, true);
    }
    if (host.modeNow === 'auto') host.setMode('chp');
    host.finishSync(msg.sequence, '', 'snapshot', entries);
  } else {
    host.syncs.chpEntry({ ...msg, expiresAt: 0 }, host.lastHeard);
  }
}

/** A HUGZ from a server not in use ('auto' listens to every publisher): learn what it says. */
function onAdvertisement(host: InboundHost, server: number, frames: Buffer[]): void {
  const msg = decodeKvMsg(frames, host.limits);
  if (msg.key !== HUGZ) return;
  const native = host.finder.onHugzElsewhere(server, msg.properties);
  if (native === undefined || host.modeNow !== 'auto' || host.phase !== 'finding') return;
  // twinstar=1: the native protocol (TPING probes from now on); a HUGZ without it: plain CHP
  host.setMode(native ? 'native' : 'chp');
  host.finder.listen(false, -1);
  host.probe();
}
