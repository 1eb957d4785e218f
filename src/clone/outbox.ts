/**
 * zeromq.js allows one pending send per socket; a second concurrent call fails with EBUSY. The
 * outbox serialises every send of one socket through a single drain loop, so the rest of the code
 * can `post()` from anywhere. Sockets here use `sendTimeout: 0`, so a send never waits: a full
 * pipe answers EAGAIN at once and the caller decides whether to retry later or drop.
 */
import type { Socket } from 'zeromq';

type Frames = Buffer[];

interface Item {
  frames: Frames;
  settle?: (error: unknown) => void;
  /** the stream this message belongs to: after one of its messages fails, the rest are not sent */
  stream?: object;
}

export class Outbox {
  private queue: Item[] = [];
  private readonly failedStreams = new WeakSet<object>();
  private draining = false;
  private closed = false;

  constructor(
    private readonly socket: Pick<Socket & { send(frames: Frames): Promise<void> }, 'send'>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Queue a message; failures are reported to `onError`. */
  post(frames: Frames): void {
    if (this.closed) return;
    this.queue.push({ frames });
    this.drain();
  }

  /**
   * Queue a message and learn whether it went out. Messages given the same `stream` object stop
   * at the first failure: the ones queued after it are not sent (their promises reject), so no
   * later message of a stream overtakes a failed earlier one.
   */
  send(frames: Frames, stream?: object): Promise<void> {
    if (this.closed) return Promise.reject(new Error('outbox closed'));
    return new Promise((resolve, reject) => {
      const settle = (error: unknown) => (error === undefined ? resolve() : reject(error));
      this.queue.push({ frames, settle, stream });
      this.drain();
    });
  }

  close(): void {
    this.closed = true;
    const left = this.queue;
    this.queue = [];
    for (const item of left) item.settle?.(new Error('outbox closed'));
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
        try {
          if (item.stream && this.failedStreams.has(item.stream))
            throw new Error('an earlier message failed');
          await this.socket.send(item.frames);
          item.settle?.(undefined);
        } catch (error) {
          if (item.stream) this.failedStreams.add(item.stream);
          if (item.settle) item.settle(error);
          else if (!this.closed) this.onError(error);
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
