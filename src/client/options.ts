/**
 * The client's option checks, CURVE key resolution and clock, apart from the client's state
 * machine (client.ts).
 */
import { InvalidArgumentError } from '../errors.js';
import { KeyError, keyBytes, publicKeyOf, readKeyFile, type KeyPair } from '../security/index.js';

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

export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
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
