/**
 * Reads a MergeTree table's partitions from system.parts (active parts only)
 * and computes their fingerprints. One query per table; no table data is read.
 */
import type { ClickHouseDriver } from './driver.ts'
import type { ColumnInfo } from './catalog.ts'
import { fingerprint, type PartRow } from './fingerprint.ts'

/** One partition as the backup sees it. */
export interface PartitionSnapshot {
  /** `system.parts.partition_id` (`all` for an unpartitioned table). */
  partitionId: string
  /** The partition value as the server prints it (for messages; not a SQL literal on every version). */
  partition: string
  rows: number
  /** Uncompressed bytes of the active parts (a size estimate for progress). */
  bytes: number
  /** Names of the active parts the fingerprint was computed from. */
  parts: string[]
  /** Those parts with their rows and block numbers. */
  partRows: PartRow[]
  fingerprint: string
}

/** One row of system.parts as PARTS_SQL reads it (64-bit numbers as strings). */
export interface SystemPartRow {
  partition_id: string
  partition: string
  name: string
  rows: string
  min_block_number: string
  max_block_number: string
  data_version: string
  data_uncompressed_bytes: string
}

/** Groups rows of system.parts by partition and fingerprints each group (pure). */
export function snapshotsFromParts(rows: readonly SystemPartRow[], columns: readonly ColumnInfo[]): PartitionSnapshot[] {
  const groups = new Map<string, SystemPartRow[]>()
  for (const r of rows) groups.set(r.partition_id, [...(groups.get(r.partition_id) ?? []), r])
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([partitionId, parts]) => {
      const partRows: PartRow[] = parts.map((p) => ({ name: p.name, rows: p.rows, minBlock: p.min_block_number, maxBlock: p.max_block_number, dataVersion: p.data_version }))
      return {
        partitionId,
        partition: parts[0]?.partition ?? '',
        rows: parts.reduce((n, p) => n + Number(p.rows), 0),
        bytes: parts.reduce((n, p) => n + Number(p.data_uncompressed_bytes), 0),
        parts: parts.map((p) => p.name).sort(),
        partRows,
        fingerprint: fingerprint(partRows, columns),
      }
    })
}

const PARTS_SQL = `SELECT partition_id, partition, name, rows, min_block_number, max_block_number, data_version, data_uncompressed_bytes
FROM system.parts WHERE database = {db:String} AND table = {table:String} AND active ORDER BY partition_id, name`

/** The partitions of `db.table` with fingerprints; `columns` from discovery (all kinds, in table order). Read-only. */
export async function readPartitions(driver: ClickHouseDriver, database: string, table: string, columns: readonly ColumnInfo[]): Promise<PartitionSnapshot[]> {
  const rows = await driver.queryRows<SystemPartRow>(PARTS_SQL, { db: database, table })
  return snapshotsFromParts(rows, columns)
}

/**
 * True when every part in `names` is still active. Run after an export that
 * selected `_part IN names`: a part that was merged away before the export
 * started would have been skipped silently, and a part never becomes active
 * again, so "still active afterwards" proves it was read.
 */
export async function partsStillActive(driver: ClickHouseDriver, database: string, table: string, names: readonly string[]): Promise<boolean> {
  const rows = await driver.queryRows<{ n: string }>(
    'SELECT count() AS n FROM system.parts WHERE database = {db:String} AND table = {table:String} AND active AND has({names:Array(String)}, name)',
    { db: database, table, names: [...names] },
  )
  return Number(rows[0]?.n ?? 0) === new Set(names).size
}
