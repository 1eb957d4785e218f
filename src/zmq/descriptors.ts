/**
 * File descriptors, checked before libzmq is asked for sockets that need them. libzmq aborts the
 * process when it cannot make the poller of a context's first socket (`epoll.cpp:38`, with no
 * descriptor left), and an event observer that fails half-way leaves its monitor behind, after
 * which the context gives back no closed socket's descriptors. Checked first, EMFILE comes from
 * here, before anything is half made. Another thread (a context's I/O thread, on a reconnect) may
 * still take the last descriptors in between: this narrows the window, it cannot close it.
 */
import { closeSync, openSync } from 'node:fs';

/** descriptors a new context's first socket may need: its reaper's and I/O thread's mailboxes and pollers, the socket's mailbox, and slack */
export const CONTEXT_DESCRIPTORS = 8;

/** what an event observer needs: libzmq's monitor socket and zeromq.js's PAIR to it */
export const OBSERVER_DESCRIPTORS = 2;

/** Takes `count` file descriptors and gives them back: throws EMFILE (as `open` does) if fewer are free. */
export function reserveDescriptors(count: number): void {
  const held: number[] = [];
  try {
    while (held.length < count) held.push(openSync('/dev/null', 'r'));
  } finally {
    for (const fd of held) closeSync(fd);
  }
}
