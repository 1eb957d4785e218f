/** The sequenced log, pure: store (sequencing and dedupe), replay window, term timeline, digests, uuids. */
export { digestOf, type Digest } from './digest.js';
export { ReplayLog } from './replay-log.js';
export {
  Store,
  StoreBuilder,
  isDedupeUuid,
  type Change,
  type CommitResult,
  type ReplicateResult,
  type StoreOptions,
} from './store.js';
export { UuidWindow, type UuidWindowOptions } from './uuid-window.js';
export { newUuid } from './uuid.js';
export { Timeline, type TimelineEntry } from './timeline.js';
