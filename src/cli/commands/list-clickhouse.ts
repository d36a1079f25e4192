/**
 * The ClickHouse part of `tidemark list`: every logical backup with its restore
 * point (its end time: every row committed before the backup started is in it,
 * rows written while it ran may be) and its figures.
 */
import type { ChBackupSummary } from '../../engine/clickhouse/backup-catalog.ts'
import type { Lister } from './list.ts'

/** One backup as a line of text; `bytes` formats sizes. */
export function chBackupLine(b: ChBackupSummary, bytes: (n: number) => string): string {
  const s = b.stats
  return `${b.id}  restore point ${b.restorePoint}  ${b.full ? 'full       ' : 'incremental'}  ${s.partitionsTotal} partitions (${s.partitionsExported} exported)  ${s.rows} rows  ${bytes(s.storedBytes)} stored`
}

/** Lists the ClickHouse logical backups, oldest first. */
export const listClickHouse: Lister = async (_ctx, repo) => {
  const { listClickHouseBackups } = await import('../../engine/clickhouse/backup-catalog.ts')
  const { formatBytes } = await import('../targets.ts')
  const backups = await listClickHouseBackups(repo)
  return { data: { backups }, text: backups.length ? backups.map((b) => chBackupLine(b, formatBytes)).join('\n') : 'no ClickHouse backups' }
}
