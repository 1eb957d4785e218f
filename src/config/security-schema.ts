/**
 * CurveZMQ and the allow-list (docs/security.md), part of the convict schema (schema.ts): off by
 * default; with `curve`, every socket encrypts and only listed keys get in.
 */
import { DEFAULT_SESSION_LIFETIME_MS } from '../security/index.js';
import { positive } from './formats.js';

export const securitySchema = {
  curve: {
    doc: 'encrypt and authenticate every socket with CurveZMQ (needs key-file, clients-file, and peer-key-file in a pair)',
    format: Boolean,
    default: false,
    env: 'TWINSTAR_CURVE',
    arg: 'curve',
  },
  keyFile: {
    doc: "this server's secret key file (NAME.key_secret from `twinstar keygen`)",
    format: String,
    default: '',
    env: 'TWINSTAR_KEY_FILE',
    arg: 'key-file',
  },
  peerKeyFile: {
    doc: "the other server's public key file (NAME.key); only that key may use the peer link",
    format: String,
    default: '',
    env: 'TWINSTAR_PEER_KEY_FILE',
    arg: 'peer-key-file',
  },
  sessionLifetimeMs: {
    doc: 'with curve: how long after a client minted its session token the token may start a connection, in ms (at least 60000)',
    format: (value: unknown) => {
      positive(value);
      if ((value as number) < 60_000) throw new Error('must be at least 60000');
    },
    default: DEFAULT_SESSION_LIFETIME_MS,
    env: 'TWINSTAR_SESSION_LIFETIME_MS',
    arg: 'session-lifetime-ms',
  },
  clientsFile: {
    doc: 'allow-list of client keys and their read/write prefixes (JSON, docs/security.md); reloaded on SIGHUP and on change',
    format: String,
    default: '',
    env: 'TWINSTAR_CLIENTS_FILE',
    arg: 'clients-file',
  },
};
