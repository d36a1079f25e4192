/**
 * The ClickHouse backups in a repository and their restore points. A logical
 * backup holds every row committed before it started and may hold rows
 * written while it ran, so its restore point is its end time.
 */
import { TidemarkError } from '../../errors.ts'
import { readManifests } from '../manifests.ts'
import { isBackupId, type Repository } from '../repository/index.ts'
import { isClickHouseManifest, type ChBackupStats, type ClickHouseManifest } from './manifest.ts'
import { isClickHousePartsManifest } from './parts-manifest.ts'

/** One backup as `tidemark list` shows it. */
export interface ChBackupSummary {
  id: string
  method: string
  startedAt: string
  endedAt: string
  /** The time a restore of this backup brings the server back to (= endedAt). */
  restorePoint: string
  full: boolean
  serverVersion: string
  databases: string[]
  tables: number
  stats: ChBackupStats
}

/** A summary of one manifest (pure). */
export function summarize(m: ClickHouseManifest): ChBackupSummary {
  return {
    id: m.id,
    method: m.method,
    startedAt: m.startedAt,
    endedAt: m.endedAt,
    restorePoint: m.endedAt,
    full: m.full,
    serverVersion: m.serverVersion,
    databases: m.catalog.databases.map((d) => d.name),
    tables: m.catalog.tables.filter((t) => t.innerOf === undefined).length,
    stats: m.stats,
  }
}

/** Every ClickHouse backup (logical and parts), oldest first. Read-only. */
export async function listClickHouseBackups(repo: Repository): Promise<ChBackupSummary[]> {
  const ids = await repo.listManifestIds('clickhouse')
  const manifests = await readManifests(repo, ids.map((id) => ({ source: 'clickhouse' as const, id })))
  // A parts manifest has the logical one's summary fields; `method` tells them apart.
  const out = manifests.filter((m) => isClickHouseManifest(m) || isClickHousePartsManifest(m)).map((m) => summarize(m as ClickHouseManifest))
  // Ids order backups by their start second only (a random suffix decides within one): order by restore point.
  return out.sort((a, b) => Date.parse(a.restorePoint) - Date.parse(b.restorePoint) || Date.parse(a.startedAt) - Date.parse(b.startedAt) || (a.id < b.id ? -1 : 1))
}

/**
 * The backup to restore for time `at`: the one with the latest restore point
 * not after `at` (pure). TM_ERR_RESTORE_NO_BACKUP when there is none at all,
 * TM_ERR_RESTORE_OUT_OF_WINDOW (naming the first restore point) when `at` is
 * before every one.
 */
export function backupAt(backups: readonly ChBackupSummary[], at: Date): ChBackupSummary {
  if (backups.length === 0) {
    throw new TidemarkError('TM_ERR_RESTORE_NO_BACKUP', 'the repository holds no ClickHouse backup: take one with `tidemark backup clickhouse`')
  }
  const sorted = [...backups].sort((a, b) => Date.parse(a.restorePoint) - Date.parse(b.restorePoint))
  const chosen = sorted.filter((b) => Date.parse(b.restorePoint) <= at.getTime()).at(-1)
  if (!chosen) {
    const first = sorted[0] as ChBackupSummary
    throw new TidemarkError(
      'TM_ERR_RESTORE_OUT_OF_WINDOW',
      `no ClickHouse backup ends at or before ${at.toISOString()}: the earliest restore point is ${first.restorePoint} (backup ${first.id}); give a later --at, or --backup <id> (see \`tidemark list --source clickhouse\`)`,
      { details: { at: at.toISOString(), earliest: first.restorePoint } },
    )
  }
  return chosen
}

/** Reads a ClickHouse logical manifest; TM_ERR_MANIFEST_NOT_FOUND when the id names none. */
export async function readClickHouseManifest(repo: Repository, id: string): Promise<ClickHouseManifest> {
  if (!isBackupId(id)) {
    throw new TidemarkError('TM_ERR_MANIFEST_NOT_FOUND', `"${id}" is not a backup id (they look like 20261128T094000Z-ch-3fa1); list backups with \`tidemark list --source clickhouse\``)
  }
  const m = await repo.readManifest('clickhouse', id)
  if (!isClickHouseManifest(m)) {
    throw new TidemarkError('TM_ERR_MANIFEST_NOT_FOUND', `backup ${id} is not a ClickHouse logical backup (method ${m.method}); list them with \`tidemark list --source clickhouse\``)
  }
  return m
}
