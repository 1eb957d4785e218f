/** The key-value state machine: the server's map and the client's replica. */
export { KvMap, type Entry } from './kvmap.js';
export { PackedKvMap, type PackedMapOptions } from './packed-map.js';
export { PartitionedMap } from './partitioned.js';
export { hashBytes, hashByte, hashEnd, hashStart } from './key-index.js';
export {
  DELETE_PREFIX_PROPERTY,
  HeldUpdates,
  PREV_PROPERTY,
  isDeletePrefix,
  Replica,
  withoutPrev,
  type Change as ReplicaChange,
  type ChangeList,
  type OfferResult,
  type Synced,
} from './replica.js';
export {
  ArrayView,
  FilteredView,
  eachRun,
  packRecords,
  readAll,
  type KeyValueState,
  type KvView,
  type PackedRecord,
  type SizedKey,
  type Written,
} from './view.js';
