/**
 * Exporting one unit into the repository, so that the object holds exactly
 * what the recorded fingerprint and digest describe.
 *
 * A partition is read with `_partition_id = … AND _part IN (<the parts the
 * fingerprint was computed from>)`: on 18.x this also skips every other part.
 * A part merged away before the export started would be skipped silently, so
 * the export must prove it read them all. A `count()` (same predicate; with
 * the content digest when that is asked for) is
 * started as soon as the export's response has begun, that is after the
 * export took its snapshot of active parts; if it counts every row of
 * the listed parts, they were all still active when it started, hence when the
 * export started (a part never becomes active again). Merges while the export
 * streams do no harm: a running query keeps the parts it started with. When
 * the count falls short (or when the server counts rows differently from
 * system.parts, as with lightweight deletes), `partsStillActive` after the
 * fact is the second, stricter proof. Without either proof the partition is
 * read again with a fresh part list, a bounded number of times.
 */
import type { Readable } from 'node:stream'
import { TidemarkError } from '../../errors.ts'
import type { Repository } from '../repository/index.ts'
import { exportColumnNames, partitionUnits, type BackupUnit } from './backup-plan.ts'
import type { TableInfo } from './catalog.ts'
import type { ClickHouseDriver } from './driver.ts'
import { countSql, digestSql, exportSql, partitionPredicate } from './export-sql.ts'
import type { ChObject } from './manifest.ts'
import { objectKey } from './object-keys.ts'
import type { Appended } from './fingerprint.ts'
import { partsStillActive, readPartitions } from './partitions.ts'

/** Attempts per partition before the backup gives up on it (each attempt follows a merge that replaced its parts). */
export const EXPORT_ATTEMPTS = 4

/** What an export needs besides the unit. */
export interface ExportContext {
  driver: ClickHouseDriver
  repo: Repository
  backupId: string
  signal: AbortSignal
  /** Also record each export's content digest (a second read of its rows on the server); else count() only. */
  contentDigest: boolean
  /** Raw bytes of each object once it is stored (not per chunk: a stream stage per 4 KiB HTTP chunk costs measurable CPU). */
  onBytes(n: number): void
}

/** `count()` and, when measured, the digest of a set of rows. */
export interface Measured<D extends string | null = string | null> {
  rows: number
  digest: D
}

/** Runs digestSql with `predicate` and returns rows and digest. */
export async function measure(driver: ClickHouseDriver, table: TableInfo, predicate: string | undefined, digest: true, signal?: AbortSignal): Promise<Measured<string>>
/** Rows only (digest null) unless `digest`: a count() reads no column, the digest every one. */
export async function measure(driver: ClickHouseDriver, table: TableInfo, predicate: string | undefined, digest: boolean, signal?: AbortSignal): Promise<Measured>
export async function measure(driver: ClickHouseDriver, table: TableInfo, predicate: string | undefined, digest: boolean, signal?: AbortSignal): Promise<Measured> {
  const sql = digest ? digestSql(table, predicate) : countSql(table, predicate)
  const [r] = await driver.queryRows<{ rows: string | number; digest?: string | number }>(sql, undefined, { signal })
  return { rows: Number(r?.rows ?? 0), digest: digest ? String(r?.digest ?? '0') : null }
}

/** True when `measured` provably covers every listed part (see the module comment). */
export async function coversParts(driver: ClickHouseDriver, unit: BackupUnit, measured: Measured): Promise<boolean> {
  if (measured.rows === unit.rows) return true
  return await partsStillActive(driver, unit.database, unit.table, unit.parts ?? [])
}

/** Streams the rows `predicate` selects into the object `key`; resolves with the reference and the digest started alongside. */
async function writeExport(ctx: ExportContext, table: TableInfo, unit: BackupUnit, predicate: string | undefined, count: boolean, keyTag = unit.fingerprint) {
  let measuring: Promise<Measured> | undefined
  const key = objectKey(unit.database, unit.table, unit.partitionId, keyTag, ctx.backupId)
  const open = async (): Promise<Readable> => {
    const body = await ctx.driver.queryStream(exportSql(table, predicate), 'Native', { signal: ctx.signal })
    if (count) {
      measuring = measure(ctx.driver, table, predicate, ctx.contentDigest, ctx.signal)
      // Awaited below; this only keeps a failure while the export runs from being reported as unhandled.
      measuring.catch(() => undefined)
    }
    return body
  }
  const ref = await ctx.repo.writeObject(key, open, { signal: ctx.signal })
  ctx.onBytes(ref.rawSize)
  return { ref, measured: await measuring }
}

function entry(ref: Awaited<ReturnType<Repository['writeObject']>>, table: TableInfo, unit: BackupUnit, measured: Measured, backupId: string): ChObject {
  const { reused: _reused, ...stored } = ref
  return {
    ...stored,
    database: unit.database,
    table: unit.table,
    partitionId: unit.partitionId,
    rows: measured.rows,
    columns: exportColumnNames(table),
    fingerprint: unit.fingerprint,
    digest: measured.digest,
    tableIdentity: unit.tableIdentity,
    writtenBy: backupId,
  }
}

/**
 * Exports one unit; resolves with its manifest entry, or undefined when the
 * partition no longer exists (dropped during the backup). Rejects with
 * TM_ERR_CLICKHOUSE_QUERY when a partition's parts kept being replaced on
 * every attempt.
 */
export async function exportUnit(ctx: ExportContext, table: TableInfo, unit: BackupUnit): Promise<ChObject | undefined> {
  if (unit.kind === 'table') {
    // Measured before the plan: an insert since then makes the object hold more than recorded, never less (the next backup exports again).
    const { ref } = await writeExport(ctx, table, unit, undefined, false)
    return entry(ref, table, unit, { rows: unit.rows, digest: unit.digest ?? '0' }, ctx.backupId)
  }
  let current = unit
  for (let attempt = 1; attempt <= EXPORT_ATTEMPTS; attempt++) {
    const predicate = partitionPredicate({ partitionId: current.partitionId, parts: current.parts ?? [] })
    const { ref, measured } = await writeExport(ctx, table, current, predicate, true)
    if (measured && (await coversParts(ctx.driver, current, measured))) return entry(ref, table, current, measured, ctx.backupId)
    const fresh = (await readPartitions(ctx.driver, current.database, current.table, table.columns)).find((p) => p.partitionId === current.partitionId)
    if (!fresh) return undefined
    current = partitionUnits(table, current.tableIdentity, [fresh])[0] as BackupUnit
  }
  throw new TidemarkError(
    'TM_ERR_CLICKHOUSE_QUERY',
    `partition ${unit.partition} (id ${unit.partitionId}) of ${unit.database}.${unit.table} had its parts replaced by merges during each of ${EXPORT_ATTEMPTS} exports; run the backup again`,
    { details: { database: unit.database, table: unit.table, partitionId: unit.partitionId } },
  )
}

/**
 * Exports only the parts `added` names (a delta: the rows a partition gained since its
 * earlier objects). One attempt: resolves with the entry when the export provably read
 * every one of those parts (same proof as exportUnit), else removes what it stored and
 * resolves undefined, and the caller exports the partition whole.
 */
export async function exportDelta(ctx: ExportContext, table: TableInfo, unit: BackupUnit, added: Appended): Promise<ChObject | undefined> {
  const delta: BackupUnit = { ...unit, parts: added.parts, rows: added.rows }
  const predicate = partitionPredicate({ partitionId: unit.partitionId, parts: added.parts })
  const { ref, measured } = await writeExport(ctx, table, delta, predicate, true, `${unit.fingerprint}-d${added.afterBlock}`)
  if (measured && (await coversParts(ctx.driver, delta, measured))) return { ...entry(ref, table, delta, measured, ctx.backupId), afterBlock: added.afterBlock }
  await ctx.repo.sink.delete([ref.key]).catch(() => undefined)
  return undefined
}
