/**
 * Snapshot requests: the plain RFC 12 ICANHAZ? (KVSYNC* then KTHXBAI) and the native TSNAP and
 * TRESUME (TSYNC* then TSYNCEND). The router has already rate-limited, checked read rights and
 * admitted the request; these handlers take the point-in-time view and stream it (snapshot-streams.ts).
 */
import type { Principal } from '../../security/index.js';
import {
  encodeKthxbai,
  encodeKvMsg,
  encodePackedSync,
  encodeReply,
  Native,
  type NativeRequest,
  chunkBytes,
  packedSize,
} from '../../wire/index.js';
import { ArrayView, type Entry, type KvView } from '../../kv/index.js';
import {
  chunksThenLast,
  QUEUED_FRAME_BYTES,
  type PreparedStream,
  type StreamEnd,
} from '../snapshot-streams.js';
import { measureView, packedViewMessages, viewMessages, type Keep } from '../view-streams.js';
import type { ServerContext } from '../context.js';

/** Plain RFC 12 snapshot, after the vote was accepted. */
export function serveChpSnapshot(
  ctx: ServerContext,
  identity: Buffer,
  subtree: string,
  principal: Principal | undefined,
): void {
  const started = ctx.now();
  const generation = ctx.generation();
  let count = 0;
  let taken: KvView | undefined;
  const ending = ctx.streams.serve(identity.toString('latin1'), async () => {
    // The point-in-time view and its sequence are fixed now; it is read a run at a time.
    const { sequence, view } = ctx.store.keysView(subtree);
    taken = view;
    if (!(await whenPublishable(ctx, sequence, generation))) return undefined;
    // One KVSYNC per entry: identity and five frames, the entry's bytes in them.
    const cut = { maxEntries: 1, maxBytes: Infinity };
    const keep = readable(principal);
    const measured = await measureView(
      view.again(),
      keep,
      cut,
      6 * QUEUED_FRAME_BYTES,
      ctx.quotas.clientQueue,
    );
    if (ctx.generation() !== generation) return undefined;
    count = measured.entries;
    return {
      bytes: measured.bytes,
      source: chunksThenLast(
        viewMessages(view.again(), keep, cut),
        (message) => [identity, ...encodeKvMsg(message.entries[0]!)],
        () => [identity, ...encodeKthxbai(sequence, subtree, ctx.advertised)],
      ),
    };
  });
  // At the cap: a CHP client is not told (RFC 12 has no such answer); dropped and counted.
  if (ending === undefined) {
    ctx.events.emit('dropped', 'snapshot', 'busy');
    return;
  }
  void ending.then((end) => {
    taken?.close();
    if (end === 'busy') ctx.events.emit('dropped', 'snapshot', 'busy');
    streamEnded(ctx, end);
    if (end === 'done') ctx.events.emit('snapshot', 'chp', count, ctx.now() - started);
  });
}

/**
 * TWATCH (issue 17): the changes under a prefix after a sequence, from the replay window, as a
 * resume; TERROR 'history-unavailable' when the window no longer reaches back that far.
 */
export function serveWatch(
  ctx: ServerContext,
  identity: Buffer,
  request: Extract<NativeRequest, { command: 'TWATCH' }>,
  principal: Principal | undefined,
): void {
  const { reqId, prefix, fromSequence } = request;
  const changes = fromSequence >= ctx.store.sequence ? [] : ctx.store.keyChangesSince(fromSequence, prefix);
  if (changes === undefined) {
    const oldest = ctx.store.oldestReplayable;
    return ctx.reply(identity, {
      command: 'TERROR',
      reqId,
      reason: 'history-unavailable',
      message: `the history after sequence ${fromSequence} is no longer kept: oldest ${oldest}`,
    });
  }
  const resume = { command: 'TRESUME' as const, reqId, subtree: prefix, fromSequence, term: '' };
  serveNativeSync(ctx, identity, resume, principal, changes);
}

/** Native snapshot or resume, after admission: packed chunks, then TSYNCEND saying which it was. */
export function serveNativeSync(
  ctx: ServerContext,
  identity: Buffer,
  request: Extract<NativeRequest, { command: 'TSNAP' | 'TRESUME' }>,
  principal: Principal | undefined,
  /** a watch's changes, already taken from the window */
  given?: Entry[],
): void {
  const { reqId, subtree } = request;
  const started = ctx.now();
  const resumedAt = ctx.store.sequence;
  const term = ctx.policy.term();
  const generation = ctx.generation();
  let changes: Entry[] | undefined = given;
  if (given === undefined && request.command === Native.RESUME) {
    const { fromSequence, term: fromTerm } = request;
    if (ctx.policy.onTimeline(fromSequence, fromTerm))
      changes = ctx.store.keyChangesSince(fromSequence, subtree);
  }
  const kind = changes === undefined ? 'snapshot' : 'resume';
  let count = 0;
  let taken: KvView | undefined;
  const ending = ctx.streams.serve(
    identity.toString('latin1'),
    async (): Promise<PreparedStream | undefined> => {
      // The point-in-time view and its sequence are fixed now; it is read a run at a time.
      const { sequence, view } = changes
        ? { sequence: resumedAt, view: new ArrayView(changes) }
        : ctx.store.keysView(subtree);
      taken = view;
      if (!(await whenPublishable(ctx, sequence, generation))) return undefined;
      const keep = readable(principal);
      // Chunks as large as allowed; if a full pipe of those would not fit the per-client byte
      // budget, cut again, small enough that it does.
      const overhead = 4 * QUEUED_FRAME_BYTES;
      const { clientQueue, maxSnapshotBytesPerClient } = ctx.quotas;
      const cutAt = (maxBytes: number) => ({
        maxEntries: ctx.options.snapshotChunk,
        maxBytes,
        sizeOf: packedSize,
      });
      let cut = cutAt(chunkBytes(ctx.options.limits));
      let measured = await measureView(view.again(), keep, cut, overhead, clientQueue);
      if (measured.bytes > maxSnapshotBytesPerClient) {
        cut = cutAt(streamChunkBytes(ctx));
        measured = await measureView(view.again(), keep, cut, overhead, clientQueue);
      }
      if (ctx.generation() !== generation) return undefined;
      count = measured.entries;
      return {
        bytes: measured.bytes,
        source: chunksThenLast(
          packedViewMessages(view.again(), keep, cut),
          (packed) => [identity, ...encodePackedSync(reqId, packed)],
          () => [identity, ...encodeReply({ command: 'TSYNCEND', reqId, sequence, term, kind })],
        ),
      };
    },
  );
  if (ending === undefined) {
    const { streams, quotas } = ctx;
    refuseBusy(
      ctx,
      identity,
      reqId,
      `${streams.size} snapshot streams in progress, limit ${quotas.maxSnapshotStreams}`,
    );
    return;
  }
  void ending.then((end) => {
    taken?.close();
    if (end === 'busy') {
      const { streams, quotas } = ctx;
      refuseBusy(
        ctx,
        identity,
        reqId,
        `snapshot streams hold ${streams.reservedBytes} bytes, limit ${quotas.maxSnapshotBytes}`,
      );
    }
    streamEnded(ctx, end);
    if (end === 'done')
      ctx.events.emit('snapshot', kind === 'resume' ? 'resume' : 'native', count, ctx.now() - started);
  });
}

/**
 * A snapshot or resume may show clients only what the passive holds, like the publisher: wait
 * until its sequence is durable. False if this node stopped being active meanwhile, or is active
 * again under a later generation (a later term: the view taken belongs to the old one). The same
 * generation guard follows the filtering, which runs across event-loop turns.
 */
function whenPublishable(ctx: ServerContext, sequence: number, generation: number): Promise<boolean> {
  if (sequence <= ctx.policy.publishableUpTo()) return Promise.resolve(true);
  return ctx.policy.durable(sequence).then(
    () => ctx.isActive() && ctx.generation() === generation,
    () => false,
  );
}

/** At a cap: the client is told so, backs off and asks again (docs/protocol.md). */
function refuseBusy(ctx: ServerContext, identity: Buffer, reqId: number, detail: string): void {
  ctx.reply(identity, { command: 'TERROR', reqId, reason: 'busy', message: detail });
  ctx.events.emit('dropped', 'snapshot', 'busy');
}

/**
 * Target bytes of one native snapshot chunk: a pipe full of them (clientQueue) stays within the
 * per-client budget, but never below 4 KiB (tiny chunks cost more than they save) nor above what
 * a client's socket accepts.
 */
function streamChunkBytes(ctx: ServerContext): number {
  const { quotas } = ctx;
  const fit = Math.floor(quotas.maxSnapshotBytesPerClient / quotas.clientQueue) - 4 * QUEUED_FRAME_BYTES;
  return Math.min(chunkBytes(ctx.options.limits), Math.max(4096, fit));
}

/** A stream that did not finish is counted under why (the caps' refusals are counted apart). */
function streamEnded(ctx: ServerContext, end: StreamEnd): void {
  if (end === 'client-gone' || end === 'send-failed' || end === 'stalled')
    ctx.events.emit('dropped', 'snapshot', end);
}

/** The keys the principal may read: undefined for all of them (security off, or a principal that reads everything). */
function readable(principal: Principal | undefined): Keep {
  if (principal === undefined || principal.readsEverything) return undefined;
  return (key) => principal.canRead(key);
}
