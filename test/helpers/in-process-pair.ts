/**
 * Two real nodes in this process (real client sockets on loopback) joined by a fake peer link that
 * a test cuts and heals on cue; messages still go through the real peer codec. Used where a test
 * needs a partition to start and end at exact points (dual-active.test.ts, attachment.test.ts).
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import * as zmq from 'zeromq';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log/index.js';
import { decodeRequestId, encodeRequestId, packBatch } from '../../src/wire/index.js';
import { newUuid } from '../../src/core/index.js';
import { Node, type PeerChannel } from '../../src/pair/index.js';
import { decodePeerMessage, encodePeerMessage, type PeerMessage } from '../../src/wire/index.js';
import { freePorts } from './index.js';

export const HEARTBEAT_MS = 50;
export const FAILOVER_MS = 250;

/** The peer link as a pair of pipes the test can cut; messages still go through the real codec. */
export class Wire {
  private readonly ends: ((msg: PeerMessage) => void)[] = [];
  /** per direction: 0 carries a's messages to b, 1 carries b's to a */
  readonly up = [true, true];
  delivered = 0;
  /** one-way delay of every message, as a real link between hosts has (0: next turn) */
  latencyMs = 0;
  /** heartbeats delivered in each direction since the last heal */
  readonly heartbeatsSinceHeal = [0, 0];

  side(index: 0 | 1): (onMessage: (msg: PeerMessage) => void) => PeerChannel {
    return (onMessage) => {
      this.ends[index] = onMessage;
      return {
        send: (msg) => {
          if (!this.up[index]) return;
          const frames = encodePeerMessage(msg);
          const deliver = () => {
            if (!this.up[index]) return;
            this.delivered++;
            const decoded = decodePeerMessage(frames);
            if (decoded.type === 'heartbeat') this.heartbeatsSinceHeal[index]!++;
            this.ends[1 - index]?.(decoded);
          };
          // in order either way: timers of equal delay fire in the order they were set
          if (this.latencyMs > 0) setTimeout(deliver, this.latencyMs);
          else setImmediate(deliver);
        },
        close: async () => {},
      };
    };
  }

  cut(): void {
    this.up[0] = this.up[1] = false;
  }

  heal(): void {
    this.heartbeatsSinceHeal[0] = this.heartbeatsSinceHeal[1] = 0;
    this.up[0] = this.up[1] = true;
  }

  /** Each node has heard the other since the heal. */
  get met(): boolean {
    return this.up[0]! && this.up[1]! && this.heartbeatsSinceHeal.every((n) => n > 0);
  }
}

export interface Started {
  node: Node;
  endpoint: string;
  logs: Record<string, unknown>[];
}

/** A node of the pair on `wire`, started; `failoverMs` defaults to FAILOVER_MS. */
export async function startNode(
  role: 'primary' | 'backup',
  wire: Wire,
  { failoverMs = FAILOVER_MS }: { failoverMs?: number } = {},
): Promise<Started> {
  const port = await freePorts(4);
  const config = loadConfig({
    args: [
      '--role',
      role,
      '--port',
      String(port),
      '--http-port',
      '0',
      '--heartbeat-ms',
      String(HEARTBEAT_MS),
      '--failover-ms',
      String(failoverMs),
    ],
    env: {},
  });
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const log = createLogger({ node: role, role, level: 'info', destination });
  const node = new Node({ config, log, channel: wire.side(role === 'primary' ? 0 : 1) });
  await node.start();
  return { node, endpoint: `tcp://127.0.0.1:${port}`, logs };
}

/** One native request on a fresh DEALER; the reply's frames. */
export async function ask(endpoint: string, frames: (Buffer | string)[]): Promise<Buffer[]> {
  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 3000 });
  dealer.connect(endpoint);
  try {
    await dealer.send(frames);
    return await dealer.receive();
  } finally {
    dealer.close();
  }
}

let reqIds = 1;

/** An acknowledged write with the given uuid; resolves with [tag, durability] of the reply. */
export async function write(endpoint: string, key: string, uuid = newUuid()): Promise<[string, string]> {
  const reqId = reqIds++;
  const batch = packBatch([
    { key, sequence: 0, uuid, properties: '', body: Buffer.from(`v-${key}`), expiresAt: 0 },
  ]);
  const reply = await ask(endpoint, ['TSET', encodeRequestId(reqId), batch]);
  expect(decodeRequestId(reply[1])).to.equal(reqId);
  return [
    reply[0]!.toString(),
    (reply[reply[0]!.toString() === 'TACK' ? 3 : 2] ?? Buffer.alloc(0)).toString(),
  ];
}

export async function vote(endpoint: string): Promise<string> {
  const reply = await ask(endpoint, ['TVOTE', encodeRequestId(reqIds++)]);
  return `${reply[0]!.toString()} ${reply[2]!.toString()}`;
}
