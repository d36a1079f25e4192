/**
 * Building the daemon core from the configuration (not a command itself): the
 * sources adapted from the engines, prune, replication and its lag. `tidemark
 * daemon`, `tidemark restore` and `tidemark restore-points` all use it, so the CLI
 * plans and restores exactly as the API does.
 */
import type { Config } from '../../config.ts'
import type { ClickHouseSource, PostgresSource } from '../../engine/daemon/facade.ts'
import type { MetricsSnapshot } from '../../engine/daemon/metrics.ts'
import { Daemon } from '../../engine/daemon/services.ts'
import { systemClock } from '../../engine/clock.ts'
import type { Repository } from '../../engine/repository/index.ts'
import type { Logger } from '../../log.ts'
import type { CommandContext } from '../command.ts'

/** How the core is used: the daemon runs services and schedules; the CLI only plans and restores. */
export interface WiringOptions {
  mode: 'daemon' | 'cli'
  repoUrl: string
}

const LAG_CACHE_MS = 60_000

async function clickhouse(config: Config, repo: Repository): Promise<ClickHouseSource | undefined> {
  if (!config.clickhouse.enabled) return undefined
  const { clickhouseAt, configuredClickHouse } = await import('../clickhouse.ts')
  const { clickhouseSource } = await import('../../engine/daemon/adapters-clickhouse.ts')
  return clickhouseSource({ repo, settings: configuredClickHouse(config), targetSettings: (url) => clickhouseAt(config, url), filter: config.clickhouse.databases, parallelism: config.clickhouse.parallelism, contentDigest: config.clickhouse.contentDigest, method: config.clickhouse.method, dataPath: config.clickhouse.dataPath })
}

async function postgres(ctx: CommandContext, config: Config, repo: Repository, log: Logger, o: WiringOptions): Promise<PostgresSource | undefined> {
  if (!config.postgres.enabled) return undefined
  const common = await import('./postgres-common.ts')
  if (config.postgres.method === 'logical') {
    const { logicalPostgresSource } = await import('../../engine/daemon/adapters-postgres-logical.ts')
    return logicalPostgresSource({ repo, ...common.logicalSettings(config) })
  }
  const s = common.physicalSettings(config, ctx.cwd)
  const { walFetchRestoreCommand } = await import('../../engine/postgres/restore.ts')
  const { postgresSource } = await import('../../engine/daemon/adapters-postgres.ts')
  const cfg = common.configFile(ctx)
  const program = [common.launcherPath(), ...(cfg === undefined ? [] : ['--config', cfg])]
  return postgresSource({
    repo, clock: systemClock, log, url: s.url, replicationUrl: s.replicationUrl, binDir: s.binDir, slot: s.slot, walDir: s.walDir, intervalMs: s.intervalMs, walTimeoutMs: s.walTimeoutMs,
    restoreCommand: (id) => walFetchRestoreCommand(program, o.repoUrl, id), archive: o.mode === 'daemon',
  })
}

/** Prune, replication and replication lag over the configured secondaries (daemon mode only). */
async function repositoryTasks(config: Config, repo: Repository, o: WiringOptions) {
  const { prune } = await import('../../engine/prune.ts')
  const pruneFn = async (signal: AbortSignal) => {
    signal.throwIfAborted()
    const r = await prune(repo, { policy: config.retention })
    return { deleted: r.deleted, manifests: r.plan.manifests.length }
  }
  if (config.secondaries.length === 0) return { prune: pruneFn }
  const { replicate, replicateWal, replicationLag } = await import('../../engine/replicate.ts')
  const { openTarget, primaryPlace, replicaPlaces } = await import('../targets.ts')
  const primary = primaryPlace(config, o.repoUrl)
  const places = replicaPlaces(config, undefined, process.cwd())
  // Every secondary is tried even when one fails (one region down must not stop the others);
  // the first failure is reported after all have been tried.
  const eachSecondary = async <T>(fn: (target: ReturnType<typeof openTarget>, place: (typeof places)[number]) => Promise<T>): Promise<T[]> => {
    const out: T[] = []
    const errors: unknown[] = []
    for (const place of places) {
      const target = openTarget(primary, place)
      try {
        out.push(await fn(target, place))
      } catch (err) {
        errors.push(err)
      } finally {
        await target.close()
      }
    }
    if (errors.length > 0) throw errors[0]
    return out
  }
  const replicateFn = async (signal: AbortSignal) => ({
    targets: await eachSecondary((target, place) => replicate(repo, target, { parallelism: place.parallelism, leaseTtlMs: config.repository.lease.ttlSeconds * 1000, signal })),
  })
  const replicateWalFn = async (signal: AbortSignal) => {
    await eachSecondary((target, place) => replicateWal(repo, target, { parallelism: place.parallelism, signal }))
  }
  let cached: { at: number; value: Promise<MetricsSnapshot['replication']> } | undefined
  const lag = () => {
    if (cached && Date.now() - cached.at < LAG_CACHE_MS) return cached.value
    const value = (async () => {
      const out: MetricsSnapshot['replication'] = []
      for (const place of places) {
        const target = openTarget(primary, place)
        try {
          const l = await replicationLag(repo, target)
          out.push(l.ok ? { target: l.target, ok: true, seconds: l.seconds, bytes: l.bytes } : { target: l.target, ok: false })
        } finally {
          await target.close()
        }
      }
      return out
    })()
    cached = { at: Date.now(), value }
    return value
  }
  return { prune: pruneFn, replicate: replicateFn, replicateWal: replicateWalFn, replicationLag: lag }
}

/** The daemon core over `repo`, wired from the configuration. */
export async function wireDaemon(ctx: CommandContext, config: Config, repo: Repository, log: Logger, version: string, o: WiringOptions): Promise<Daemon> {
  const tasks = o.mode === 'daemon' ? await repositoryTasks(config, repo, o) : {}
  return new Daemon({
    version, repo, clock: systemClock, log, config,
    clickhouse: await clickhouse(config, repo),
    postgres: await postgres(ctx, config, repo, log, o),
    ...tasks,
  })
}
