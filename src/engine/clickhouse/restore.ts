/**
 * Restoring a ClickHouse logical backup into a server: plan (restore-plan.ts),
 * look at the target and refuse a non-empty one before anything is created
 * (restore-preflight.ts), then databases, storage tables, their data in
 * parallel, views / materialized views / dictionaries (each MV's inner table
 * loaded right after it), Distributed tables last, and finally a row count
 * and digest check of every table (restore-verify.ts).
 *
 * A partition load that fails on a connection error is redone, after removing
 * what the failed attempt may have written (an interrupted INSERT keeps the
 * blocks it completed): `DROP PARTITION ID` for a MergeTree table this restore
 * created (same DDL, so the backup's partition id is the target's), `TRUNCATE`
 * for a non-MergeTree table this restore created (one object per such table).
 * Into tables that existed before, a failed load is not redone: the error says
 * which partition may be partly loaded.
 */
import type { Logger } from '../../log.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import { withSignal } from './signal-driver.ts'
import { isTidemarkError, TidemarkError } from '../../errors.ts'
import { forEachLimit } from '../parallel.ts'
import type { Repository } from '../repository/index.ts'
import type { Progress } from './backup.ts'
import { probeCapabilities, type Capabilities } from './capabilities.ts'
import type { ClickHouseDriver } from './driver.ts'
import type { ChObject, ClickHouseManifest } from './manifest.ts'
import { qualified, quoteIdent, quoteString } from './names.ts'
import { checkDependencies, conflicts, inspectTarget, type TargetState } from './restore-preflight.ts'
import { planRestore, walkSteps, type PlannedTable, type RestorePlan, type RestoreSelection } from './restore-plan.ts'
import type { RestoreStep } from './restore-order.ts'
import { measureExisting, verifyTables, type TableCheck } from './restore-verify.ts'

/** How long a load keeps retrying while the server cannot be reached (a restart, a network blip): waits of 0.5, 1, 2, 4, 8, 8 … s. */
const LOAD_RETRY_MS = 60_000
const loadBackoffMs = (attempt: number) => Math.min(8000, 500 * 2 ** (attempt - 1))

/** What a restore needs; `driver` talks to the target server. */
export interface ClickHouseRestoreOptions {
  driver: ClickHouseDriver
  repo: Repository
  manifest: ClickHouseManifest
  selection?: RestoreSelection
  /** Load into tables that already hold rows (and accept existing materialized views over them). */
  allowNonEmpty?: boolean
  parallelism: number
  signal?: AbortSignal
  onProgress?: (p: Progress) => void
  /** Receives start and end lines (the daemon passes its job logger). */
  logger?: Logger
}

/** What a restore did and found. */
export interface RestoreReport {
  backupId: string
  /** The backup's restore point (its end time). */
  restorePoint: string
  databasesCreated: string[]
  /** Objects created from the backup's DDL, in order. */
  created: string[]
  /** Planned objects that existed already and were used as they were. */
  existing: string[]
  objectsLoaded: number
  rowsLoaded: number
  rawBytesLoaded: number
  tables: TableCheck[]
  /** True when no table has status `mismatch`. */
  ok: boolean
  durationMs: number
}

interface Exec {
  opts: ClickHouseRestoreOptions
  plan: RestorePlan
  caps: Capabilities
  state: TargetState
  signal: AbortSignal | undefined
  progress: Progress
  report: RestoreReport
}

function insertSql(table: PlannedTable, o: ChObject): string {
  return `INSERT INTO ${qualified(table.info.database, table.info.name)} (${o.columns.map(quoteIdent).join(', ')}) FORMAT Native`
}

/** The statement that removes what a failed load of `o` may have written; undefined when that is not safe (a table that existed before). */
export function undoSql(table: PlannedTable, o: ChObject, createdHere: boolean): string | undefined {
  if (!createdHere) return undefined
  const name = qualified(table.info.database, table.info.name)
  return table.info.mergeTree ? `ALTER TABLE ${name} DROP PARTITION ID ${quoteString(o.partitionId)}` : `TRUNCATE TABLE ${name}`
}

/**
 * Loads one partition's objects (one, or a base and its deltas) one after the other. When
 * the server cannot be reached mid-load (a table created by this restore only), what the
 * loads may have written is removed (undoSql: the whole partition) and all its objects are
 * loaded again, for up to LOAD_RETRY_MS; the removal itself waits for the server the same
 * way. Any other failure, or a table that existed before, fails the load at once.
 */
async function loadUnit(x: Exec, table: PlannedTable, objects: readonly ChObject[]): Promise<void> {
  const { driver, repo } = x.opts
  const first = objects[0] as ChObject
  const undo = undoSql(table, first, !x.state.existing.has(`${table.info.database}.${table.info.name}`))
  const giveUpAt = Date.now() + LOAD_RETRY_MS
  const unreachable = (err: unknown) => isTidemarkError(err, 'TM_ERR_CLICKHOUSE_UNREACHABLE')
  let attempt = 0
  const wait = async (err: unknown) => {
    attempt++
    const ms = loadBackoffMs(attempt)
    if (undo === undefined || !unreachable(err) || Date.now() + ms > giveUpAt) throw partialLoad(err, table, first, undo !== undefined)
    x.opts.logger?.warn({ err, table: `${table.info.database}.${table.info.name}`, partitionId: first.partitionId, attempt, retryInMs: ms }, 'ClickHouse could not be reached while loading a partition; its rows are removed and it is loaded again')
    await sleep(ms, undefined, { signal: x.signal }).catch(() => x.signal?.throwIfAborted())
  }
  for (;;) {
    try {
      for (const o of objects) {
        const body = await repo.readObject(o, { signal: x.signal })
        await driver.insertStream(insertSql(table, o), body, { settings: { insert_deduplicate: 0 }, signal: x.signal })
      }
      return
    } catch (err) {
      await wait(err)
    }
    for (;;) {
      try {
        await driver.command(undo as string, { signal: x.signal })
        break
      } catch (err) {
        await wait(err)
      }
    }
  }
}

/** A table's objects by unit: a partition's base and deltas together, in manifest order. */
function unitsOf(objects: readonly ChObject[]): ChObject[][] {
  const byPartition = new Map<string, ChObject[]>()
  for (const o of objects) byPartition.set(o.partitionId, [...(byPartition.get(o.partitionId) ?? []), o])
  return [...byPartition.values()]
}

function partialLoad(err: unknown, table: PlannedTable, o: ChObject, created: boolean): unknown {
  if (!(err instanceof TidemarkError) || err.code === 'TM_ERR_ABORTED') return err
  const where = `${table.info.database}.${table.info.name} partition ${o.partitionId}`
  const hint = created ? 'drop the restored databases or tables and restore again' : 'that table existed before the restore: check it before restoring again'
  return new TidemarkError(err.code, `loading ${where} failed (it may be partly loaded; ${hint}): ${err.message}`, { cause: err, details: { ...err.details, table: `${table.info.database}.${table.info.name}`, partitionId: o.partitionId } })
}

async function runStep(x: Exec, step: Exclude<RestoreStep, { step: 'data' }>): Promise<void> {
  const { driver } = x.opts
  if (step.step === 'database') {
    if (x.state.databases.has(step.database)) return
    const ddl = x.plan.databases.find((d) => d.name === step.database)?.ddl ?? `CREATE DATABASE ${quoteIdent(step.database)}`
    await driver.command(ddl, { signal: x.signal })
    x.report.databasesCreated.push(step.database)
    return
  }
  if (x.state.existing.has(step.table)) {
    x.report.existing.push(step.table)
    return
  }
  const table = x.plan.tables.get(step.table) as PlannedTable
  await driver.command(table.info.ddl, { settings: x.caps.createSettings, signal: x.signal })
  x.report.created.push(step.table)
}

/** Loads the objects of `tables` in parallel, a partition's objects together. */
async function loadTables(x: Exec, tables: string[]): Promise<void> {
  const raw = (list: readonly ChObject[]) => list.reduce((n, o) => n + o.rawSize, 0)
  const work = tables.flatMap((k) => {
    const t = x.plan.tables.get(k) as PlannedTable
    return unitsOf(t.objects).map((objects) => ({ t, objects, bytes: raw(objects) }))
  })
  work.sort((a, b) => b.bytes - a.bytes)
  await forEachLimit(work, x.opts.parallelism, async ({ t, objects, bytes }) => {
    await loadUnit(x, t, objects)
    x.report.objectsLoaded += objects.length
    x.report.rowsLoaded += objects.reduce((n, o) => n + o.rows, 0)
    x.report.rawBytesLoaded += bytes
    x.progress.unitsDone += objects.length
    x.progress.bytesDone += bytes
    x.opts.onProgress?.({ ...x.progress })
  }, x.signal)
}

/** Runs the steps in order; consecutive data steps are loaded together. */
async function execute(x: Exec): Promise<void> {
  await walkSteps(x.plan.steps, (step) => runStep(x, step), (tables) => loadTables(x, tables))
}

function refuse(found: ReturnType<typeof conflicts>): TidemarkError {
  const list = found.slice(0, 10).map((c) => `${c.table} ${c.reason}`).join('; ')
  return new TidemarkError(
    'TM_ERR_RESTORE_TARGET_NOT_EMPTY',
    `the target already holds what this restore would write (${list}${found.length > 10 ? `; and ${found.length - 10} more` : ''}); nothing was changed. Restore into an empty server, use --rename-db old=new, drop those objects, or give --allow-non-empty to add the rows to them`,
    { details: { conflicts: found } },
  )
}

/**
 * Restores `manifest` (all of it, or `selection`) into the target. Rejects,
 * changing nothing, with TM_ERR_RESTORE_UNKNOWN_TABLE (selection),
 * TM_ERR_CLICKHOUSE_UNREACHABLE / _AUTH (target), or
 * TM_ERR_RESTORE_TARGET_NOT_EMPTY (without allowNonEmpty). The report lists
 * every table's check; `ok` is false when a table does not match.
 */
export async function restoreClickHouse(options: ClickHouseRestoreOptions): Promise<RestoreReport> {
  // Every request of the restore (probes and checks included) is cancelled by the signal.
  const opts = options.signal ? { ...options, driver: withSignal(options.driver, options.signal) } : options
  const log = opts.logger?.child({ backupId: opts.manifest.id })
  log?.info({ tables: opts.selection ? 'selected' : 'all', parallelism: opts.parallelism }, 'clickhouse restore started')
  try {
    const report = await restoreAll(opts)
    log?.info({ ok: report.ok, objectsLoaded: report.objectsLoaded, rowsLoaded: report.rowsLoaded, durationMs: report.durationMs }, 'clickhouse restore finished')
    return report
  } catch (err) {
    log?.warn({ code: (err as { code?: string }).code, err: (err as Error).message }, 'clickhouse restore failed')
    throw err
  }
}

async function restoreAll(opts: ClickHouseRestoreOptions): Promise<RestoreReport> {
  const started = Date.now()
  const plan = planRestore(opts.manifest, opts.selection)
  const caps = await probeCapabilities(opts.driver)
  await checkDependencies(opts.driver, plan, opts.signal)
  const state = await inspectTarget(opts.driver, plan, opts.signal)
  const found = conflicts(plan, state)
  if (found.length > 0 && !opts.allowNonEmpty) throw refuse(found)
  const before = await measureExisting(opts.driver, plan.tables, state.existing, opts.signal)
  const objects = [...plan.tables.values()].flatMap((t) => t.objects)
  const report: RestoreReport = {
    backupId: plan.backupId, restorePoint: opts.manifest.endedAt, databasesCreated: [], created: [], existing: [],
    objectsLoaded: 0, rowsLoaded: 0, rawBytesLoaded: 0, tables: [], ok: false, durationMs: 0,
  }
  const progress: Progress = { unitsDone: 0, unitsTotal: objects.length, bytesDone: 0, bytesTotal: objects.reduce((n, o) => n + o.rawSize, 0) }
  await execute({ opts, plan, caps, state, signal: opts.signal, progress, report })
  report.tables = await verifyTables(opts.driver, [...plan.tables.values()], before, caps.version === plan.serverVersion, opts.signal)
  report.ok = report.tables.every((t) => t.status !== 'mismatch')
  report.durationMs = Date.now() - started
  return report
}
