/**
 * Raw round trips, one in flight, 100-byte messages, nothing else done per message, between this
 * process and an echo in a worker process (bench/worker.ts): over zeromq.js (a DEALER and a ROUTER
 * echo) and over a plain Node TCP socket. Two one-way hops per round trip, so each caps anything
 * that crosses such hops on this machine: a replicated twinstar write crosses four, three when
 * the passive answers (suites/ceiling.ts, suites/peers.ts).
 */
import { connect, type Socket } from 'node:net';
import * as zmq from 'zeromq';
import { freePorts, nowMs } from './proc.js';
import { Worker } from './worker-client.js';

const MESSAGE = Buffer.alloc(100, 0x62);

/** An echo worker, a DEALER and a TCP socket connected to it, each warmed up with 1,000 round trips. */
export class RawRoundTrip {
  private waiting: (() => void) | undefined;
  private got = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly dealer: zmq.Dealer,
    private readonly socket: Socket,
  ) {
    // The echo may come back in pieces: a round trip ends once all 100 bytes are back.
    socket.on('data', (chunk: Buffer) => {
      this.got += chunk.length;
      if (this.got >= MESSAGE.length) {
        this.got -= MESSAGE.length;
        this.waiting?.();
      }
    });
  }

  static async start(): Promise<RawRoundTrip> {
    const worker = new Worker();
    try {
      const endpoint = `tcp://127.0.0.1:${await freePorts(1)}`;
      await worker.call('echo.start', { endpoint });
      const dealer = new zmq.Dealer({ linger: 0 });
      dealer.connect(endpoint);
      const port = await worker.call<number>('netecho.start');
      const socket = connect({ host: '127.0.0.1', port, noDelay: true });
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const raw = new RawRoundTrip(worker, dealer, socket);
      await raw.measure(0, 1000);
      await raw.measureNet(0, 1000);
      return raw;
    } catch (error) {
      await worker.close();
      throw error;
    }
  }

  /** zeromq.js round trips per second for `ms` (or exactly `count` of them, when given). */
  measure(ms: number, count = 10_000_000): Promise<number> {
    return this.rate(ms, count, async () => {
      await this.dealer.send(MESSAGE);
      await this.dealer.receive();
    });
  }

  /** The same over the plain TCP socket. */
  measureNet(ms: number, count = 10_000_000): Promise<number> {
    return this.rate(ms, count, () => {
      const back = new Promise<void>((resolve) => (this.waiting = resolve));
      this.socket.write(MESSAGE);
      return back;
    });
  }

  private async rate(ms: number, count: number, roundTrip: () => Promise<void>): Promise<number> {
    const t0 = nowMs();
    let n = 0;
    for (; n < count; n++) {
      if (ms > 0 && (n & 255) === 0 && nowMs() - t0 > ms) break;
      await roundTrip();
    }
    return (n / (nowMs() - t0)) * 1000;
  }

  async close(): Promise<void> {
    this.dealer.close();
    this.socket.destroy();
    await this.worker.close();
  }
}
