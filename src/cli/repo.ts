/**
 * Reaching the repository from a command: the URL (`--repo`, else TIDEMARK_REPOSITORY
 * / configuration), the sink settings and keys from configuration, and closing
 * everything afterwards whatever happens. Commands import this module lazily
 * (`await import('../repo.ts')`): it pulls in the S3 SDK, which costs a fifth of a
 * second at start, and `--help` or `--version` should not pay for it.
 */
import type { Config, S3Config } from '../config.ts'
import { toRepoUrl } from '../config/checks.ts'
import { initRepository, openRepository, type Repository, type RepositoryOptions } from '../engine/repository/index.ts'
import { isTidemarkError } from '../errors.ts'
import { openSink, type OpenSinkSettings } from '../sinks/url.ts'
import type { CommandContext } from './command.ts'

const MiB = 1024 * 1024

/** Sink settings from a configuration `s3` section (credentials only when given; else the AWS default chain). */
export function sinkSettings(s3: S3Config): OpenSinkSettings {
  const { accessKeyId, secretAccessKey, sessionToken } = s3
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    credentials: accessKeyId !== undefined && secretAccessKey !== undefined ? { accessKeyId, secretAccessKey, sessionToken } : undefined,
    sse: s3.sse,
    kmsKeyId: s3.kmsKeyId,
    partSize: s3.partSizeMiB * MiB,
    queueSize: s3.queueSize,
  }
}

/** Repository options (keys, pipeline, lease) from configuration. */
export function repositoryOptions(config: Config): RepositoryOptions {
  const { encryption, lease } = config.repository
  return {
    passphrase: encryption.passphrase,
    keyFile: encryption.keyFile,
    leaseTtlSeconds: lease.ttlSeconds,
    pipeline: { threads: config.pipeline.threads, chunkSize: config.pipeline.chunkSizeMiB * MiB, level: config.pipeline.level, maxInFlight: config.pipeline.maxInFlight },
  }
}

/**
 * How to reach the repository at `url`: a configured secondary's own endpoint,
 * credentials and keys when the URL is one (restoring from the DR region with
 * `--repo <secondary url>`), else the primary's.
 */
export function settingsFor(config: Config, url: string): { sink: OpenSinkSettings; options: RepositoryOptions } {
  const secondary = config.secondaries.find((s) => s.url === url)
  const options = repositoryOptions(config)
  if (!secondary) return { sink: sinkSettings(config.repository.s3), options }
  const encryption = secondary.encryption ?? config.repository.encryption
  return { sink: sinkSettings(secondary.s3), options: { ...options, passphrase: encryption.passphrase, keyFile: encryption.keyFile } }
}

/** The repository URL for this command: `--repo`, else the configured one (TIDEMARK_REPOSITORY included). */
export async function repoUrl(ctx: CommandContext): Promise<string> {
  const given = ctx.string('repo')
  return given === undefined ? (await ctx.config()).repository.url : toRepoUrl(given, { cwd: ctx.cwd })
}

/**
 * Opens (or, with `create`, initialises) the repository at `url`, runs `fn`, and
 * closes the repository and its sink whatever happens.
 */
export async function withRepository<T>(config: Config, url: string, mode: 'open' | 'init', fn: (repo: Repository) => Promise<T>): Promise<T> {
  const reach = settingsFor(config, url)
  const sink = openSink(url, reach.sink)
  let repo: Repository
  try {
    repo = mode === 'init' ? await initRepository(sink, reach.options) : await openRepository(sink, reach.options)
  } catch (err) {
    await sink.close()
    throw err
  }
  try {
    return await fn(repo)
  } finally {
    await repo.close()
  }
}

/** Opens the repository, creating it first when there is none (the daemon's start). `repo.close()` closes the sink. */
export async function openOrInit(config: Config, url: string): Promise<{ repo: Repository; created: boolean }> {
  const sink = openSink(url, sinkSettings(config.repository.s3))
  const opts = repositoryOptions(config)
  try {
    try {
      return { repo: await openRepository(sink, opts), created: false }
    } catch (err) {
      if (!isTidemarkError(err, 'TM_ERR_REPO_NOT_FOUND')) throw err
    }
    try {
      return { repo: await initRepository(sink, opts), created: true }
    } catch (err) {
      // Another process created it between our two calls: use theirs.
      if (!isTidemarkError(err, 'TM_ERR_REPO_EXISTS')) throw err
      return { repo: await openRepository(sink, opts), created: false }
    }
  } catch (err) {
    await sink.close()
    throw err
  }
}
