/**
 * A ClickHouse logical backup: discover, fingerprint every unit, plan against
 * the earlier backups (backup-plan.ts), export what changed in parallel,
 * commit the manifest last. Holds the writer lease throughout. On failure
 * nothing is committed; the objects uploaded so far are recorded in the
 * journal so the next backup reuses them.
 */
import { asTidemarkError, TidemarkError } from '../../errors.ts'
import { forEachLimit, mapLimit } from '../parallel.ts'
import { newBackupId, type Repository } from '../repository/index.ts'
import { assembleManifest, type UnitOutcome } from './backup-manifest.ts'
import { partitionUnits, planBackup, resolveCheck, reusedEntry, tableUnit, withDigest, type BackupUnit, type PlannedUnit } from './backup-plan.ts'
import { tableKey, type Catalog, type TableInfo } from './catalog.ts'
import { endpointOf } from './connection.ts'
import { discover } from './discovery.ts'
import type { ClickHouseDriver } from './driver.ts'
import { partitionPredicate } from './export-sql.ts'
import { coversParts, exportDelta, exportUnit, measure, type ExportContext } from './export-unit.ts'
import type { NameFilter } from './filters.ts'
import { JournalWriter } from './journal.ts'
import type { ChObject, ClickHouseManifest } from './manifest.ts'
import { deletesOnly, readMutationLog, type MutationLog } from './mutations.ts'
import { readPartitions } from './partitions.ts'
import { previousObjects, type PreviousObjects } from './previous.ts'
import { withSignal } from './signal-driver.ts'
import { tableIdentities } from './table-identity.ts'
import type { Logger } from '../../log.ts'

/** Progress of a backup or restore; bytes are raw (Native) bytes, `bytesTotal` an estimate. */
export interface Progress {
  unitsDone: number
  unitsTotal: number
  bytesDone: number
  bytesTotal: number
}

/** What a backup needs. The engine opens nothing itself: driver and repository are the caller's. */
export interface ClickHouseBackupOptions {
  driver: ClickHouseDriver
  repo: Repository
  /** Server URL, for the manifest (host:port only is kept). */
  url: string
  filter?: NameFilter
  /** Units exported at once. */
  parallelism: number
  /** Export every unit again (new objects), reuse nothing. */
  full?: boolean
  /**
   * Record a content digest of every exported partition (clickhouse.contentDigest): a
   * second read of its rows on the server, which lets a later backup reuse it after an
   * UPDATE mutation that changed none of its rows, and lets a restore compare content.
   * Off: `count()` only (the proof that the export read every listed part).
   */
  contentDigest?: boolean
  signal?: AbortSignal
  onProgress?: (p: Progress) => void
  /** How often the journal is written while the backup runs. */
  journalIntervalMs?: number
  /** Receives start, commit and failure lines (the daemon passes its job logger). */
  logger?: Logger
}

/** Fingerprints every unit of the catalog's storage tables (read-only). */
async function gatherUnits(driver: ClickHouseDriver, catalog: Catalog, signal: AbortSignal): Promise<BackupUnit[]> {
  const ids = await tableIdentities(driver, catalog.databases.map((d) => d.name))
  // A few tables at once: each is one round trip (system.parts, or a digest of a small non-MergeTree table).
  const perTable = await mapLimit(catalog.tables.filter((t) => t.hasData), 4, async (table): Promise<BackupUnit[]> => {
    const identity = ids.get(tableKey(table.database, table.name)) ?? 'm0'
    if (table.mergeTree) return partitionUnits(table, identity, await readPartitions(driver, table.database, table.name, table.columns))
    const unit = tableUnit(table, identity, await measure(driver, table, undefined, true, signal))
    return unit ? [unit] : []
  }, signal)
  return perTable.flat()
}

/** Cheap work first (reuse, digest checks), then exports, largest first, so parallel exports end together. */
function workOrder(plan: PlannedUnit[]): PlannedUnit[] {
  const rank = (p: PlannedUnit) => (p.action === 'export' || p.action === 'append' ? 1 : 0)
  return [...plan].sort((a, b) => rank(a) - rank(b) || b.unit.bytes - a.unit.bytes)
}

interface Run {
  ctx: ExportContext
  previous: PreviousObjects
  tables: Map<string, TableInfo>
  journal: JournalWriter
  outcomes: UnitOutcome[]
  /** Mutation logs read for `check` units, by table. */
  mutationLogs: Map<string, Promise<MutationLog>>
}

const REUSED = { fingerprint: 'reused', digest: 'reused-by-digest', deletes: 'reused-after-deletes' } as const

/**
 * Decides a unit whose fingerprint moved only by a mutation: the table's mutation log
 * first (read once per table and backup), then, when a candidate recorded a digest, a
 * digest of the partition's listed parts (a read of all its rows on the server).
 */
async function settleCheck(run: Run, table: TableInfo, planned: Extract<PlannedUnit, { action: 'check' }>): Promise<PlannedUnit> {
  const { ctx } = run
  const { unit } = planned
  const key = tableKey(table.database, table.name)
  let log = run.mutationLogs.get(key)
  if (!log) run.mutationLogs.set(key, (log = readMutationLog(ctx.driver, table.database, table.name, table.ddl, ctx.signal)))
  const mutations = await log
  const deletes = (minBlock: bigint, upTo: bigint) => deletesOnly(mutations, unit.partitionId, minBlock, upTo)
  const byDeletes = resolveCheck(planned, { deletesOnly: deletes })
  if (byDeletes.action === 'reuse' || withDigest(planned).length === 0) return byDeletes
  const measured = await measure(ctx.driver, table, partitionPredicate({ partitionId: unit.partitionId, parts: unit.parts ?? [] }), true, ctx.signal)
  return resolveCheck(planned, { measured: (await coversParts(ctx.driver, unit, measured)) ? measured : undefined })
}

/** Carries out one planned unit; records its outcome (nothing for a partition dropped meanwhile). */
async function runUnit(run: Run, planned: PlannedUnit): Promise<void> {
  const { ctx } = run
  const table = run.tables.get(tableKey(planned.unit.database, planned.unit.table)) as TableInfo
  let decided = planned
  if (decided.action === 'check') {
    decided = await settleCheck(run, table, decided)
  }
  if (decided.action === 'reuse') {
    const { set, unit, proof } = decided
    // Journal entries are hints: their object may never have been completed, or was pruned since.
    if (!set.fromJournal || (await ctx.repo.hasObject(set.objects[0] as ChObject))) {
      run.outcomes.push({ objects: set.objects.map((o) => reusedEntry(o, unit)), written: [], how: REUSED[proof] })
      return
    }
  }
  if (decided.action === 'append') {
    const { base, unit, added } = decided
    const delta = await exportDelta(ctx, table, unit, added)
    if (delta) {
      run.outcomes.push({ objects: [...base.objects.map((o) => reusedEntry(o, unit)), delta], written: [delta], how: 'appended' })
      run.journal.add(delta)
      return
    }
  }
  const object = await exportUnit(ctx, table, decided.unit)
  if (!object) return
  run.outcomes.push({ objects: [object], written: [object], how: 'exported' })
  run.journal.add(object)
}

/** An abort surfaces as whatever the interrupted step threw; report it as the abort it is. */
function cause(err: unknown, signal: AbortSignal): TidemarkError {
  if (err instanceof TidemarkError || !signal.aborted) return asTidemarkError(err)
  return signal.reason instanceof TidemarkError ? signal.reason : new TidemarkError('TM_ERR_ABORTED', 'the backup was cancelled', { cause: err })
}

function failure(err: unknown, signal: AbortSignal, id: string, journaled: number): TidemarkError {
  const e = cause(err, signal)
  const kept = journaled > 0 ? `; the ${journaled} partitions uploaded before the failure are recorded and the next backup reuses them` : ''
  return new TidemarkError(e.code, `ClickHouse backup ${id} failed, nothing was committed${kept}: ${e.message}`, { cause: err, details: { ...e.details, backupId: id } })
}

/**
 * Runs one backup and commits its manifest. Rejects with TM_ERR_REPO_LOCKED
 * when another writer holds the lease, the driver's errors when ClickHouse
 * fails (nothing committed; the journal keeps what was uploaded), or
 * TM_ERR_ABORTED. Safe to run again after any failure.
 */
export async function backupClickHouse(opts: ClickHouseBackupOptions): Promise<ClickHouseManifest> {
  const { repo } = opts
  const lease = await repo.lock('clickhouse backup')
  const signal = opts.signal ? AbortSignal.any([opts.signal, lease.signal]) : lease.signal
  // Every request of this backup (discovery and system tables included) is cancelled by the signal.
  const driver = withSignal(opts.driver, signal)
  const startedAt = repo.clock.now()
  const id = newBackupId('clickhouse', startedAt)
  const log = opts.logger?.child({ backupId: id })
  const journal = new JournalWriter(repo, id, opts.journalIntervalMs ?? 10_000)
  try {
    log?.info({ full: opts.full ?? false, parallelism: opts.parallelism }, 'clickhouse backup started')
    const catalog = await discover(driver, opts.filter)
    const units = await gatherUnits(driver, catalog, signal)
    const previous: PreviousObjects = opts.full ? { sets: [] } : await previousObjects(repo)
    const plan = workOrder(planBackup(units, previous.sets, { full: opts.full ?? false }))
    const progress: Progress = { unitsDone: 0, unitsTotal: plan.length, bytesDone: 0, bytesTotal: plan.filter((p) => p.action !== 'reuse').reduce((n, p) => n + p.unit.bytes, 0) }
    const report = () => opts.onProgress?.({ ...progress })
    const ctx: ExportContext = { driver, repo, backupId: id, signal, contentDigest: opts.contentDigest ?? false, onBytes: (n) => (progress.bytesDone += n) }
    const tables = new Map(catalog.tables.map((t) => [tableKey(t.database, t.name), t]))
    const run: Run = { ctx, previous, tables, journal, outcomes: [], mutationLogs: new Map() }
    report()
    await forEachLimit(plan, opts.parallelism, async (p) => {
      await runUnit(run, p)
      progress.unitsDone++
      report()
    }, signal)
    const manifest = assembleManifest({ id, startedAt, endedAt: repo.clock.now(), full: opts.full ?? false, endpoint: endpointOf(opts.url), catalog }, run.outcomes)
    signal.throwIfAborted()
    await journal.settled()
    await repo.commitManifest(manifest)
    log?.info({ stats: manifest.stats }, 'clickhouse backup committed')
    return manifest
  } catch (err) {
    await journal.flush()
    const e = failure(err, signal, id, journal.size)
    log?.warn({ code: e.code, err: e.message }, 'clickhouse backup failed')
    throw e
  } finally {
    await lease.release()
  }
}
