/**
 * Repository locations for the replicate, prune and verify commands: the primary,
 * a configured secondary (by name, or by its URL given as `--repo`, so reading from
 * the secondary after a regional failover uses its own endpoint, credentials and
 * keys), or an ad hoc URL (reached with the primary's settings). Loaded lazily by
 * the commands: it pulls in the S3 SDK.
 */
import type { Config, EncryptionConfig, RetentionConfig, S3Config } from '../config.ts'
import { toRepoUrl } from '../config/checks.ts'
import { openRepository, type Repository } from '../engine/repository/index.ts'
import { sameStoreCopier, type ReplicaTarget } from '../engine/replicate.ts'
import { TidemarkError } from '../errors.ts'
import { openSink } from '../sinks/url.ts'
import type { CommandContext } from './command.ts'
import { repositoryOptions, sinkSettings } from './repo.ts'

/** A repository location and everything needed to reach it. */
export interface Place {
  /** `primary`, a secondary's name, or the URL of an ad hoc location. */
  name: string
  url: string
  s3: S3Config
  encryption: EncryptionConfig
  retention: RetentionConfig
  /** Objects copied at once when this is a replication target. */
  parallelism: number
  secondary: boolean
}

const DEFAULT_PARALLELISM = 8

/** The primary at `url` (default: the configured one). */
export function primaryPlace(config: Config, url = config.repository.url): Place {
  const { s3, encryption } = config.repository
  return { name: 'primary', url, s3, encryption, retention: config.retention, parallelism: DEFAULT_PARALLELISM, secondary: false }
}

function secondaryPlace(config: Config, s: Config['secondaries'][number]): Place {
  return {
    name: s.name,
    url: s.url,
    s3: s.s3,
    encryption: s.encryption ?? config.repository.encryption,
    retention: s.retention ?? config.retention,
    parallelism: s.parallelism,
    secondary: true,
  }
}

/** A configured secondary by name, or the location a URL names (a configured secondary's settings when it is one). */
function placeOf(config: Config, nameOrUrl: string, cwd: string): Place {
  const byName = config.secondaries.find((s) => s.name === nameOrUrl)
  if (byName) return secondaryPlace(config, byName)
  if (!/^[a-z][a-z0-9+.-]*:|^\//i.test(nameOrUrl)) {
    const names = config.secondaries.map((s) => s.name)
    throw new TidemarkError('TM_ERR_USAGE', `no secondary named "${nameOrUrl}"${names.length ? ` (configured: ${names.join(', ')})` : ' (none configured)'}; or give a URL (s3://bucket/prefix, file:///path)`)
  }
  const url = toRepoUrl(nameOrUrl, { cwd })
  const configured = config.secondaries.find((s) => s.url === url)
  if (configured) return secondaryPlace(config, configured)
  return { ...primaryPlace(config, url), name: url, secondary: url !== config.repository.url }
}

/** The repository a command works on: `--secondary <name>`, else `--repo <url>`, else the configured primary. */
export async function chosenPlace(ctx: CommandContext): Promise<Place> {
  const config = await ctx.config()
  const name = ctx.string('secondary')
  const repo = ctx.string('repo')
  if (name !== undefined && repo !== undefined) throw new TidemarkError('TM_ERR_USAGE', 'give --repo or --secondary, not both')
  if (name !== undefined) {
    const s = config.secondaries.find((x) => x.name === name)
    if (!s) return placeOf(config, name, ctx.cwd) // throws the usage error naming the configured ones
    return secondaryPlace(config, s)
  }
  return repo === undefined ? primaryPlace(config) : placeOf(config, repo, ctx.cwd)
}

/** Replication targets: `--to <name|url>`, else every configured secondary (TM_ERR_USAGE when there is none). */
export function replicaPlaces(config: Config, to: string | undefined, cwd: string): Place[] {
  if (to !== undefined) return [placeOf(config, to, cwd)]
  if (config.secondaries.length === 0) {
    throw new TidemarkError('TM_ERR_USAGE', 'no secondaries are configured: add `secondaries` to the configuration (or TIDEMARK_SECONDARIES), or give --to <url>')
  }
  return config.secondaries.map((s) => secondaryPlace(config, s))
}

/**
 * Opens the repository at `place` with its own settings and keys, runs `fn`, closes it
 * whatever happens. Without `decode`, the command never runs the pipeline (it copies,
 * lists, deletes or checks sizes), so one worker thread is started instead of the
 * configured number: each idle worker costs about 25 MiB of resident memory.
 */
export async function withRepositoryAt<T>(config: Config, place: Place, fn: (repo: Repository) => Promise<T>, use: { decode: boolean } = { decode: false }): Promise<T> {
  const sink = openSink(place.url, sinkSettings(place.s3))
  const base = repositoryOptions(config)
  const pipeline = use.decode ? base.pipeline : { ...base.pipeline, threads: 1 }
  const opts = { ...base, pipeline, passphrase: place.encryption.passphrase, keyFile: place.encryption.keyFile }
  let repo: Repository
  try {
    repo = await openRepository(sink, opts)
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

/** The replication target for `place` (server-side copies when it shares the primary's bucket); `close` releases it. */
export function openTarget(primary: Place, place: Place): ReplicaTarget & { close(): Promise<void> } {
  const sink = openSink(place.url, sinkSettings(place.s3))
  const serverCopy = sameStoreCopier({ url: primary.url, settings: sinkSettings(primary.s3) }, { url: place.url, settings: sinkSettings(place.s3) })
  return {
    name: place.name,
    sink,
    serverCopy,
    policy: place.retention,
    async close() {
      await serverCopy?.close()
      await sink.close()
    },
  }
}

/** Bytes for people: `512 B`, `1.5 KiB`, `3.2 GiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`
}
