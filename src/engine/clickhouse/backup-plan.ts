/**
 * The incremental decision of a ClickHouse logical backup, as pure functions:
 * from what the server holds now (units with fingerprints) and what earlier
 * backups stored (their manifest entries), which units are reused, which are
 * exported, and which need a content digest before deciding.
 *
 * Reuse is looked up by (database, table, partition id) and then fingerprint
 * (or, after a mutation moved only the mutation version, by digest); never by
 * finding an object key.
 */
import { storedColumns, tableKey, type TableInfo } from './catalog.ts'
import { columnsHash, compareFingerprints } from './fingerprint.ts'
import type { ChObject } from './manifest.ts'
import type { PartitionSnapshot } from './partitions.ts'

/** One unit of backup as the server holds it now. */
export interface BackupUnit {
  database: string
  table: string
  partitionId: string
  /** Partition value as the server prints it (messages only). */
  partition: string
  kind: 'partition' | 'table'
  /** The table's incarnation (table-identity.ts); objects of another incarnation are never reused. */
  tableIdentity: string
  fingerprint: string
  rows: number
  /** Estimated raw bytes (progress and scheduling only). */
  bytes: number
  /** Partition units: the active parts the fingerprint was computed from. */
  parts?: string[]
  /** Table units: the digest measured before planning (part of the fingerprint). */
  digest?: string
}

/** What to do with one unit. */
export type PlannedUnit =
  | { action: 'reuse'; unit: BackupUnit; object: ChObject; byDigest: boolean }
  | { action: 'check'; unit: BackupUnit; candidates: ChObject[] }
  | { action: 'export'; unit: BackupUnit; reason: 'new' | 'changed' | 'full' }

/** The units of a MergeTree table: one per partition. */
export function partitionUnits(table: Pick<TableInfo, 'database' | 'name'>, tableIdentity: string, partitions: readonly PartitionSnapshot[]): BackupUnit[] {
  return partitions.map((p) => ({
    database: table.database,
    table: table.name,
    tableIdentity,
    partitionId: p.partitionId,
    partition: p.partition,
    kind: 'partition' as const,
    fingerprint: p.fingerprint,
    rows: p.rows,
    bytes: p.bytes,
    parts: [...p.parts],
  }))
}

/**
 * The fingerprint of a whole non-MergeTree table: its row count, column list
 * and content digest (such tables have no parts to fingerprint, so the digest
 * decides reuse). `t1-r<rows>-c<columns>-d<digest>`.
 */
export function tableUnitFingerprint(rows: number, digest: string, columns: TableInfo['columns']): string {
  return `t1-r${rows}-c${columnsHash(columns)}-d${digest}`
}

/** The unit of a non-MergeTree storage table measured as `rows`/`digest`; none when it is empty (nothing to store). */
export function tableUnit(table: TableInfo, tableIdentity: string, measured: { rows: number; digest: string }): BackupUnit | undefined {
  if (measured.rows === 0) return undefined
  return {
    database: table.database,
    table: table.name,
    tableIdentity,
    partitionId: 'all',
    partition: 'tuple()',
    kind: 'table',
    fingerprint: tableUnitFingerprint(measured.rows, measured.digest, table.columns),
    rows: measured.rows,
    bytes: 0,
    digest: measured.digest,
  }
}

const unitKey = (o: Pick<BackupUnit, 'database' | 'table' | 'partitionId' | 'tableIdentity'>) => [tableKey(o.database, o.table), o.partitionId, o.tableIdentity].join('\0')

/** Newest first: objects written by later backups first (backup ids sort by time). */
const newestFirst = (a: ChObject, b: ChObject) => (a.writtenBy < b.writtenBy ? 1 : a.writtenBy > b.writtenBy ? -1 : a.key < b.key ? 1 : -1)

/**
 * Decides each unit: `full` exports everything; otherwise an earlier object
 * with the same fingerprint is reused, objects whose fingerprint differs only
 * by a later mutation version (and that have a digest) make the unit a
 * `check`, and anything else is exported.
 */
export function planBackup(units: readonly BackupUnit[], previous: readonly ChObject[], opts: { full: boolean }): PlannedUnit[] {
  const byUnit = new Map<string, ChObject[]>()
  for (const o of previous) {
    const k = unitKey(o)
    byUnit.set(k, [...(byUnit.get(k) ?? []), o])
  }
  return units.map((unit): PlannedUnit => {
    if (opts.full) return { action: 'export', unit, reason: 'full' }
    const earlier = (byUnit.get(unitKey(unit)) ?? []).sort(newestFirst)
    const same = earlier.find((o) => o.fingerprint === unit.fingerprint)
    if (same) return { action: 'reuse', unit, object: same, byDigest: false }
    const candidates = unit.kind === 'partition' ? earlier.filter((o) => o.digest !== null && compareFingerprints(o.fingerprint, unit.fingerprint) === 'mutated') : []
    if (candidates.length > 0) return { action: 'check', unit, candidates }
    return { action: 'export', unit, reason: earlier.length > 0 ? 'changed' : 'new' }
  })
}

/** After a `check`: reuse the candidate whose content equals the measured digest, else export. */
export function resolveCheck(planned: Extract<PlannedUnit, { action: 'check' }>, measured: { rows: number; digest: string } | undefined): PlannedUnit {
  const match = measured && planned.candidates.find((o) => o.digest === measured.digest && o.rows === measured.rows)
  if (match) return { action: 'reuse', unit: planned.unit, object: match, byDigest: true }
  return { action: 'export', unit: planned.unit, reason: 'changed' }
}

/** The manifest entry of a reused object: the same stored object, recorded with the unit's current fingerprint. */
export function reusedEntry(object: ChObject, unit: BackupUnit): ChObject {
  return { ...object, fingerprint: unit.fingerprint }
}

/** Column names of a table's Native export, in order. */
export function exportColumnNames(table: Pick<TableInfo, 'columns'>): string[] {
  return storedColumns(table).map((c) => c.name)
}
