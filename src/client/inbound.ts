/**
 * What the client does with each message a server sends, on the agent's state (`InboundHost`):
 * updates and HUGZ from the publisher in use, HUGZ advertisements from the others ('auto'), native
 * replies (sync streams, TNOTACTIVE, TACK, TERROR, TPONG, and the event bus's TEOK and TEVT) and
 * plain CHP snapshots. `guard` is the
 * only way in: nothing a server sends may throw out of a socket handler (it would end the receive
 * loop or the application's process). A malformed message is dropped and counted by the host.
 */
import {
  ADVERTISE,
  decodeKvEntry,
  decodeKvMsg,
  decodeReply,
  decodeRequestId,
  HUGZ,
  isUpdates,
  KTHXBAI,
  Native,
  unpackBatch,
  type Limits,
  type NativeReply,
} from '../wire/index.js';
import type { ChangeList, Entry, Replica, Synced } from '../kv/index.js';
import type { Logger } from '../log/index.js';
import { ReplyError, type DropSource, type Quarantine } from './drops.js';
import { properties, type Finder } from './finder.js';
import type { ResolvedOptions } from './options.js';
import type { Phase, PhaseContext } from './session.js';
import type { SyncAssembly } from './sync.js';
import { busyBackoffMs } from './votes.js';
import type { Writes } from './writes.js';
import type { EventBus } from './bus.js';
import type { KvParity } from './kv.js';

/** The agent's state and transitions the message handlers use (agent.ts implements it). */
export interface InboundHost {
  readonly options: ResolvedOptions;
  readonly limits: Limits;
  readonly log: Logger;
  readonly replica: Replica;
  readonly finder: Finder;
  readonly writes: Writes;
  /** publishing and subscriptions (event bus) */
  readonly bus: EventBus;
  /** revisions, leases, watches from a sequence (issue 17) */
  readonly kv: KvParity;
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
  finishSync(sequence: number, term: string, kind: string, synced: Synced, wasVote?: boolean): void;
  resyncCurrent(): void;
  deliver(changes: ChangeList, resync: boolean): void;
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
  if (server !== host.current) {
    if (host.phase === 'finding' && host.finder.discovery.asked === server)
      return onAskedPublished(host, server, frames);
    return onAdvertisement(host, server, frames);
  }
  const now = host.now();
  host.lastHeard = now;
  host.finder.discovery.heard(server, now);
  if (isUpdates(frames)) return onUpdates(host, frames[1]!, now);
  // An entry straight away (expiresAt 0: a KVPUB's ttl is relative, noted below on receipt).
  const msg = decodeKvEntry(frames, host.limits);
  if (msg.key === HUGZ) {
    const props = properties(msg.properties);
    host.finder.discovery.hugz(server, now, props);
    // A node that is not active says so on its HUGZ (a demoted active keeps sending them).
    const state = props.get(ADVERTISE.STATE);
    if (state !== undefined) return host.findActive(`server says ${state}`);
  }
  confirm(host);
  if (msg.key === HUGZ) {
    if (host.replica.heartbeat(msg.sequence)) host.resyncCurrent();
  } else if (offer(host, msg, now)) host.resyncCurrent();
}

/**
 * Plain CHP: an update from the server asked for a snapshot, which the client subscribed to first,
 * as RFC 12's clients do. It is held, and applied after the snapshot if it is newer: an update
 * published after the snapshot was taken may arrive before the snapshot's first message.
 */
function onAskedPublished(host: InboundHost, server: number, frames: Buffer[]): void {
  const msg = decodeKvEntry(frames, host.limits);
  if (msg.key === HUGZ) return onAdvertisement(host, server, frames);
  holdFor(host, server);
  offer(host, msg, host.now());
}

/** Plain CHP: the replica holds updates from `server` alone; what it held from another goes. */
function holdFor(host: InboundHost, server: number): void {
  if (!host.syncs.holdFrom(server)) host.replica.dropHeld();
  host.replica.beginSync();
}

/** One published update, as the replica takes it; true when it showed a hole (resume). */
function offer(host: InboundHost, entry: Entry, now: number): boolean {
  host.kv.revisions.noteLive(entry, now);
  const { changes, gap } = host.replica.offer(entry);
  host.deliver(changes, false);
  return gap;
}

/** The first message on a new subscription has come. */
function confirm(host: InboundHost): void {
  if (host.subscriptionConfirmed) return;
  host.subscriptionConfirmed = true;
  // The subscription is in force from now on, but updates published between the sync's answer
  // and this moment were missed (a subtree client cannot see the hole). Resume first, so that
  // this message and the ones after it are held, not applied past the hole; with a sync in
  // flight (answered, maybe, before the subscription took effect), once more after it.
  if (host.modeNow !== 'native') return;
  if (host.phase === 'ready') host.resyncCurrent();
  else if (host.phase === 'syncing') host.replica.missedDuringSync();
}

/**
 * A batch of the update stream (wire/updates.ts): its KVPUBs, in order, as if each had come alone.
 * Once one leaves a hole (a whole-map replica), the replica holds the rest until the resume.
 */
function onUpdates(host: InboundHost, packed: Buffer, now: number): void {
  const entries = unpackBatch(packed, host.limits); // a malformed batch throws: nothing applied
  confirm(host);
  let gap = false;
  for (const entry of entries) gap = offer(host, entry, now) || gap;
  if (gap) host.resyncCurrent();
}

/** The replies of the native extension the client takes on its DEALER (TPUB is the transport's). */
const NATIVE_REPLIES: ReadonlySet<string> = new Set([
  Native.SYNC,
  Native.SYNC_END,
  Native.ACK,
  Native.NOT_ACTIVE,
  Native.ERROR,
  Native.PONG,
  Native.EVENT_OK,
  Native.EVENT,
  Native.LEASE_OK,
]);

function onReply(host: InboundHost, server: number, frames: Buffer[]): void {
  if (host.phase === 'closed') return;
  host.finder.discovery.heard(server, host.now());
  const tag = frames[0]?.toString('latin1');
  // A native reply is decoded by the codec: a malformed one throws here and changes nothing.
  if (tag !== undefined && NATIVE_REPLIES.has(tag) && decodeRequestId(frames[1]) !== undefined)
    return onNativeReply(host, server, decodeReply(frames, host.limits));
  if (frames.length === 5 && host.modeNow !== 'native') return onChpSnapshot(host, server, frames);
  // Not a message of the protocol (or an answer in the other mode): counted, the server kept.
  const what = `unexpected reply ${JSON.stringify(tag?.slice(0, 16))} (${frames.length} frames)`;
  host.dropped(server, 'reply', new ReplyError('unexpected-reply', what), false);
}

function onNativeReply(host: InboundHost, server: number, reply: NativeReply): void {
  switch (reply.command) {
    case 'TSYNC':
      if (host.kv.onSync(server, reply)) return; // a watch's replay
      if (!host.syncs.answers(server, reply.reqId)) return; // a stale answer
      host.lastHeard = host.now();
      return host.syncs.batch(reply.batch, host.lastHeard);
    case 'TSYNCEND': {
      if (host.kv.onSync(server, reply)) return;
      if (!host.syncs.answers(server, reply.reqId)) return;
      host.lastHeard = host.now();
      const { synced, fresh } = host.syncs.end();
      return host.finishSync(reply.sequence, reply.term, reply.kind, synced, fresh);
    }
    case 'TNOTACTIVE':
      if (host.finder.onRefused(server, reply)) return;
      if (server !== host.current) return;
      if (
        host.writes.waiting(reply.reqId) ||
        host.syncs.isNative(reply.reqId) ||
        host.bus.waiting(reply.reqId) ||
        host.kv.waiting(reply.reqId)
      )
        host.findActive(`server says ${reply.state}`);
      return;
    case 'TACK':
      if (host.bus.onAck(reply.reqId, reply.sequences)) return host.writes.noteDurability(reply.durability);
      return host.writes.onAck(reply.reqId, reply.sequences, reply.durability);
    case 'TLEASEOK':
      return host.kv.onLeaseOk(reply);
    case 'TEOK':
      return host.bus.onOk(reply.reqId, reply.info);
    case 'TEVT':
      return host.bus.onEvents(server, reply.subId, reply.events, reply.counts);
    case 'TERROR': {
      if (host.writes.onError(reply) || host.bus.onError(reply) || host.kv.onError(reply)) return;
      const { reason, message } = reply;
      if (reason === 'busy' && host.syncs.answers(server, reply.reqId)) {
        // The server is at its cap of snapshot streams: a transient refusal, asked again later.
        const { requestTimeoutMs, random } = host.options;
        return host.syncs.busy(host.now() + busyBackoffMs(requestTimeoutMs, random));
      }
      const endpoint = host.options.servers[server]!.snapshot;
      host.log.warn({ server: endpoint, reason, message }, 'server refused a request');
      return;
    }
    case 'TPONG': {
      const pong = host.finder.onPong(server, reply);
      // a late pong from a quarantined server does not make it the one in use
      if (
        pong?.state === 'ACTIVE' &&
        host.phase === 'finding' &&
        host.modeNow === 'native' &&
        !host.quarantine.has(server, host.now())
      )
        host.choose(server);
      return;
    }
    case 'TPUB':
      return; // comes through the transport as an update, never as a reply
  }
}

function onChpSnapshot(host: InboundHost, server: number, frames: Buffer[]): void {
  const msg = decodeKvMsg(frames, host.limits);
  if (host.phase === 'finding') {
    if (host.quarantine.has(server, host.now())) return; // a late answer from a broken server
    host.current = server;
    host.setPhase('syncing', { server: host.options.servers[server]!.snapshot });
    // updates held from a server asked before, which did not answer, are not this one's
    holdFor(host, server);
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
