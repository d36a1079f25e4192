/**
 * The ClickHouse engines (logical, and parts where configured) adapted to the daemon's
 * `ClickHouseSource`: backups of the configured server, the catalog the planner needs, the target check (the
 * engine's own preflight, read-only) and the restore, whose per-table row check is
 * the smoke check.
 */
import { backupWithMethod, type ChMethodSetting } from '../clickhouse/parts-method.ts'
import { asPlannable } from '../clickhouse/parts-manifest.ts'
import { readPartsManifest, restoreClickHouseParts } from '../clickhouse/parts-restore.ts'
import { listClickHouseBackups, readClickHouseManifest } from '../clickhouse/backup-catalog.ts'
import type { ConnectionSettings } from '../clickhouse/connection.ts'
import type { ClickHouseDriver } from '../clickhouse/driver.ts'
import type { NameFilter } from '../clickhouse/filters.ts'
import { createHttpDriver } from '../clickhouse/http-driver.ts'
import { restoreClickHouse } from '../clickhouse/restore.ts'
import { checkDependencies, conflicts, inspectTarget } from '../clickhouse/restore-preflight.ts'
import { checkDataPath } from '../clickhouse/parts-shadow.ts'
import { planRestore } from '../clickhouse/restore-plan.ts'
import { TidemarkError } from '../../errors.ts'
import type { Repository } from '../repository/index.ts'
import type { ClickHouseSource } from './facade.ts'

/** What the adapter needs: the repository, the configured server, and how to reach a target URL. */
export interface ClickHouseAdapterOptions {
  repo: Repository
  settings: ConnectionSettings
  /** Connection settings for a restore target given as a URL (credentials in it, else the configured ones). */
  targetSettings: (url: string) => ConnectionSettings
  filter?: NameFilter
  parallelism: number
  /** clickhouse.contentDigest. */
  contentDigest?: boolean
  /** clickhouse.method and clickhouse.dataPath: parts backups when the data path is this server's. */
  method?: ChMethodSetting
  dataPath?: string | undefined
}

async function withDriver<T>(s: ConnectionSettings, fn: (d: ClickHouseDriver) => Promise<T>): Promise<T> {
  const d = createHttpDriver(s)
  try {
    return await fn(d)
  } finally {
    await d.close()
  }
}

/** The ClickHouse source over the logical engine. */
export function clickhouseSource(o: ClickHouseAdapterOptions): ClickHouseSource {
  return {
    backup: ({ full, signal, log, onProgress }) =>
      withDriver(o.settings, async (driver) => {
        const m = await backupWithMethod({
          driver, repo: o.repo, url: o.settings.url, filter: o.filter, parallelism: o.parallelism, contentDigest: o.contentDigest, full, signal, onProgress, logger: log,
          method: o.method ?? 'logical', dataPath: o.dataPath, onChoice: (c) => log?.info({ method: c.method, reason: c.reason }, `ClickHouse backup method: ${c.method}`),
        })
        return { id: m.id, startedAt: m.startedAt, endedAt: m.endedAt, bytes: m.stats.exportedStoredBytes, durationMs: m.stats.durationMs, details: { method: m.method, full: m.full, stats: m.stats } }
      }),
    catalog: async () => ({ backups: (await listClickHouseBackups(o.repo)).map((b) => ({ id: b.id, startedAt: b.startedAt, endedAt: b.endedAt })) }),
    checkTarget: async (backupId, target, signal) => {
      const parts = await readPartsManifest(o.repo, backupId)
      if (parts) {
        if (target.dataPath === undefined) throw new TidemarkError('TM_ERR_USAGE', `backup ${backupId} was taken with the parts method: give targets.clickhouse.dataPath, the target server's data path as mounted where the daemon runs (or restore a logical backup where that disk cannot be reached); nothing was changed`)
        await checkDataPath(target.dataPath, true)
      }
      const manifest = parts ? asPlannable(parts) : await readClickHouseManifest(o.repo, backupId)
      await withDriver(o.targetSettings(target.url), async (driver) => {
        const plan = planRestore(manifest)
        await checkDependencies(driver, plan, signal)
        const found = conflicts(plan, await inspectTarget(driver, plan, signal))
        if (found.length === 0) return
        const list = found.slice(0, 10).map((c) => `${c.table} ${c.reason}`).join('; ')
        throw new TidemarkError('TM_ERR_RESTORE_TARGET_NOT_EMPTY', `the ClickHouse target is not empty: ${list}${found.length > 10 ? `; and ${found.length - 10} more` : ''}; restore into an empty server; nothing was changed`, { details: { store: 'clickhouse', conflicts: found } })
      })
    },
    restore: async ({ backupId, targetUrl, targetDataPath, signal, log, onProgress }) => {
      const parts = await readPartsManifest(o.repo, backupId)
      const r = await withDriver(o.targetSettings(targetUrl), async (driver) =>
        parts
          ? await restoreClickHouseParts({ driver, repo: o.repo, manifest: parts, targetDataPath, parallelism: o.parallelism, signal, onProgress, logger: log })
          : await restoreClickHouse({ driver, repo: o.repo, manifest: await readClickHouseManifest(o.repo, backupId), parallelism: o.parallelism, signal, onProgress, logger: log }),
      )
      const mismatched = r.tables.filter((t) => t.status === 'mismatch')
      return {
        ok: r.ok,
        details: {
          backupId: r.backupId, restorePoint: r.restorePoint, rowsLoaded: r.rowsLoaded, objectsLoaded: r.objectsLoaded, rawBytesLoaded: r.rawBytesLoaded,
          tables: r.tables.map((t) => ({ table: t.table, expectedRows: t.expectedRows, rows: t.rows, status: t.status })), mismatched: mismatched.map((t) => t.table),
        },
      }
    },
    ping: (signal) => withDriver(o.settings, async (driver) => void (await driver.queryRows('SELECT 1 AS ok', undefined, { signal }))),
  }
}
