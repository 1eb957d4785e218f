/** The event bus's pure core (issue 16): topics, patterns and what a stream retains. */
export {
  MAX_TOPIC_BYTES,
  ONE_TOKEN,
  REST_TOKENS,
  SEPARATOR,
  TopicIndex,
  checkPattern,
  checkTopic,
  matches,
  prefixOf,
  tokensMatch,
  underPrefix,
} from './topics.js';
export {
  StreamIndex,
  checkRules,
  ruleFor,
  type RetentionRule,
  type StreamEvent,
  type StreamStats,
} from './retention.js';
export { GroupMachine } from './group.js';
export type {
  ApplyResult,
  GroupConfig,
  GroupCounters,
  GroupJson,
  GroupOp,
  GroupStats,
  StreamView,
} from './group-ops.js';
