/**
 * One registry of stable error codes. Every error twinstar throws at a caller is a TwinstarError
 * with one of these codes, so callers can switch on `err.code` rather than on message text.
 * The README lists them; keep the two in step.
 */
export const ErrorCodes = {
  ERR_CONFIG_INVALID: 'a configuration setting is missing or has a bad value',
  ERR_KVMSG_MALFORMED: 'a wire message does not follow the CHP frame layout',
  ERR_CLIENT_TIMEOUT: 'a request got no answer within its timeout',
  ERR_CLIENT_CLOSED: 'the client was closed while the request was pending',
  ERR_CLIENT_QUEUE_FULL: 'too many writes are waiting for an active server',
  ERR_NOT_ACTIVE: 'the server asked is not the active one',
  ERR_SERVER_REJECTED: 'the server refused the request',
  ERR_ACCESS_DENIED: "the client's key has no right to write that key (docs/security.md)",
  ERR_INVALID_ARGUMENT: 'an API was called with an argument it cannot take',
  ERR_VALUE_FORMAT: 'a stored value is not in the format asked for (getJson of a value that is not JSON)',
  ERR_UNAVAILABLE:
    'no server of the pair can serve: the active is gone and the other node refuses votes (no complete history)',
  ERR_CONFLICT:
    "a conditional write's condition failed: the key's current sequence is not the one given (create: the key exists)",
  ERR_HISTORY_UNAVAILABLE:
    'a watch from a sequence asked for changes the server no longer holds (etcd: compacted)',
  ERR_LEASE_NOT_FOUND: 'the lease does not exist (never granted, expired or revoked)',
  ERR_CLIENT_SOCKET:
    'the client could not open a socket: the process is out of file descriptors (ulimit -n) or sockets',
  ERR_STORAGE:
    'the data directory cannot be used (corrupt, truncated, another version or pair) or a write to it failed',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class TwinstarError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class ConfigError extends TwinstarError {
  /** the setting that is wrong, named as in the convict schema */
  readonly setting: string;
  constructor(setting: string, message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG_INVALID', message, options);
    this.setting = setting;
  }
}

export class TimeoutError extends TwinstarError {
  constructor(message: string) {
    super('ERR_CLIENT_TIMEOUT', message);
  }
}

export class ClosedError extends TwinstarError {
  constructor(message = 'client is closed') {
    super('ERR_CLIENT_CLOSED', message);
  }
}

export class QueueFullError extends TwinstarError {
  constructor(limit: number) {
    super('ERR_CLIENT_QUEUE_FULL', `more than ${limit} writes are waiting for an active server`);
  }
}

export class NotActiveError extends TwinstarError {
  /** the Binary Star state the server reported */
  readonly state: string;
  constructor(state: string) {
    super('ERR_NOT_ACTIVE', `server is ${state}, not ACTIVE`);
    this.state = state;
  }
}

export class ServerRejectedError extends TwinstarError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('ERR_SERVER_REJECTED', message);
    this.reason = reason;
  }
}

export class AccessDeniedError extends TwinstarError {
  /** the key the write was refused for */
  readonly key: string;
  constructor(key: string, message: string) {
    super('ERR_ACCESS_DENIED', message);
    this.key = key;
  }
}

export class InvalidArgumentError extends TwinstarError {
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message);
  }
}

export class ValueFormatError extends TwinstarError {
  /** the key whose value could not be read in the format asked for */
  readonly key: string;
  constructor(key: string, message: string) {
    super('ERR_VALUE_FORMAT', message);
    this.key = key;
  }
}

export class UnavailableError extends TwinstarError {
  /** why, in a word: 'no-history' (the only reachable node lacks a complete history) */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('ERR_UNAVAILABLE', message);
    this.reason = reason;
  }
}

/**
 * A conditional write (`create`, `set` or `delete` with `ifSequence`) whose condition failed:
 * nothing of it was applied. `currentSequence` is the key's sequence at the server (0: absent).
 */
export class ConflictError extends TwinstarError {
  readonly key: string;
  readonly currentSequence: number;
  constructor(key: string, currentSequence: number, message: string) {
    super('ERR_CONFLICT', message);
    this.key = key;
    this.currentSequence = currentSequence;
  }
}

/**
 * `watch(prefix, { fromSequence })` asked for changes older than the server's history reaches
 * (etcd's "compacted"). `oldestAvailable` is the oldest sequence it still holds, when it said.
 */
export class HistoryUnavailableError extends TwinstarError {
  readonly oldestAvailable: number | undefined;
  constructor(message: string, oldestAvailable?: number) {
    super('ERR_HISTORY_UNAVAILABLE', message);
    this.oldestAvailable = oldestAvailable;
  }
}

/** A lease operation (keep-alive, revoke, or a write attached to it) named a lease the server lacks. */
export class LeaseNotFoundError extends TwinstarError {
  readonly leaseId: number;
  constructor(leaseId: number, message: string) {
    super('ERR_LEASE_NOT_FOUND', message);
    this.leaseId = leaseId;
  }
}

/**
 * The client could not open a socket (EMFILE: the process is out of file descriptors or sockets).
 * Nothing was sent; `cause` is libzmq's error.
 */
export class ClientSocketError extends TwinstarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CLIENT_SOCKET', message, options);
  }
}

/** Why a data directory was refused or a write to it failed (src/storage/). */
export type StorageErrorReason = 'corrupt' | 'truncated' | 'version' | 'foreign-pair' | 'open' | 'write';

/**
 * The storage engine refused its data directory at open, or a write failed. The message is one
 * line that names the file and the problem, as an operator reads it at start-up.
 */
export class StorageError extends TwinstarError {
  readonly reason: StorageErrorReason;
  /** the file or directory concerned */
  readonly file: string;
  constructor(reason: StorageErrorReason, file: string, problem: string, options?: { cause?: unknown }) {
    super('ERR_STORAGE', `${file}: ${problem.replace(/\s*\n\s*/g, ' ')}`, options);
    this.reason = reason;
    this.file = file;
  }
}

/** What a client saw of one server while it looked for the active (src/client/discovery.ts). */
export interface ServerSeenInfo {
  readonly server: string;
  /** 'unreachable': sends failed (connection refused or down); 'silent': no answer at all */
  readonly seen: 'unreachable' | 'silent' | 'answered';
  /** the Binary Star state it reported, if it answered */
  readonly state?: string;
  /** it said it holds no complete history (it never accepts a vote) */
  readonly noHistory?: boolean;
}

/** No active server was found in time; `seen` says what each server did (also in the message). */
export class NoActiveError extends TimeoutError {
  readonly seen: readonly ServerSeenInfo[];
  constructor(message: string, seen: readonly ServerSeenInfo[]) {
    super(message);
    this.seen = seen;
  }
}
