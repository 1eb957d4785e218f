/**
 * The sequenced log, pure: the sequencer driving state machines over a storage, the key-value
 * machine, deadlines, the replay window, the dedupe window, the term timeline, digests, uuids.
 */
export { Deadlines, type DeadlinesOptions, type Scheduled } from './deadlines.js';
export { digestOf, type Digest } from './digest.js';
export { KvMachine, type KeyValueState } from './kv-machine.js';
export { ReplayLog } from './replay-log.js';
export { Sequencer, SequencerStage } from './sequencer.js';
export type { Change, DueChange, StateMachine } from './state-machine.js';
export {
  MemoryStorage,
  type MemoryStorageOptions,
  type ReplayLogStats,
  type Storage,
  type StorageStage,
  type StoredState,
} from './storage.js';
export {
  Store,
  isDedupeUuid,
  ZERO_UUID,
  type CommitResult,
  type ReplicateResult,
  type StoreBuilder,
  type StoreOptions,
} from './store.js';
export { MAX_SIZE, UuidWindow, type UuidWindowOptions } from './uuid-window.js';
export { newUuid } from './uuid.js';
export { Timeline, type TimelineEntry } from './timeline.js';
export { PublicationQueue, type ReleaseOutcome, type Sequenced } from './publication.js';
