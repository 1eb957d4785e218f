/**
 * The client's options: their types, defaults and checks, CURVE key resolution and the clock,
 * apart from the client's state machine (agent.ts) and its public face (client.ts).
 */
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_LIMITS, type Limits } from '../wire/index.js';
import { silentLogger, type Logger } from '../log/index.js';
import { KeyError, keyBytes, publicKeyOf, readKeyFile, type KeyPair } from '../security/index.js';
import { parseServer, relayId, type ServerAddress } from './servers.js';
import { zmqTransport } from './transport.js';
import type { Transport } from './link.js';
import type { Random } from './votes.js';
import { Ticker } from './ticker.js';

export type Mode = 'auto' | 'native' | 'chp';

export interface ClientOptions {
  /** snapshot endpoints of the pair, e.g. ['tcp://127.0.0.1:5556', 'tcp://127.0.0.1:5566'] */
  servers: string[];
  /** the key prefix this client mirrors and watches ('' for everything) */
  subtree?: string;
  /** 'native' uses twinstar's acknowledged writes and resume; 'chp' plain RFC 12; 'auto' finds out */
  mode?: Mode;
  /** silence from the active (no HUGZ, no update) that counts as its death */
  serverTimeoutMs?: number;
  /** an answer to a request (a sync chunk, a write batch) must come within this time */
  requestTimeoutMs?: number;
  /** a write not acknowledged within this time (failovers included) fails with TimeoutError */
  writeTimeoutMs?: number;
  /** at most this many writes may wait for acknowledgement; more fail with QueueFullError */
  maxPendingWrites?: number;
  /** how long connect() waits for the first sync */
  connectTimeoutMs?: number;
  /** how long close() waits for plain CHP writes to reach the collectors (default 2000) */
  lingerMs?: number;
  /** the server's size limits (default: the server defaults); bigger writes throw at once */
  limits?: Partial<Limits>;
  /**
   * CurveZMQ: encrypt every socket and prove this client's key to servers that run with
   * `--curve`. Give keys, or key files as `twinstar keygen` writes them (docs/security.md).
   */
  curve?: CurveOptions;
  log?: Logger;
  /**
   * The source of the jitter that spreads a fleet's votes and retries (votes.ts): numbers in
   * [0, 1), Math.random by default. Give a fixed one to make a test deterministic.
   */
  random?: () => number;
  /** for tests: the sockets and the clock */
  transport?: Transport;
  clock?: Clock;
}

/** The options checked, with their defaults filled in. */
export interface ResolvedOptions {
  readonly servers: readonly ServerAddress[];
  readonly subtree: string;
  readonly mode: Mode;
  readonly serverTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly maxPendingWrites: number;
  readonly lingerMs: number;
  readonly limits: Limits;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly transport: Transport;
}

/** Checks the options (InvalidArgumentError, thrown: the constructor's caller's mistake). */
export function resolveOptions(options: ClientOptions): ResolvedOptions {
  if (typeof options.servers === 'string')
    throw new InvalidArgumentError(
      `servers is an array of tcp://HOST:PORT endpoints, not a string: [${JSON.stringify(options.servers)}]`,
    );
  if (!Array.isArray(options.servers) || options.servers.length === 0) {
    throw new InvalidArgumentError('servers must list at least one tcp://HOST:PORT endpoint');
  }
  const curve = options.curve === undefined ? undefined : resolveCurve(options.curve, options.servers.length);
  // Without CURVE the client names its DEALERs alike on every server (servers.ts relayId()).
  const routingId = relayId();
  const servers = options.servers.map((endpoint, i) => {
    const address = parseServer(endpoint);
    return curve
      ? { ...address, curve: { own: curve.own, serverPublicKey: curve.servers[i]! } }
      : { ...address, routingId };
  });
  const subtree = options.subtree ?? '';
  if (typeof subtree !== 'string') throw new InvalidArgumentError('subtree must be a string');
  let mode = options.mode ?? 'auto';
  if (!['auto', 'native', 'chp'].includes(mode))
    throw new InvalidArgumentError(`mode ${String(mode)} is not auto, native or chp`);
  const serverTimeoutMs = positiveOption('serverTimeoutMs', options.serverTimeoutMs, 500, 20);
  const requestTimeoutMs = positiveOption('requestTimeoutMs', options.requestTimeoutMs, 2000, 1);
  const writeTimeoutMs = positiveOption('writeTimeoutMs', options.writeTimeoutMs, 10_000, 1);
  const maxPendingWrites = positiveOption('maxPendingWrites', options.maxPendingWrites, 100_000, 1, true);
  if (options.random !== undefined && typeof options.random !== 'function')
    throw new InvalidArgumentError('random must be a function returning numbers in [0, 1)');
  const lingerMs = positiveOption('lingerMs', options.lingerMs, 2000, 0);
  // CURVE is twinstar's own (docs/security.md): a plain RFC 12 server never speaks it
  if (options.curve !== undefined && mode === 'auto') mode = 'native';
  return {
    servers,
    subtree,
    mode,
    serverTimeoutMs,
    requestTimeoutMs,
    writeTimeoutMs,
    maxPendingWrites,
    lingerMs,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    log: options.log ?? silentLogger(),
    transport: options.transport ?? zmqTransport,
  };
}

export type CurveOptions =
  | {
      /** this client's key pair, Z85 */
      publicKey: string;
      secretKey: string;
      /** the servers' public keys: one for all, or one per entry of `servers` */
      serverPublicKey: string | string[];
    }
  | {
      /** this client's NAME.key_secret file */
      keyFile: string;
      /** the servers' NAME.key files: one for all, or one per entry of `servers` */
      serverKeyFile: string | string[];
    };

export interface Clock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Every client's ticks share one timer per period (ticker.ts): many clients, few wake-ups. */
const ticker = new Ticker();

export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => ticker.add(fn, ms),
  clearInterval: (handle) => ticker.remove(handle),
};

export function positiveOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  integer = false,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    (integer && !Number.isInteger(value))
  ) {
    throw new InvalidArgumentError(
      `${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, not ${String(value)}`,
    );
  }
  return value;
}

/** Keys from options or files; a bad key or file is the caller's mistake, so InvalidArgumentError. */
export function resolveCurve(curve: CurveOptions, servers: number): { own: KeyPair; servers: string[] } {
  try {
    let own: KeyPair;
    let serverKeys: string[];
    if ('keyFile' in curve) {
      own = readKeyFile(curve.keyFile, true);
      const files = Array.isArray(curve.serverKeyFile) ? curve.serverKeyFile : [curve.serverKeyFile];
      serverKeys = files.map((file) => readKeyFile(file).publicKey);
    } else {
      keyBytes(curve.publicKey, 'curve.publicKey');
      if (publicKeyOf(curve.secretKey) !== curve.publicKey)
        throw new KeyError('curve.secretKey does not belong to curve.publicKey');
      own = { publicKey: curve.publicKey, secretKey: curve.secretKey };
      serverKeys = Array.isArray(curve.serverPublicKey) ? curve.serverPublicKey : [curve.serverPublicKey];
      serverKeys.forEach((key, i) => keyBytes(key, `curve.serverPublicKey[${i}]`));
    }
    if (serverKeys.length === 1) serverKeys = Array(servers).fill(serverKeys[0]);
    if (serverKeys.length !== servers)
      throw new KeyError(
        `curve needs one server key, or one per server (${servers}), not ${serverKeys.length}`,
      );
    return { own, servers: serverKeys };
  } catch (error) {
    if (error instanceof KeyError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}
