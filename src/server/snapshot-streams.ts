/**
 * Snapshot streams in progress on the snapshot ROUTER, and the caps that bound them (issue 13 B3).
 *
 * A stream reads a point-in-time view (src/kv/view.ts, through view-streams.ts) a run at a time
 * and encodes each message only when it is about to be sent, so what a stream holds in JavaScript
 * is the view (an array of references in memory, a read transaction on a durable node) plus one
 * run and one encoded message. What it can hold in ZeroMQ is bounded too: the
 * client's pipe takes at most `clientQueue` messages, so a stream never has more buffered than
 * `min(all its bytes, clientQueue × its largest message)`. The caller works that figure out from
 * the view before the stream starts (`PreparedStream.bytes`), and the caps bound it:
 *
 *  - at most `maxStreamsPerClient` per client connection: a client asking for one more stops its
 *    oldest stream (it asked again, so it no longer reads that one; two interleaved would be
 *    garbage anyway), counted as refused 'superseded';
 *  - at most `maxStreams` on the server: beyond that a request is refused, counted 'server-busy'
 *    (the caller answers TERROR 'busy' to a native request, silence to ICANHAZ?);
 *  - at most `maxBytes` of such worst-case buffered bytes over all streams, and `maxBytesPerClient`
 *    for one stream: a stream that would take the sum past `maxBytes`, or is by itself larger than
 *    `maxBytesPerClient`, is refused 'bytes-busy' (ends 'busy') unless it would be the only stream
 *    holding bytes, so every snapshot can still be served, one oversize stream at a time;
 *  - a stream stops as soon as its client is gone (EHOSTUNREACH on any send to it, through
 *    `clientGone`), or when the client has taken nothing for `idleMs`.
 *
 * The byte budgets hold while streams are in progress. A stream that has put its last message in
 * the pipe has ended; what its client has not read yet stays bounded per connection by the pipe
 * (`clientQueue` messages), like any other reply, and is no longer counted here: ZeroMQ does not
 * say when a peer has read a message.
 */
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { DRAIN_BUDGET_MS, errorCode } from '../zmq/index.js';

/** Messages of one stream, made on demand: `undefined` once all went out. */
export interface StreamSource {
  next(): Buffer[] | undefined;
}

export type StreamRefusal = 'server-busy' | 'superseded' | 'bytes-busy';
export type StreamEnd = 'done' | 'client-gone' | 'send-failed' | 'stalled' | 'stopped' | 'busy';

/** What `prepare` hands back: the messages, and the most bytes they can hold buffered at once. */
export interface PreparedStream {
  source: StreamSource;
  bytes: number;
}

export interface StreamCaps {
  /** snapshot streams in progress on the server (waiting for durability included) */
  maxStreams: number;
  /** snapshot streams in progress towards one client connection */
  maxStreamsPerClient: number;
  /** a stream whose client takes nothing for this long is stopped */
  idleMs: number;
  /** worst-case buffered bytes of all streams together (see the module comment) */
  maxBytes: number;
  /** worst-case buffered bytes of one stream */
  maxBytesPerClient: number;
}

export interface StreamHooks {
  /** sends one message, at once or not at all (the outbox of a `sendTimeout: 0` socket) */
  send(frames: Buffer[]): Promise<void>;
  /** the number of streams in progress, or the bytes they hold at most, changed */
  onCount?(count: number, bytes: number): void;
  onRefused?(reason: StreamRefusal): void;
  now?(): number;
}

export interface Stream {
  readonly client: string;
  stopped: boolean;
  /** worst-case buffered bytes reserved for it once it started sending */
  bytes: number;
}

const BACKOFF_MS = 5;

export class SnapshotStreams {
  private readonly byClient = new Map<string, Stream[]>();
  private count = 0;
  /** worst-case buffered bytes of the streams that are sending, and how many of those hold any */
  private bytes = 0;
  private holding = 0;
  private readonly now: () => number;

  constructor(
    private readonly caps: StreamCaps,
    private readonly hooks: StreamHooks,
  ) {
    this.now = hooks.now ?? Date.now;
  }

  /** Streams in progress. */
  get size(): number {
    return this.count;
  }

  /** Worst-case bytes the streams in progress can hold buffered. */
  get reservedBytes(): number {
    return this.bytes;
  }

  /**
   * Start a stream to `client`: `prepare` takes the view (it may wait, e.g. for durability) and
   * returns its source and worst-case buffered bytes, or undefined to give up. Resolves with how
   * the stream ended ('busy' when its bytes did not fit); returns undefined at once, having started
   * nothing, when the server is at its stream cap.
   */
  serve(
    client: string,
    prepare: (stream: Stream) => Promise<PreparedStream | undefined>,
  ): Promise<StreamEnd> | undefined {
    const own = this.byClient.get(client) ?? [];
    while (own.length >= this.caps.maxStreamsPerClient && own.length > 0) {
      this.release(own[0]!);
      this.hooks.onRefused?.('superseded');
    }
    if (this.count >= this.caps.maxStreams) {
      this.hooks.onRefused?.('server-busy');
      return undefined;
    }
    const stream: Stream = { client, stopped: false, bytes: 0 };
    own.push(stream);
    this.byClient.set(client, own);
    this.count++;
    this.report();
    return (async () => {
      try {
        const prepared = await prepare(stream);
        if (prepared === undefined || stream.stopped) return 'stopped';
        if (!this.reserve(stream, prepared.bytes)) {
          this.hooks.onRefused?.('bytes-busy');
          return 'busy';
        }
        return await this.pump(stream, prepared.source);
      } catch {
        return 'send-failed';
      } finally {
        this.release(stream);
      }
    })();
  }

  /** The client is gone (a send to it found no route): stop all its streams now. */
  clientGone(client: string): void {
    for (const stream of [...(this.byClient.get(client) ?? [])]) this.release(stream);
  }

  /** Stop every stream (the server closes or stops being active). */
  stopAll(): void {
    for (const streams of [...this.byClient.values()])
      for (const stream of [...streams]) this.release(stream);
  }

  /** Takes `bytes` of the budgets for `stream`, unless they do not fit and other streams hold some. */
  private reserve(stream: Stream, bytes: number): boolean {
    const fits = bytes <= this.caps.maxBytesPerClient && this.bytes + bytes <= this.caps.maxBytes;
    if (!fits && this.holding > 0) return false;
    stream.bytes = bytes;
    this.bytes += bytes;
    if (bytes > 0) this.holding++;
    this.report();
    return true;
  }

  private report(): void {
    this.hooks.onCount?.(this.count, this.bytes);
  }

  private release(stream: Stream): void {
    if (stream.stopped) return;
    stream.stopped = true;
    this.bytes -= stream.bytes;
    if (stream.bytes > 0) this.holding--;
    stream.bytes = 0;
    const own = this.byClient.get(stream.client);
    const i = own?.indexOf(stream) ?? -1;
    if (own && i >= 0) own.splice(i, 1);
    if (own?.length === 0) this.byClient.delete(stream.client);
    this.count--;
    this.report();
  }

  /**
   * One message at a time (a later one must never overtake one that met a full pipe), yielding
   * to the event loop after each DRAIN_BUDGET_MS of work. A full pipe (EAGAIN) is retried after
   * a short pause until the client has taken nothing for `idleMs`.
   */
  private async pump(stream: Stream, source: StreamSource): Promise<StreamEnd> {
    let lastProgress = this.now();
    let sliceStart = performance.now();
    for (let frames = source.next(); frames !== undefined;) {
      if (stream.stopped) return 'stopped';
      try {
        await this.hooks.send(frames);
      } catch (error) {
        const code = errorCode(error);
        if (code === 'EHOSTUNREACH') {
          this.clientGone(stream.client);
          return 'client-gone';
        }
        if (code !== 'EAGAIN') return 'send-failed';
        if (this.now() - lastProgress > this.caps.idleMs) return 'stalled';
        await sleep(BACKOFF_MS);
        continue;
      }
      lastProgress = this.now();
      frames = source.next();
      if (performance.now() - sliceStart > DRAIN_BUDGET_MS) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
    return 'done';
  }
}

/** Chunks from an iterator (packed when sent), then a last message. */
export function chunksThenLast<T>(
  chunks: Iterator<T>,
  encode: (chunk: T) => Buffer[],
  last: () => Buffer[],
): StreamSource {
  let ended = false;
  return {
    next: () => {
      if (ended) return undefined;
      const step = chunks.next();
      if (!step.done) return encode(step.value);
      ended = true;
      return last();
    },
  };
}

/** What ZeroMQ keeps per queued frame besides its bytes (a message header), roughly. */
export const QUEUED_FRAME_BYTES = 64;
