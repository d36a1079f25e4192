/**
 * The configuration: one YAML file (`--config` / TIDEMARK_CONFIG, optional) plus
 * environment overrides, validated once against a strict schema and frozen.
 * See config/schema.ts for every key, its default and its environment variable(s).
 */
export { loadConfig, configFromSources, formatPath, type LoadConfigOptions } from './config/load.ts'
export { redactConfig } from './config/redact.ts'
export { clickhouseEndpoint } from './config/derive.ts'
export { maskCredentials, SECRET_MASK } from './config/mask.ts'
export { envBindings, type EnvBinding } from './config/env.ts'
export { CONFIG_SCHEMA } from './config/schema.ts'
export type {
  Config,
  RepositoryConfig,
  S3Config,
  EncryptionConfig,
  RetentionConfig,
  SecondaryConfig,
  PipelineConfig,
  ClickHouseConfig,
  PostgresConfig,
  SchedulesConfig,
  ApiConfig,
  LogLevel,
} from './config/schema.ts'
