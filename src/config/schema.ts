/**
 * The configuration schema: every key tidemark reads, its type, default and the
 * checks it must pass. The Config type is inferred from it. Environment names are
 * derived from the key paths (env.ts); the LangSmith chart's names are aliases.
 */
import * as chk from './checks.ts'
import { bool, int, list, obj, oneOf, opt, secret, str, type Infer, type RelativeProblem } from './kit.ts'

const path = () => opt(str({ check: chk.checkNonEmpty, transform: chk.toAbsolutePath, expected: 'a path' }))
const cron = (dflt?: string) => opt(str({ default: dflt, check: chk.checkCron, transform: chk.cronOrOff, expected: 'a cron expression' }))
const repoUrl = (dflt?: (cwd: string) => string) =>
  str({ default: dflt && ((ctx) => dflt(ctx.cwd)), check: chk.checkRepoUrl, transform: chk.toRepoUrl, expected: 'a repository URL' })

function checkS3Credentials(s: { accessKeyId?: string; secretAccessKey?: string; sessionToken?: string }): RelativeProblem[] {
  const pair = [s.accessKeyId, s.secretAccessKey].filter((v) => v !== undefined).length
  if (pair === 1) return [{ path: [], message: 'set both accessKeyId and secretAccessKey, or neither (then the AWS default credential chain is used)' }]
  if (pair === 0 && s.sessionToken !== undefined) return [{ path: [], message: 'sessionToken needs accessKeyId and secretAccessKey' }]
  return []
}

const s3 = obj({
  endpoint: opt(str({ check: chk.checkHttpUrl })),
  region: str({ default: 'us-east-1', check: chk.checkNonEmpty }),
  forcePathStyle: bool(false),
  accessKeyId: secret(),
  secretAccessKey: secret(),
  sessionToken: secret(),
  sse: oneOf(['none', 'AES256', 'aws:kms'], 'none'),
  kmsKeyId: opt(str({ check: chk.checkNonEmpty })),
  // S3 refuses parts under 5 MiB (except the last) and over 5 GiB.
  partSizeMiB: int({ min: 5, max: 5120, default: 8 }),
  queueSize: int({ min: 1, max: 64, default: 4 }),
}, { refine: checkS3Credentials })

const encryption = obj(
  {
    passphrase: secret({ check: chk.checkNonEmpty }),
    keyFile: path(),
  },
  {
    refine: (e): RelativeProblem[] =>
      e.passphrase !== undefined && e.keyFile !== undefined ? [{ path: [], message: 'set either passphrase or keyFile, not both' }] : [],
  },
)

const retention = obj({
  // At least one: a policy must never delete every backup.
  keepLast: int({ min: 1, default: 7 }),
  keepDaily: int({ min: 0, default: 7 }),
  keepWeekly: int({ min: 0, default: 4 }),
  minAgeHours: int({ min: 0, default: 24 }),
  safetyMarginHours: int({ min: 0, default: 24 }),
})

const secondary = obj({
  name: str({ check: (v) => (/^[a-z0-9][a-z0-9_-]{0,62}$/i.test(v) ? undefined : 'expected a name of letters, digits, - and _') }),
  url: repoUrl(),
  s3,
  encryption: opt(encryption),
  retention: opt(retention),
  // Objects copied at once by `replicate` to this secondary.
  parallelism: int({ min: 1, max: 64, default: 8 }),
})

function uniqueNames(items: readonly { name: string }[]): RelativeProblem[] {
  const seen = new Set<string>()
  const out: RelativeProblem[] = []
  items.forEach((s, i) => {
    if (seen.has(s.name)) out.push({ path: [i, 'name'], message: `duplicate secondary name "${s.name}"` })
    seen.add(s.name)
  })
  return out
}

function needsServer(missing: boolean, store: string, keys: string): RelativeProblem[] {
  return missing ? [{ path: ['enabled'], message: `${store} is enabled but no server is set: set ${keys}` }] : []
}

const has = (raw: Readonly<Record<string, unknown>>, ...keys: string[]) => keys.some((k) => raw[k] !== undefined && raw[k] !== null)

// A restore hook: a command (argv, no shell) and/or a webhook that receives the plan.
const hook = obj({ command: list(str({ check: chk.checkNonEmpty })), webhook: opt(str({ check: chk.checkHttpUrl })) })

/** The whole configuration schema. */
export const CONFIG_SCHEMA = obj({
  repository: obj({
    url: repoUrl((cwd) => chk.toRepoUrl('tidemark-repo', { cwd })),
    s3,
    encryption,
    lease: obj({ ttlSeconds: int({ min: 5, max: 3600, default: 60 }) }),
  }),
  secondaries: list(secondary, { refine: uniqueNames }),
  pipeline: obj({
    threads: int({ min: 1, max: 256, default: (ctx) => ctx.cpus }),
    chunkSizeMiB: int({ min: 1, max: 64, default: 4 }),
    level: int({ min: 1, max: 22, default: 3 }),
    maxInFlight: int({ min: 1, max: 1024, default: (ctx) => Math.max(4, ctx.cpus * 2 + 2) }),
  }),
  clickhouse: obj({
    // On when a server is configured, unless set explicitly.
    enabled: bool((_ctx, raw) => has(raw, 'url', 'host')),
    // The whole endpoint; when set, host/port/tls are not used.
    url: opt(str({ check: chk.checkHttpUrl })),
    host: opt(str({ check: chk.checkNonEmpty })),
    port: int({ min: 1, max: 65535, default: 8123 }),
    user: str({ default: 'default' }),
    password: secret(),
    database: str({ default: 'default', check: chk.checkNonEmpty }),
    tls: bool(false),
    databases: obj({ include: list(str({ check: chk.checkNonEmpty })), exclude: list(str({ check: chk.checkNonEmpty })) }),
    method: oneOf(['logical', 'parts', 'auto'], 'logical'),
    dataPath: path(),
    // Partitions exported at once. Each one costs the server a query and tidemark ~30 MiB;
    // more than the cores only adds contention (measured in bench/RESULTS.md). The parts
    // method moves two to four times as many parts at once (local files: see partsAtOnce).
    parallelism: int({ min: 1, max: 64, default: (ctx) => Math.min(4, ctx.cpus) }),
    // Record a content digest of every exported partition: a second read of its rows on the
    // server (~0.5 s per GiB here), for reuse after UPDATE mutations and a content check on restore.
    contentDigest: bool(false),
  }, { refine: (c) => needsServer(c.enabled && c.url === undefined && c.host === undefined, 'ClickHouse', 'clickhouse.url or clickhouse.host (CLICKHOUSE_HOST)') }),
  postgres: obj({
    enabled: bool((_ctx, raw) => has(raw, 'url')),
    url: opt(str({ check: chk.checkPostgresUrl, transform: chk.toPostgresUrl })),
    method: oneOf(['physical', 'logical'], 'physical'),
    replicationUrl: opt(str({ check: chk.checkPostgresUrl, transform: chk.toPostgresUrl })),
    binDir: path(),
    slot: str({ default: 'tidemark', check: chk.checkSlotName }),
    walDir: path(),
    walPartialIntervalSeconds: int({ min: 1, max: 3600, default: 10 }),
    baseBackupWalTimeoutSeconds: int({ min: 1, max: 86400, default: 300 }),
  }, { refine: (p) => needsServer(p.enabled && p.url === undefined, 'PostgreSQL', 'postgres.url (POSTGRES_DATABASE_URI)') }),
  schedules: obj({
    clickhouse: obj({ incremental: cron('*/15 * * * *'), full: cron('0 3 * * 0') }),
    postgres: obj({ base: cron('0 2 * * *') }),
    prune: cron('0 4 * * *'),
    replicate: cron(),
  }),
  retention,
  api: obj({
    host: str({ default: '0.0.0.0', check: chk.checkNonEmpty }),
    port: int({ min: 0, max: 65535, default: 7575 }),
    readToken: secret({ check: chk.checkNonEmpty }),
    adminToken: secret({ check: chk.checkNonEmpty }),
    metricsAuth: bool(false),
    bodyLimitBytes: int({ min: 1024, max: 1024 * 1024 * 1024, default: 1024 * 1024 }),
  }),
  daemon: obj({
    // How long SIGTERM waits for running jobs before aborting them.
    shutdownGraceSeconds: int({ min: 0, max: 86400, default: 30 }),
    // Finished jobs kept for GET /v1/jobs.
    jobHistory: int({ min: 1, max: 10000, default: 100 }),
  }),
  hooks: obj({ preRestore: hook, postRestore: hook, timeoutSeconds: int({ min: 1, max: 86400, default: 600 }) }),
  log: obj({ level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info') }),
})

/** The validated, frozen configuration. */
export type Config = Infer<typeof CONFIG_SCHEMA>
// Named parts of Config, for code that takes one section.
/** `repository`: primary URL, S3 settings, encryption keys, lease. */
export type RepositoryConfig = Config['repository']
/** Connection settings of an S3-compatible store (use cli/repo.ts sinkSettings to get the Sink's form). */
export type S3Config = Infer<typeof s3>
/** Passphrase or key file (never both). */
export type EncryptionConfig = Infer<typeof encryption>
/** A retention policy (the top-level one, or a secondary's own). */
export type RetentionConfig = Infer<typeof retention>
/** One secondary repository (cross-region copy). */
export type SecondaryConfig = Infer<typeof secondary>
/** Chunking, compression level, worker threads, in-flight bound. */
export type PipelineConfig = Config['pipeline']
/** The ClickHouse source. */
export type ClickHouseConfig = Config['clickhouse']
/** The PostgreSQL source. */
export type PostgresConfig = Config['postgres']
/** Cron expressions; undefined means not scheduled. */
export type SchedulesConfig = Config['schedules']
/** The HTTP API. */
export type ApiConfig = Config['api']
/** A pino level name. */
export type LogLevel = Config['log']['level']
/** Restore hooks (pre/post) and their timeout. */
export type HooksConfig = Config['hooks']
/** One restore hook. */
export type HookConfig = Config['hooks']['preRestore']
/** Shutdown grace and job history of the daemon. */
export type DaemonConfig = Config['daemon']
