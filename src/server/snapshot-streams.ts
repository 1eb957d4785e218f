/**
 * Snapshot streams in progress on the snapshot ROUTER, and the caps that bound them (issue 13 B3).
 *
 * A stream walks a point-in-time array (the view `KvMap.snapshot` returns) with an index and
 * encodes each message only when it is about to be sent, so what a stream holds is that array of
 * references plus one encoded message; the client's ZeroMQ pipe holds at most `clientQueue`
 * messages more. What bounds memory is the number of streams:
 *
 *  - at most `maxStreamsPerClient` per client connection: a client asking for one more stops its
 *    oldest stream (it asked again, so it no longer reads that one; two interleaved would be
 *    garbage anyway), counted as refused 'superseded';
 *  - at most `maxStreams` on the server: beyond that a request is refused, counted 'server-busy'
 *    (the caller answers TERROR 'busy' to a native request, silence to ICANHAZ?);
 *  - a stream stops as soon as its client is gone (EHOSTUNREACH on any send to it, through
 *    `clientGone`), or when the client has taken nothing for `idleMs`.
 */
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { DRAIN_BUDGET_MS, errorCode } from '../zmq/outbox.js';

/** Messages of one stream, made on demand: `undefined` once all went out. */
export interface StreamSource {
  next(): Buffer[] | undefined;
}

export type StreamRefusal = 'server-busy' | 'superseded';
export type StreamEnd = 'done' | 'client-gone' | 'send-failed' | 'stalled' | 'stopped';

export interface StreamCaps {
  /** snapshot streams in progress on the server (waiting for durability included) */
  maxStreams: number;
  /** snapshot streams in progress towards one client connection */
  maxStreamsPerClient: number;
  /** a stream whose client takes nothing for this long is stopped */
  idleMs: number;
}

export interface StreamHooks {
  /** sends one message, at once or not at all (the outbox of a `sendTimeout: 0` socket) */
  send(frames: Buffer[]): Promise<void>;
  /** the number of streams in progress changed */
  onCount?(count: number): void;
  onRefused?(reason: StreamRefusal): void;
  now?(): number;
}

export interface Stream {
  readonly client: string;
  stopped: boolean;
}

const BACKOFF_MS = 5;

export class SnapshotStreams {
  private readonly byClient = new Map<string, Stream[]>();
  private count = 0;
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

  /**
   * Start a stream to `client`: `prepare` takes the view (it may wait, e.g. for durability) and
   * returns its source, or undefined to give up. Resolves with how the stream ended; returns
   * undefined at once, having started nothing, when the server is at its cap.
   */
  serve(
    client: string,
    prepare: (stream: Stream) => Promise<StreamSource | undefined>,
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
    const stream: Stream = { client, stopped: false };
    own.push(stream);
    this.byClient.set(client, own);
    this.count++;
    this.hooks.onCount?.(this.count);
    return (async () => {
      try {
        const source = await prepare(stream);
        if (source === undefined || stream.stopped) return 'stopped';
        return await this.pump(stream, source);
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

  private release(stream: Stream): void {
    if (stream.stopped) return;
    stream.stopped = true;
    const own = this.byClient.get(stream.client);
    const i = own?.indexOf(stream) ?? -1;
    if (own && i >= 0) own.splice(i, 1);
    if (own?.length === 0) this.byClient.delete(stream.client);
    this.count--;
    this.hooks.onCount?.(this.count);
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

/** A plain RFC 12 snapshot: one KVSYNC per entry, encoded when sent, then KTHXBAI. */
export function eachThenLast<T>(
  items: readonly T[],
  encode: (item: T) => Buffer[],
  last: () => Buffer[],
): StreamSource {
  let i = 0;
  return {
    next: () => {
      if (i < items.length) return encode(items[i++]!);
      if (i++ === items.length) return last();
      return undefined;
    },
  };
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
