/**
 * Plain CHP writes (`KVSET`) to one server's collector, fire-and-forget as RFC 12 has them. A PUB
 * drops everything until the collector's subscription has reached it (the slow-joiner problem of
 * RFC 12 clients); this is an XPUB, which sees that subscription arrive, so writes wait for it
 * instead of guessing a delay after the handshake, which lost writes on a loaded machine.
 */
import * as zmq from 'zeromq';
import { Outbox, retryInterrupted } from '../zmq/index.js';
import type { ServerAddress } from './servers.js';
import { openSocket } from './open-socket.js';

/** plain CHP writes held until the collector's subscription arrives (as many as the PUB queues) */
const WAITING_MAX = 100_000;

export class Collector {
  private readonly pub: zmq.XPublisher;
  private readonly out: Outbox;
  private ready = false;
  private waiting: Buffer[][] = [];
  /** sends handed to the socket and not yet completed */
  private sending = 0;
  private closed = false;

  constructor(context: zmq.Context, server: ServerAddress, curve: Record<string, string>) {
    const make = () =>
      new zmq.XPublisher({
        context,
        linger: 1000,
        sendTimeout: 0,
        // libzmq's default of 1000 queued messages silently dropped bursts of KVSETs (465 of
        // 60,000 in the benchmark); match the server's collector queue.
        sendHighWaterMark: 100_000,
        maxMessageSize: server.frames?.pub ?? -1,
        ...curve,
      });
    // Throws if the socket cannot be opened (EMFILE), having closed it.
    this.pub = openSocket(make, (pub) => retryInterrupted(() => pub.connect(server.collector)));
    this.out = new Outbox(this.pub, () => undefined);
    void this.watch();
  }

  publish(frames: Buffer[]): void {
    if (this.closed) return;
    if (this.ready) this.send(frames);
    else if (this.waiting.length < WAITING_MAX) this.waiting.push(frames);
  }

  /** Resolves once every write published reached the collector's connection, or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const drained = () => this.ready && this.waiting.length === 0 && this.sending === 0;
    return new Promise((resolve) => {
      const check = () => {
        if (this.closed || drained() || Date.now() >= deadline) resolve();
        else setTimeout(check, 5);
      };
      check();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.out.close();
    this.pub.close();
  }

  private async watch(): Promise<void> {
    try {
      for await (const [message] of this.pub) {
        if (this.closed) return;
        // A subscription message is byte 1, then the prefix (a collector subscribes to everything).
        if (message?.[0] === 1 && !this.ready) {
          this.ready = true;
          for (const waiting of this.waiting.splice(0)) this.send(waiting);
        }
      }
    } catch {
      // closed
    }
  }

  private send(frames: Buffer[]): void {
    this.sending++;
    const done = () => this.sending--;
    this.out.send(frames).then(done, done);
  }
}
