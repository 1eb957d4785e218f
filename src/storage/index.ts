/**
 * Durable storage engines for the sequencing core (src/core/storage.ts's `Storage`): lmdb.
 */
export {
  FORMAT_VERSION,
  LmdbStorage,
  MAX_KEY_BYTES,
  type FsyncMode,
  type LmdbStorageOptions,
} from './lmdb.js';
