/**
 * Raw zeromq.js round trips, one in flight: a DEALER in this process and a ROUTER echo in a
 * worker process (bench/worker.ts), 100-byte messages, nothing else done per message. Two one-way
 * hops per round trip, so it also caps anything that crosses zeromq.js hops on this
 * machine: a replicated twinstar write crosses four (suites/ceiling.ts, suites/peers.ts).
 */
import * as zmq from 'zeromq';
import { freePorts, nowMs } from './proc.js';
import { Worker } from './worker-client.js';

const MESSAGE = Buffer.alloc(100, 0x62);

/** An echo worker and a DEALER connected to it, warmed up with 1,000 round trips. */
export class RawRoundTrip {
  private constructor(
    private readonly worker: Worker,
    private readonly dealer: zmq.Dealer,
  ) {}

  static async start(): Promise<RawRoundTrip> {
    const worker = new Worker();
    try {
      const endpoint = `tcp://127.0.0.1:${await freePorts(1)}`;
      await worker.call('echo.start', { endpoint });
      const dealer = new zmq.Dealer({ linger: 0 });
      dealer.connect(endpoint);
      const raw = new RawRoundTrip(worker, dealer);
      await raw.measure(0, 1000);
      return raw;
    } catch (error) {
      await worker.close();
      throw error;
    }
  }

  /** Round trips per second for `ms` (or exactly `count` of them, when given). */
  async measure(ms: number, count = 10_000_000): Promise<number> {
    const t0 = nowMs();
    let n = 0;
    for (; n < count; n++) {
      if (ms > 0 && (n & 255) === 0 && nowMs() - t0 > ms) break;
      await this.dealer.send(MESSAGE);
      await this.dealer.receive();
    }
    return (n / (nowMs() - t0)) * 1000;
  }

  async close(): Promise<void> {
    this.dealer.close();
    await this.worker.close();
  }
}
