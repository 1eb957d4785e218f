/**
 * The connecting end of ZMTP on Node's sockets, shared by the SUB (zmtp-sub.ts) and the request
 * lane's DEALER (client/zmtp-dealer.ts): the endpoint read, a TCP connection that reads into the
 * caller's buffer and feeds each read to its ZMTP reader, and the greeting sent once connected. A
 * protocol error, or a frame over the limit, ends the connection, as libzmq does.
 */
import { connect, type Socket } from 'node:net';
import { zmtp } from '../wire/index.js';

export interface TcpAddress {
  host: string;
  port: number;
}

/** tcp://HOST:PORT split, HOST as written (an IPv6 host keeps its brackets); undefined if not one. */
export function splitEndpoint(endpoint: string): TcpAddress | undefined {
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/\s]+):(\d{1,5})$/.exec(endpoint);
  return match ? { host: match[1]!, port: Number(match[2]) } : undefined;
}

/** tcp://HOST:PORT (a bracketed IPv6 host too) as Node's connect takes it; throws ZmtpError. */
export function tcpAddress(endpoint: string): TcpAddress {
  const split = splitEndpoint(endpoint);
  if (!split) throw new zmtp.ZmtpError(`not a tcp://HOST:PORT endpoint: ${endpoint}`);
  return { host: split.host.replace(/^\[(.*)\]$/, '$1'), port: split.port };
}

/**
 * Connects; each read (a view of `readBuffer()`, reused for the next read) goes to `feed`. When
 * `feed` throws, the connection is destroyed and `failed` told why. Errors end in 'close'.
 */
export function zmtpConnect(
  address: TcpAddress,
  readBuffer: () => Buffer,
  feed: (chunk: Buffer) => void,
  failed: (error: Error) => void,
): Socket {
  const socket: Socket = connect({
    ...address,
    noDelay: true,
    onread: {
      buffer: readBuffer,
      callback: (bytes: number, buffer: Uint8Array): boolean => {
        try {
          feed((buffer as Buffer).subarray(0, bytes));
        } catch (error) {
          socket.destroy();
          failed(error as Error);
        }
        return true;
      },
    },
  });
  socket.on('connect', () => socket.write(zmtp.greeting()));
  socket.on('error', () => undefined); // 'close' follows
  return socket;
}
