/**
 * zeromq.js allows one pending send per socket; a second concurrent call fails with EBUSY. The
 * outbox serialises every send of one socket through a single drain loop, so the rest of the code
 * can `post()` from anywhere. Sockets here use `sendTimeout: 0`, so a send never waits: a full
 * pipe answers EAGAIN at once and the caller decides whether to retry later or drop.
 *
 * The drain loop must never hold the event loop (promise 7). zeromq.js resolves a send at once
 * when the pipe has room, so awaiting sends runs in microtasks and starves timers, heartbeats
 * included; and a queue drained with `Array.shift` costs O(n²). The queue is a `Fifo` (O(1) per
 * message) and the loop gives the event loop a turn whenever it has worked for `budgetMs`.
 */
import { setImmediate as yieldToLoopNow } from 'node:timers/promises';
import { Fifo } from './fifo.js';

type Frames = Buffer[];

interface Item {
  frames: Frames;
  settle?: (error: unknown) => void;
  /** the stream this message belongs to: after one of its messages fails, the rest are not sent */
  stream?: object;
  /** a message of a stream that waits for a full connection to drain (the sender retries it) */
  paced?: boolean;
}

/** What an outbox sends through: a zeromq.js socket, or the server's RouterMux (`paced` for it). */
export interface Sender {
  send(frames: Frames, paced?: boolean): Promise<void>;
}

export interface OutboxOptions {
  /** longest the drain loop runs before it yields to the event loop, in ms (default 10) */
  budgetMs?: number;
  /** a monotonic clock in ms (tests inject a fake) */
  now?: () => number;
  /** gives the event loop a turn (default: setImmediate) */
  yieldToLoop?: () => Promise<unknown>;
}

export const DRAIN_BUDGET_MS = 10;

export class Outbox {
  private queue = new Fifo<Item>();
  private readonly failedStreams = new WeakSet<object>();
  private draining = false;
  private closed = false;
  private readonly budgetMs: number;
  private readonly now: () => number;
  private readonly yieldToLoop: () => Promise<unknown>;

  constructor(
    private readonly socket: Sender,
    /** a posted message failed: why, and the message (its first frame names a ROUTER's peer) */
    private readonly onError: (error: unknown, frames: Frames) => void,
    options: OutboxOptions = {},
  ) {
    this.budgetMs = options.budgetMs ?? DRAIN_BUDGET_MS;
    this.now = options.now ?? (() => performance.now());
    this.yieldToLoop = options.yieldToLoop ?? yieldToLoopNow;
  }

  /** Messages waiting to be sent. */
  get length(): number {
    return this.queue.length;
  }

  /** Queue a message; failures are reported to `onError`. */
  post(frames: Frames): void {
    if (this.closed) return;
    this.queue.push({ frames });
    this.drain();
  }

  /**
   * Queue a message and learn whether it went out. Messages given the same `stream` object stop
   * at the first failure: the ones queued after it are not sent (their promises reject), so no
   * later message of a stream overtakes a failed earlier one. A `paced` message (a snapshot
   * stream's) may also fail with EAGAIN while its connection holds many bytes unsent
   * (server/request-lane.ts), where a reply would not.
   */
  send(frames: Frames, stream?: object, paced = false): Promise<void> {
    if (this.closed) return Promise.reject(new Error('outbox closed'));
    return new Promise((resolve, reject) => {
      const settle = (error: unknown) => (error === undefined ? resolve() : reject(error));
      this.queue.push({ frames, settle, stream, paced });
      this.drain();
    });
  }

  close(): void {
    this.closed = true;
    for (const item of this.queue.takeAll()) item.settle?.(new Error('outbox closed'));
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      let sliceStart = this.now();
      for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
        try {
          if (item.stream && this.failedStreams.has(item.stream))
            throw new Error('an earlier message failed');
          // a zeromq.js socket is given the message alone: its send checks its arguments
          await (item.paced ? this.socket.send(item.frames, true) : this.socket.send(item.frames));
          item.settle?.(undefined);
        } catch (error) {
          if (item.stream) this.failedStreams.add(item.stream);
          if (item.settle) item.settle(error);
          else if (!this.closed) this.onError(error, item.frames);
        }
        if (this.now() - sliceStart > this.budgetMs) {
          await this.yieldToLoop();
          sliceStart = this.now();
        }
      }
    } finally {
      this.draining = false;
    }
  }
}

/** The errno-style code of a zeromq.js error, if any. */
export function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}
