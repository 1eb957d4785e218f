/**
 * A deterministic harness for the pair: a fake clock that moves only when told, and a fake peer
 * channel whose messages wait in a queue until the test delivers them (through the real peer
 * codec, so what is tested is what the wire carries). Nothing here reads the wall clock or sets a
 * timer; replication's own next-turn batching is awaited with `turns()`.
 */
import { decodePeerMessage, encodePeerMessage, type PeerMessage } from '../../../src/wire/peer.js';
import type { PeerChannel } from '../../../src/pair/peer-link.js';

export class FakeClock {
  constructor(public t = 1_000) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Two ends (0 and 1) of a peer link; a test delivers what each sent, in order, or cuts the link. */
export class FakeWire {
  /** messages in flight from end i to end 1 - i */
  private readonly queues: PeerMessage[][] = [[], []];
  private readonly receivers: ((msg: PeerMessage) => void)[] = [];
  up = true;
  /** every message each end sent, delivered or not */
  readonly sent: PeerMessage[][] = [[], []];

  end(index: 0 | 1): PeerChannel {
    return {
      send: (msg) => {
        this.sent[index]!.push(msg);
        if (this.up) this.queues[index]!.push(decodePeerMessage(encodePeerMessage(msg)));
      },
      close: async () => {},
    };
  }

  /** Where end `index` hands what it receives. */
  receiver(index: 0 | 1, onMessage: (msg: PeerMessage) => void): void {
    this.receivers[index] = onMessage;
  }

  /** Deliver everything in flight, both ways, until nothing is left; returns how many. */
  deliver(): number {
    let delivered = 0;
    for (let rounds = 0; rounds < 1000; rounds++) {
      let moved = false;
      for (const from of [0, 1] as const) {
        const queue = this.queues[from]!;
        while (queue.length > 0) {
          const msg = queue.shift()!;
          moved = true;
          delivered++;
          this.receivers[1 - from]?.(msg);
        }
      }
      if (!moved) return delivered;
    }
    throw new Error('the fake wire never went quiet');
  }

  /** Messages in flight are lost, and so is everything sent until `heal`. */
  cut(): void {
    this.up = false;
    this.queues[0]!.length = this.queues[1]!.length = 0;
  }

  heal(): void {
    this.up = true;
  }
}

/** Let replication's next-turn work (batch flushes, acks, snapshot chunks) run: `n` turns. */
export async function turns(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
