/**
 * A socket read through Node's `net` hands its bytes to the code that parses them as they come,
 * and Node reads a busy socket many times in one event-loop turn: a flood of requests, or a
 * snapshot crossing the peer link, would hold the loop for as long as it lasts. The receive loop
 * of a zeromq.js socket (receive-loop.ts) yields after `budgetMs` of work; this is the same rule
 * for Node sockets: once the messages handled in one turn have taken `budgetMs`, the socket that
 * brought the last one is paused until the next turn, so timers (heartbeats: promise 7) run.
 */
import type { Socket } from 'node:net';
import { DRAIN_BUDGET_MS } from './outbox.js';

export class TurnBudget {
  /** when this turn's first message was handled (undefined: none yet) */
  private sliceStart: number | undefined;
  private paused: Socket[] = [];

  constructor(private readonly budgetMs = DRAIN_BUDGET_MS) {}

  /** A message from `socket` was just handled. */
  charge(socket: Socket): void {
    const now = performance.now();
    if (this.sliceStart === undefined) {
      this.sliceStart = now;
      setImmediate(() => {
        this.sliceStart = undefined;
        for (const paused of this.paused) if (!paused.destroyed) paused.resume();
        this.paused = [];
      });
    } else if (now - this.sliceStart > this.budgetMs && !socket.isPaused()) {
      socket.pause();
      this.paused.push(socket);
    }
  }
}
