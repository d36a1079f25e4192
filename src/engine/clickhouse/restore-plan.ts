/**
 * What a restore of a ClickHouse logical backup does, as a pure function of
 * its manifest and the operator's choices (--tables, --rename-db): which
 * databases and objects are created from which (renamed) DDL, in which order
 * (restore-order.ts), which objects are loaded into each table, and the row
 * count and digest each table must end up with.
 */
import { TidemarkError } from '../../errors.ts'
import { tableKey, type DatabaseInfo, type TableInfo } from './catalog.ts'
import { renameDatabaseDdl, renameDatabases } from './ddl-rename.ts'
import { compileFilter } from './filters.ts'
import { combineDigests, type ChObject, type ClickHouseManifest } from './manifest.ts'
import { restoreOrder, type RestoreStep } from './restore-order.ts'

/** The operator's choices. */
export interface RestoreSelection {
  /** `db.table` names or patterns (`db.*`, or a bare `db` for a whole database) of the backup; empty or absent: everything. */
  tables?: readonly string[]
  /** Source database → target database. */
  renames?: ReadonlyMap<string, string>
}

/** One object as it is restored: target names, renamed DDL, the objects to load. */
export interface PlannedTable {
  /** `db.name` in the backup. */
  source: string
  /** The object with target database, renamed DDL and dependencies. */
  info: TableInfo
  /** Objects to load (empty for objects without data). */
  objects: ChObject[]
  /** Rows and digest the table holds once loaded (digest null when an object lacks one). */
  expected: { rows: number; digest: string | null }
}

/** A whole restore, ready to execute. */
export interface RestorePlan {
  backupId: string
  serverVersion: string
  databases: DatabaseInfo[]
  /** Keyed by target `db.name`. */
  tables: Map<string, PlannedTable>
  steps: RestoreStep[]
}

function splitKey(key: string): [string, string] {
  const dot = key.indexOf('.')
  return [key.slice(0, dot), key.slice(dot + 1)]
}

function renamer(renames: ReadonlyMap<string, string>) {
  const db = (name: string) => renames.get(name) ?? name
  const key = (k: string) => {
    const [d, n] = splitKey(k)
    return tableKey(db(d), n)
  }
  const table = (t: TableInfo): TableInfo => ({
    ...t,
    database: db(t.database),
    ddl: renameDatabases(t.ddl, renames),
    dependsOn: t.dependsOn.map(key),
    ...(t.target === undefined ? {} : { target: key(t.target) }),
    ...(t.innerOf === undefined ? {} : { innerOf: key(t.innerOf) }),
  })
  return { db, key, table }
}

/** The backup's objects that `patterns` select, with MVs and their inner tables kept together; throws for a pattern that selects nothing. */
function selectTables(all: readonly TableInfo[], patterns: readonly string[]): TableInfo[] {
  if (patterns.length === 0) return [...all]
  for (const p of patterns) {
    const f = compileFilter({ include: [p], exclude: [] })
    if (!all.some((t) => f.table(t.database, t.name))) {
      const known = all.filter((t) => t.innerOf === undefined).map((t) => tableKey(t.database, t.name))
      throw new TidemarkError(
        'TM_ERR_RESTORE_UNKNOWN_TABLE',
        `--tables: "${p}" names nothing in this backup; it holds ${known.slice(0, 20).join(', ')}${known.length > 20 ? `, … (${known.length} in all)` : ''}`,
        { details: { pattern: p } },
      )
    }
  }
  const f = compileFilter({ include: patterns, exclude: [] })
  const chosen = new Set(all.filter((t) => f.table(t.database, t.name)).map((t) => tableKey(t.database, t.name)))
  for (const t of all) {
    const key = tableKey(t.database, t.name)
    // An inner table exists only through its materialized view, and comes with it.
    if (t.innerOf !== undefined && (chosen.has(key) || chosen.has(t.innerOf))) {
      chosen.add(key)
      chosen.add(t.innerOf)
    }
  }
  return all.filter((t) => chosen.has(tableKey(t.database, t.name)))
}

/** Parses `old=new` pairs; throws TM_ERR_USAGE for a malformed or conflicting one. */
export function parseRenames(pairs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const pair of pairs) {
    const m = /^([^=]+)=([^=]+)$/.exec(pair.trim())
    if (!m) throw new TidemarkError('TM_ERR_USAGE', `--rename-db expects old=new, got "${pair}"`)
    const [from, to] = [(m[1] as string).trim(), (m[2] as string).trim()]
    if (out.has(from) && out.get(from) !== to) throw new TidemarkError('TM_ERR_USAGE', `--rename-db renames "${from}" twice`)
    out.set(from, to)
  }
  const targets = [...out.values()]
  if (new Set(targets).size !== targets.length) throw new TidemarkError('TM_ERR_USAGE', '--rename-db maps two databases onto one')
  return out
}

/** Plans the restore of `manifest`; throws TM_ERR_RESTORE_UNKNOWN_TABLE when --tables names something the backup does not hold. */
export function planRestore(manifest: ClickHouseManifest, selection: RestoreSelection = {}): RestorePlan {
  const r = renamer(selection.renames ?? new Map())
  const chosen = selectTables(manifest.catalog.tables, selection.tables ?? [])
  const dbNames = new Set(chosen.map((t) => t.database))
  if ((selection.tables ?? []).length === 0) for (const d of manifest.catalog.databases) dbNames.add(d.name)
  const databases = manifest.catalog.databases
    .filter((d) => dbNames.has(d.name))
    .map((d) => ({ ...d, name: r.db(d.name), ddl: r.db(d.name) === d.name ? d.ddl : renameDatabaseDdl(d.ddl, r.db(d.name)) }))
  const byTable = new Map<string, ChObject[]>()
  for (const o of manifest.objects) byTable.set(tableKey(o.database, o.table), [...(byTable.get(tableKey(o.database, o.table)) ?? []), o])
  const tables = new Map<string, PlannedTable>()
  for (const t of chosen) {
    const source = tableKey(t.database, t.name)
    const info = r.table(t)
    const objects = t.hasData ? (byTable.get(source) ?? []) : []
    tables.set(tableKey(info.database, info.name), { source, info, objects, expected: combineDigests(objects) })
  }
  const steps = restoreOrder({ databases, tables: [...tables.values()].map((p) => p.info) })
  return { backupId: manifest.id, serverVersion: manifest.serverVersion, databases, tables, steps }
}

/**
 * Walks the plan's steps in order: each DDL step alone, consecutive data steps as one
 * group (their tables load in parallel). Shared by the logical and parts restores.
 */
export async function walkSteps(
  steps: readonly RestoreStep[],
  runStep: (step: Exclude<RestoreStep, { step: 'data' }>) => Promise<void>,
  loadTables: (tables: string[]) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < steps.length; ) {
    const step = steps[i] as RestoreStep
    if (step.step !== 'data') {
      await runStep(step)
      i++
      continue
    }
    const group: string[] = []
    while (i < steps.length && steps[i]?.step === 'data') group.push((steps[i++] as { table: string }).table)
    await loadTables(group)
  }
}
