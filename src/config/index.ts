/**
 * The server configuration: the convict schema (schema.ts) and how a configuration is loaded,
 * defaulted by role and validated (load.ts). Other folders import from here.
 */
export { schema, describeSettings } from './schema.js';
export {
  loadConfig,
  resolveDefaults,
  limitsOf,
  ROLE_DEFAULTS,
  type Role,
  type ServerConfig,
  type LoadOptions,
} from './load.js';
export { retentionRules, DEFAULT_RETENTION } from './events-schema.js';
