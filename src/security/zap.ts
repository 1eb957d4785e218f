/**
 * A ZAP handler (ZeroMQ RFC 27): libzmq asks it, once per incoming CURVE connection, whether the
 * client key may in. It lives in one ZeroMQ context, on the endpoint libzmq calls for every socket
 * of that context, and must be bound before any CURVE server socket accepts a connection: with no
 * handler present libzmq lets every key in.
 */
import * as zmq from 'zeromq';
import { z85Encode } from './z85.js';

export type ZapDecision = { ok: true; userId: string } | { ok: false; reason: string };

/** The decision for one connection: its socket's ZAP domain, client key (Z85) and IP address. */
export type Authorize = (
  domain: string,
  publicKey: string,
  address: string,
) => ZapDecision | Promise<ZapDecision>;

const ENDPOINT = 'inproc://zeromq.zap.01';

export class ZapHandler {
  private readonly socket: zmq.Reply;
  private closed = false;

  constructor(
    context: zmq.Context,
    private readonly authorize: Authorize,
  ) {
    this.socket = new zmq.Reply({ context, linger: 0 });
  }

  async start(): Promise<void> {
    await this.socket.bind(ENDPOINT);
    void this.serve();
  }

  close(): void {
    this.closed = true;
    this.socket.close();
  }

  private async serve(): Promise<void> {
    while (!this.closed) {
      let request: Buffer[];
      try {
        request = await this.socket.receive();
      } catch {
        return; // closed
      }
      // One request at a time: the guard may hold an answer back (security/binding.ts).
      const answer = await this.answer(request).catch(() => zapReply(request[1], '500', 'internal error'));
      await this.socket.send(answer).catch(() => undefined);
    }
  }

  // The identity frame (the fifth) is the server socket's own routing id in libzmq, not the
  // connecting peer's, so it says nothing about the client and is not read.
  private async answer([version, requestId, domain, address, , mechanism, key]: Buffer[]): Promise<Buffer[]> {
    const reply = (code: string, text: string, userId = '') => zapReply(requestId, code, text, userId);
    if (version?.toString() !== '1.0') return reply('500', 'unsupported ZAP version');
    if (mechanism?.toString() !== 'CURVE' || key?.length !== 32) return reply('400', 'CURVE required');
    const decision = await this.authorize(domain!.toString(), z85Encode(key), address?.toString() ?? '');
    return decision.ok ? reply('200', 'OK', decision.userId) : reply('400', decision.reason);
  }
}

/** A ZAP reply (RFC 27): version, request id, status code and text, user id, metadata. */
function zapReply(requestId: Buffer | undefined, code: string, text: string, userId = ''): Buffer[] {
  return [
    Buffer.from('1.0'),
    requestId ?? Buffer.alloc(0),
    Buffer.from(code),
    Buffer.from(text),
    Buffer.from(userId),
    Buffer.alloc(0),
  ];
}
