/**
 * Restoring a ClickHouse parts backup: the logical method's plan, preflight,
 * order and verification (restore-plan.ts, restore-preflight.ts,
 * restore-order.ts, restore-verify.ts), with data steps that attach the
 * stored parts (parts-attach.ts) in parallel across tables and parts, and
 * load the logical objects of non-MergeTree tables with INSERT. Views and
 * materialized views are created after their data, so ATTACH (which never
 * fires views anyway) and the INSERTs feed nothing twice.
 *
 * A failure stops the restore with an error that lists, per table, the parts
 * already attached: nothing is left half-attached without being named.
 */
import { TidemarkError } from '../../errors.ts'
import { forEachLimit } from '../parallel.ts'
import { isBackupId, type ObjectRef, type Repository } from '../repository/index.ts'
import { probeCapabilities, type Capabilities } from './capabilities.ts'
import { qualified, quoteIdent } from './names.ts'
import { attachPart } from './parts-attach.ts'
import { asPlannable, isClickHousePartsManifest, isPartObject, partsRestoredAtOnce, type ChPartObject, type ClickHousePartsManifest } from './parts-manifest.ts'
import { checkDataPath } from './parts-shadow.ts'
import type { ClickHouseRestoreOptions, RestoreReport } from './restore.ts'
import { checkDependencies, conflicts, inspectTarget, type TargetState } from './restore-preflight.ts'
import { planRestore, walkSteps, type PlannedTable, type RestorePlan } from './restore-plan.ts'
import type { RestoreStep } from './restore-order.ts'
import { measureExisting, verifyTables } from './restore-verify.ts'

/** A parts restore needs the target's data path besides what a logical restore needs. */
export interface ClickHousePartsRestoreOptions extends Omit<ClickHouseRestoreOptions, 'manifest'> {
  manifest: ClickHousePartsManifest
  /** The target server's data path (its `<path>`) as mounted here; required. */
  targetDataPath: string | undefined
  /** Test seam: runs on each complete part directory in `detached/` before ATTACH. */
  beforeAttach?: (dir: string) => Promise<void>
}

/** What a parts restore did: the logical report plus the parts attached, per target table. */
export interface PartsRestoreReport extends RestoreReport {
  partsAttached: Record<string, string[]>
}

interface Exec {
  opts: ClickHousePartsRestoreOptions
  dataPath: string
  plan: RestorePlan
  state: TargetState
  createSettings: Capabilities['createSettings']
  report: PartsRestoreReport
}

/** The error for a restore of a parts backup without a reachable target disk. */
export function noTargetDisk(): TidemarkError {
  return new TidemarkError(
    'TM_ERR_CLICKHOUSE_DATA_PATH',
    'this is a parts backup: restoring it writes parts into the target server\'s data directory, so tidemark must run where that directory is mounted; give it with --target-data-path <the target\'s <path>>. Where the target\'s disk cannot be reached, take and restore a logical backup (clickhouse.method: logical)',
  )
}

function versionParts(v: string): number[] {
  return v.split('.').map((x) => Number.parseInt(x, 10) || 0)
}

/**
 * Throws TM_ERR_CLICKHOUSE_ATTACH when the target is older than the server
 * that wrote the parts (pure): newer servers read the part formats of older
 * ones, older servers not those of newer ones.
 */
export function checkPartFormat(backupVersion: string, targetVersion: string): void {
  const [a, b] = [versionParts(backupVersion), versionParts(targetVersion)]
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (b[i] ?? 0) - (a[i] ?? 0)
    if (d > 0) return
    if (d < 0) {
      throw new TidemarkError(
        'TM_ERR_CLICKHOUSE_ATTACH',
        `the parts of this backup were written by ClickHouse ${backupVersion}; the target runs ${targetVersion}, which may not read that part format; nothing was changed. Restore into a server of version ${backupVersion} or later, or take and restore a logical backup`,
        { details: { backupVersion, targetVersion } },
      )
    }
  }
}

async function loadObject(x: Exec, t: PlannedTable, o: ChPartObject): Promise<void> {
  const { driver, repo, signal } = x.opts
  if (!isPartObject(o)) {
    const body = await repo.readObject(o as ObjectRef, { signal })
    await driver.insertStream(`INSERT INTO ${qualified(t.info.database, t.info.name)} (${o.columns.map(quoteIdent).join(', ')}) FORMAT Native`, body, { settings: { insert_deduplicate: 0 }, signal })
    return
  }
  await attachPart({ driver, dataPath: x.dataPath, database: t.info.database, table: t.info.name, signal, beforeAttach: x.opts.beforeAttach }, o.part, (dir) => repo.unpackObject(o, dir, { signal }))
  const key = `${t.info.database}.${t.info.name}`
  const attached = x.report.partsAttached[key] ?? []
  attached.push(o.part)
  x.report.partsAttached[key] = attached
}

function attachedSoFar(x: Exec): string {
  const lines = Object.entries(x.report.partsAttached).map(([table, parts]) => `${table}: ${parts.join(', ')}`)
  return lines.length === 0 ? 'no part was attached' : `parts attached before the failure (detach or drop them before restoring again): ${lines.join('; ')}`
}

async function loadTables(x: Exec, tables: string[]): Promise<void> {
  const work = tables.flatMap((k) => {
    const t = x.plan.tables.get(k) as PlannedTable
    return t.objects.map((o) => ({ t, o: o as ChPartObject }))
  })
  work.sort((a, b) => b.o.rawSize - a.o.rawSize)
  let failed: { t: PlannedTable; o: ChPartObject } | undefined
  try {
    await forEachLimit(work, partsRestoredAtOnce(x.opts.parallelism), async ({ t, o }) => {
      try {
        await loadObject(x, t, o)
      } catch (err) {
        failed ??= { t, o }
        throw err
      }
      x.report.objectsLoaded++
      x.report.rowsLoaded += o.rows
      x.report.rawBytesLoaded += o.rawSize
    }, x.opts.signal)
  } catch (err) {
    if (!(err instanceof TidemarkError) || err.code === 'TM_ERR_ABORTED' || !failed) throw err
    // Named only now: the parts in flight beside the failed one have finished (attached or not).
    const { t, o } = failed
    const what = isPartObject(o) ? `part ${o.part}` : `partition ${o.partitionId}`
    throw new TidemarkError(err.code, `restoring ${what} of ${t.info.database}.${t.info.name} failed; ${attachedSoFar(x)}: ${err.message}`, { cause: err, details: { ...err.details, partsAttached: x.report.partsAttached } })
  }
}

async function runStep(x: Exec, step: Exclude<RestoreStep, { step: 'data' }>): Promise<void> {
  const { driver, signal } = x.opts
  if (step.step === 'database') {
    if (x.state.databases.has(step.database)) return
    const ddl = x.plan.databases.find((d) => d.name === step.database)?.ddl ?? `CREATE DATABASE ${quoteIdent(step.database)}`
    await driver.command(ddl, { signal })
    x.report.databasesCreated.push(step.database)
    return
  }
  if (x.state.existing.has(step.table)) {
    x.report.existing.push(step.table)
    return
  }
  await driver.command((x.plan.tables.get(step.table) as PlannedTable).info.ddl, { settings: x.createSettings, signal })
  x.report.created.push(step.table)
}

async function execute(x: Exec): Promise<void> {
  await walkSteps(x.plan.steps, (step) => runStep(x, step), (tables) => loadTables(x, tables))
}

/**
 * Restores a parts backup. Rejects, changing nothing, with
 * TM_ERR_CLICKHOUSE_DATA_PATH (no target data path, or not writable),
 * TM_ERR_RESTORE_UNKNOWN_TABLE or TM_ERR_RESTORE_TARGET_NOT_EMPTY; during the
 * data steps with TM_ERR_CLICKHOUSE_DATA_PATH (the path is another server's,
 * or `detached/` not writable), TM_ERR_CLICKHOUSE_ATTACH (the server refused
 * a part) or the repository's integrity errors, each naming the parts
 * attached so far.
 */
export async function restoreClickHouseParts(opts: ClickHousePartsRestoreOptions): Promise<PartsRestoreReport> {
  const started = Date.now()
  if (opts.targetDataPath === undefined) throw noTargetDisk()
  await checkDataPath(opts.targetDataPath, true)
  const plan = planRestore(asPlannable(opts.manifest), opts.selection)
  const caps = await probeCapabilities(opts.driver)
  if (opts.manifest.objects.some(isPartObject)) checkPartFormat(plan.serverVersion, caps.version)
  await checkDependencies(opts.driver, plan, opts.signal)
  const state = await inspectTarget(opts.driver, plan, opts.signal)
  const found = conflicts(plan, state)
  if (found.length > 0 && !opts.allowNonEmpty) {
    throw new TidemarkError('TM_ERR_RESTORE_TARGET_NOT_EMPTY', `the target already holds what this restore would write (${found.slice(0, 10).map((c) => `${c.table} ${c.reason}`).join('; ')}); nothing was changed`, { details: { conflicts: found } })
  }
  const before = await measureExisting(opts.driver, plan.tables, state.existing, opts.signal)
  const report: PartsRestoreReport = {
    backupId: plan.backupId, restorePoint: opts.manifest.endedAt, databasesCreated: [], created: [], existing: [],
    objectsLoaded: 0, rowsLoaded: 0, rawBytesLoaded: 0, tables: [], ok: false, durationMs: 0, partsAttached: {},
  }
  const x: Exec = { opts, dataPath: opts.targetDataPath, plan, state, createSettings: caps.createSettings, report }
  await execute(x)
  report.tables = await verifyTables(opts.driver, [...plan.tables.values()], before, caps.version === plan.serverVersion, opts.signal)
  report.ok = report.tables.every((t) => t.status !== 'mismatch')
  report.durationMs = Date.now() - started
  return report
}

/** The parts manifest `id` names, or undefined when it is not a parts backup (or not a backup id): the caller then reads it as a logical one. */
export async function readPartsManifest(repo: Repository, id: string): Promise<ClickHousePartsManifest | undefined> {
  if (!isBackupId(id)) return undefined
  const m = await repo.readManifest('clickhouse', id)
  return isClickHousePartsManifest(m) ? m : undefined
}
