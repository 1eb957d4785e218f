/** Security: CURVE keys, the allow-list with per-subtree rights, ZAP and session tokens. */
export { z85Decode, z85Encode } from './z85.js';
export {
  formatKeyFile,
  generateKeyPair,
  isKey,
  keyBytes,
  KeyError,
  parseKeyFile,
  publicKeyOf,
  sharedSecret,
  type KeyPair,
} from './keys.js';
export { readKeyFile, writeKeyPair } from './key-files.js';
export { readSessionToken, sessionToken, tokenMintedAt, type SessionClaim } from './session.js';
export { DEFAULT_SESSION_LIFETIME_MS, SessionBinder, type BindRefusal } from './binding.js';
export { AccessList, AccessListError, EVERYTHING, Principal } from './access.js';
export { AccessFile } from './access-file.js';
export { ZapHandler, type Authorize, type ZapDecision } from './zap.js';
export { DOMAINS, Guard, type AuthFailure, type Domain, type GuardOptions } from './guard.js';
export { curveClientOptions, curveServerOptions, notifyConnections, watchHandshakes } from './sockets.js';
