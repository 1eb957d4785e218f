/**
 * The high-water mark of a ZMTP end on Node's sockets, as libzmq's `sendTimeout: 0` gives it: a
 * message goes at once while the socket's buffer has room, and up to `limit` more wait past it;
 * beyond, a send fails at once. Used by the request lane (server/request-lane.ts) and its client
 * DEALER (client/zmtp-dealer.ts), one per connection.
 */
import type { Socket } from 'node:net';

export class BoundedWrites {
  /** messages written past the socket's buffer and not yet handed to the kernel */
  private queued = 0;

  constructor(
    private readonly socket: Socket,
    private readonly limit: number,
  ) {}

  /**
   * Writes one message, given as pieces (wire/zmtp.ts `messageParts`) that leave in one system
   * call; false, and nothing written, when `limit` messages already wait.
   */
  write(parts: readonly Buffer[]): boolean {
    const { socket } = this;
    if (!socket.writableNeedDrain) {
      writeParts(socket, parts);
      return true;
    }
    if (this.queued >= this.limit) return false;
    this.queued++;
    writeParts(socket, parts, () => this.queued--);
    return true;
  }
}

function writeParts(socket: Socket, parts: readonly Buffer[], done?: () => void): void {
  if (parts.length === 1) return void socket.write(parts[0]!, done);
  socket.cork();
  for (let i = 0; i < parts.length; i++) socket.write(parts[i]!, i === parts.length - 1 ? done : undefined);
  socket.uncork();
}
