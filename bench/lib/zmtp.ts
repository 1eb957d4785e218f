/**
 * A lean ZMTP 3.0 SUB over a plain TCP socket, for the fan-out benchmark. zeromq.js resolves one
 * promise per received message, so one Node process cannot drain 100 subscriptions at 10k updates/s
 * each (a million messages a second) and the subscriber, not the server, would be measured. This
 * subscriber parses frames straight out of each TCP chunk instead, a few hundred messages per
 * 'data' event. It speaks the wire protocol a libzmq SUB speaks (greeting, NULL mechanism, READY
 * with Socket-Type SUB, ZMTP 3.0 subscription messages), so the server sees a real subscriber.
 *
 * Every message is counted; `onMessage` gets the last frame (the CHP body) and the time of the
 * chunk it arrived in.
 */
import { connect, type Socket } from 'node:net';
import { nowMs } from './proc.js';

const FLAG_MORE = 0x01;
const FLAG_LONG = 0x02;
const FLAG_COMMAND = 0x04;

function greeting(): Buffer {
  const g = Buffer.alloc(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3; // version 3.0: subscriptions are messages starting with 0x01
  g[11] = 0;
  g.write('NULL', 12, 'latin1');
  g[32] = 0; // as-server: no
  return g;
}

function readyCommand(): Buffer {
  const name = Buffer.from('Socket-Type', 'latin1');
  const value = Buffer.from('SUB', 'latin1');
  const body = Buffer.alloc(1 + 5 + 1 + name.length + 4 + value.length);
  let at = 0;
  body[at++] = 5;
  at += body.write('READY', at, 'latin1');
  body[at++] = name.length;
  at += name.copy(body, at);
  body.writeUInt32BE(value.length, at);
  at += 4;
  value.copy(body, at);
  return Buffer.concat([Buffer.from([FLAG_COMMAND, body.length]), body]);
}

function subscription(prefix: string): Buffer {
  const p = Buffer.from(prefix);
  const body = Buffer.concat([Buffer.from([1]), p]);
  if (body.length > 255) throw new Error('prefix too long');
  return Buffer.concat([Buffer.from([0, body.length]), body]);
}

export class ZmtpSubscriber {
  private readonly socket: Socket;
  private pending: Buffer | undefined;
  private greeted = false;
  private frameInMessage = 0;
  count = 0;
  closed = false;

  constructor(
    host: string,
    port: number,
    private readonly prefixes: string[],
    private readonly onMessage: (body: Buffer, arrivedAt: number) => void,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on('connect', () => {
      this.socket.write(greeting());
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => (this.closed = true));
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    const arrivedAt = nowMs();
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let at = 0;
    if (!this.greeted) {
      if (buf.length < 64) {
        this.pending = buf;
        return;
      }
      if (buf[0] !== 0xff || buf[9] !== 0x7f) {
        this.socket.destroy(new Error('not a ZMTP peer'));
        return;
      }
      this.greeted = true;
      at = 64;
      // As libzmq does: the READY command (and then our subscriptions) only after the greetings.
      this.socket.write(Buffer.concat([readyCommand(), ...this.prefixes.map(subscription)]));
    }
    const end = buf.length;
    while (at < end) {
      const flags = buf[at]!;
      let size: number;
      let header: number;
      if (flags & FLAG_LONG) {
        if (at + 9 > end) break;
        size = Number(buf.readBigUInt64BE(at + 1));
        header = 9;
      } else {
        if (at + 2 > end) break;
        size = buf[at + 1]!;
        header = 2;
      }
      if (at + header + size > end) break;
      const start = at + header;
      at = start + size;
      if (flags & FLAG_COMMAND) continue; // READY, PING: nothing to count
      if (flags & FLAG_MORE) {
        this.frameInMessage++;
        continue;
      }
      this.frameInMessage = 0;
      this.count++;
      this.onMessage(buf.subarray(start, start + size), arrivedAt);
    }
    if (at < end) this.pending = Buffer.from(buf.subarray(at));
  }
}
