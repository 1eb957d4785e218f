/**
 * One receive loop per socket (and per event observer), shared by every socket in twinstar. zeromq.js resolves a receive
 * at once when a message is already queued, so a `for await` over a busy socket runs entirely in
 * microtasks and starves timers: heartbeats stop while a backlog drains (promise 7). This loop
 * gives the event loop a turn whenever it has worked for `budgetMs` without one.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';

export async function receiveLoop<T = Buffer[]>(
  socket: AsyncIterable<T>,
  handle: (received: T) => void,
  budgetMs = 10,
): Promise<void> {
  let sliceStart = performance.now();
  try {
    for await (const received of socket) {
      handle(received);
      if (performance.now() - sliceStart > budgetMs) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
    }
  } catch (error) {
    // Closing a socket ends its iterator with an error on some paths; anything else is a bug.
    if (
      (error as { code?: string }).code !== 'EAGAIN' &&
      !String((error as Error).message).includes('closed')
    )
      throw error;
  }
}
