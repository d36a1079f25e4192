/**
 * Discovery: which databases, tables, views and dictionaries a server holds,
 * with their DDL, engines, partition keys, columns and dependencies. Adapts to
 * the server by asking which columns its system tables have (18.x has
 * create_table_query, partition_key and dependencies_*; modern servers add
 * uuid, position, DDL dictionaries) instead of assuming a version.
 */
import type { ClickHouseDriver } from './driver.ts'
import { tableKey, type Catalog, type ColumnInfo, type DatabaseInfo, type TableInfo } from './catalog.ts'
import { dictionarySource, engineDestination, materializedViewTarget, viewSources } from './ddl-parse.ts'
import { isMergeTree, kindOfEngine } from './engines.ts'
import { compileFilter, type CompiledFilter, type NameFilter } from './filters.ts'
import { qualified, quoteIdent } from './names.ts'
import { mapLimit } from '../parallel.ts'

interface TableRow {
  database: string
  name: string
  engine: string
  engine_full?: string
  create_table_query?: string
  partition_key?: string
  dependencies_database?: string[]
  dependencies_table?: string[]
  uuid?: string
}

interface ColumnRow {
  database: string
  table: string
  name: string
  type: string
  default_kind: string
  default_expression: string
}

/** Column names of the system tables discovery reads (what this server version offers), in one query. */
type SystemColumns = (table: 'tables' | 'columns' | 'dictionaries') => Set<string>

async function systemColumns(driver: ClickHouseDriver): Promise<SystemColumns> {
  const rows = await driver.queryRows<{ table: string; name: string }>("SELECT table, name FROM system.columns WHERE database = 'system' AND table IN ('tables', 'columns', 'dictionaries')")
  const by = new Map<string, Set<string>>()
  for (const r of rows) by.set(r.table, (by.get(r.table) ?? new Set()).add(r.name))
  return (table) => by.get(table) ?? new Set()
}

/** Catalog lookups (one small query each) run at once: independent, and each a round trip. */
const LOOKUPS = 4

type DatabaseRow = Omit<DatabaseInfo, 'ddl'>

async function databaseRows(driver: ClickHouseDriver, filter: CompiledFilter): Promise<DatabaseRow[]> {
  const rows = await driver.queryRows<DatabaseRow>('SELECT name, engine FROM system.databases ORDER BY name')
  return rows.filter((r) => filter.database(r.name))
}

async function databaseDdl(driver: ClickHouseDriver, rows: DatabaseRow[]): Promise<DatabaseInfo[]> {
  return await mapLimit(rows, LOOKUPS, async (row) => {
    const [ddl] = await driver.queryRows<{ statement: string }>(`SHOW CREATE DATABASE ${quoteIdent(row.name)}`)
    return { name: row.name, engine: row.engine, ddl: ddl?.statement ?? `CREATE DATABASE ${quoteIdent(row.name)}` }
  })
}

async function tableRows(driver: ClickHouseDriver, have: Set<string>, dbs: string[]): Promise<TableRow[]> {
  const optional = ['engine_full', 'create_table_query', 'partition_key', 'dependencies_database', 'dependencies_table', 'uuid'].filter((c) => have.has(c))
  const temporary = have.has('is_temporary') ? 'AND NOT is_temporary' : ''
  const cols = ['database', 'name', 'engine', ...optional].join(', ')
  return await driver.queryRows<TableRow>(`SELECT ${cols} FROM system.tables WHERE has({dbs:Array(String)}, database) ${temporary} ORDER BY database, name`, { dbs })
}

async function columnRows(driver: ClickHouseDriver, have: Set<string>, dbs: string[]): Promise<Map<string, ColumnInfo[]>> {
  const order = have.has('position') ? 'ORDER BY database, table, position' : ''
  const rows = await driver.queryRows<ColumnRow>(
    `SELECT database, table, name, type, default_kind, default_expression FROM system.columns WHERE has({dbs:Array(String)}, database) ${order}`,
    { dbs },
  )
  const byTable = new Map<string, ColumnInfo[]>()
  for (const r of rows) {
    const key = tableKey(r.database, r.table)
    const list = byTable.get(key) ?? []
    list.push({ name: r.name, type: r.type, defaultKind: r.default_kind, defaultExpression: r.default_expression })
    byTable.set(key, list)
  }
  return byTable
}

async function ddlOf(driver: ClickHouseDriver, row: TableRow): Promise<string> {
  if (row.create_table_query) return row.create_table_query
  const [r] = await driver.queryRows<{ statement: string }>(`SHOW CREATE TABLE ${qualified(row.database, row.name)}`)
  return r?.statement ?? ''
}

/** Materialized view key → keys of the tables it reads, from the sources' `dependencies_*` columns. */
function mvSourcesFromSystem(rows: TableRow[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const row of rows) {
    const dbs = row.dependencies_database ?? []
    ;(row.dependencies_table ?? []).forEach((t, i) => {
      const mv = tableKey(dbs[i] ?? row.database, t)
      out.set(mv, [...(out.get(mv) ?? []), tableKey(row.database, row.name)])
    })
  }
  return out
}

/** The inner table of a materialized view: `.inner.<name>` (Ordinary databases) or `.inner_id.<uuid>` (Atomic). */
function innerTableOf(mv: TableRow, byKey: Map<string, TableRow>): string | undefined {
  const candidates = [tableKey(mv.database, `.inner.${mv.name}`)]
  if (mv.uuid && !/^0{8}-/.test(mv.uuid)) candidates.push(tableKey(mv.database, `.inner_id.${mv.uuid}`))
  return candidates.find((k) => byKey.has(k))
}

function describe(row: TableRow, ddl: string, columns: ColumnInfo[], mvSources: Map<string, string[]>, byKey: Map<string, TableRow>): TableInfo {
  const key = tableKey(row.database, row.name)
  const kind = kindOfEngine(row.engine)
  const info: TableInfo = {
    database: row.database, name: row.name, engine: row.engine, kind, ddl,
    mergeTree: isMergeTree(row.engine), partitionKey: row.partition_key ?? '', hasData: kind === 'table', dependsOn: [], columns,
  }
  const deps = new Set<string>()
  if (kind === 'view' || kind === 'materialized-view') viewSources(ddl, row.database).forEach((k) => deps.add(k))
  if (kind === 'materialized-view') {
    ;(mvSources.get(key) ?? []).forEach((k) => deps.add(k))
    const target = materializedViewTarget(ddl, row.database) ?? innerTableOf(row, byKey)
    if (target) {
      info.target = target
      deps.add(target)
    }
  }
  const dest = engineDestination(row.engine, row.engine_full ?? '', row.database)
  if (dest) deps.add(dest)
  const dictSource = row.engine === 'Dictionary' || /^CREATE\s+DICTIONARY/i.test(ddl) ? dictionarySource(ddl, row.database) : undefined
  if (dictSource) deps.add(dictSource)
  deps.delete(key)
  info.dependsOn = [...deps].sort()
  return info
}

/** Marks each MV inner table with its owner (the inner table's name is the server's, not the user's). */
function markInnerTables(tables: TableInfo[]): TableInfo[] {
  const owner = new Map<string, string>()
  for (const t of tables) if (t.kind === 'materialized-view' && t.target?.includes('.inner')) owner.set(t.target, tableKey(t.database, t.name))
  return tables.map((t) => {
    const mv = owner.get(tableKey(t.database, t.name))
    return mv === undefined ? t : { ...t, innerOf: mv }
  })
}

/** Keeps what the filter selects; an MV's inner table follows its MV, whatever its own name matches. */
function select(tables: TableInfo[], filter: CompiledFilter): TableInfo[] {
  const byKey = new Map(tables.map((t) => [tableKey(t.database, t.name), t]))
  return tables.filter((t) => {
    const decider = t.innerOf === undefined ? t : (byKey.get(t.innerOf) ?? t)
    return filter.table(decider.database, decider.name)
  })
}

/** Reads the catalog of everything the filter selects (system databases never). Read-only; safe to retry. */
export async function discover(driver: ClickHouseDriver, filter: NameFilter = { include: [], exclude: [] }): Promise<Catalog> {
  const compiled = compileFilter(filter)
  // Each step's queries at once: every one is a round trip, and only the database names are needed first.
  const [serverVersion, dbRows, have] = await Promise.all([driver.serverVersion(), databaseRows(driver, compiled), systemColumns(driver)])
  const names = dbRows.map((d) => d.name)
  const [dbs, rows, columns] = await Promise.all([databaseDdl(driver, dbRows), tableRows(driver, have('tables'), names), columnRows(driver, have('columns'), names)])
  const byKey = new Map(rows.map((r) => [tableKey(r.database, r.name), r]))
  const mvSources = mvSourcesFromSystem(rows)
  const [all, dictionaries] = await Promise.all([
    mapLimit(rows, LOOKUPS, async (row) => describe(row, await ddlOf(driver, row), columns.get(tableKey(row.database, row.name)) ?? [], mvSources, byKey)),
    ddlDictionaries(driver, have('dictionaries'), names, byKey),
  ])
  return { serverVersion, databases: dbs, tables: select(markInnerTables([...all, ...dictionaries]), compiled) }
}

/** Dictionaries created with CREATE DICTIONARY (modern servers) that system.tables does not list. */
async function ddlDictionaries(driver: ClickHouseDriver, have: Set<string>, dbs: string[], byKey: Map<string, TableRow>): Promise<TableInfo[]> {
  if (!have.has('database')) return []
  const rows = await driver.queryRows<{ database: string; name: string }>(
    "SELECT database, name FROM system.dictionaries WHERE has({dbs:Array(String)}, database) AND database != '' ORDER BY database, name",
    { dbs },
  )
  const out: TableInfo[] = []
  for (const r of rows.filter((r) => !byKey.has(tableKey(r.database, r.name)))) {
    const [s] = await driver.queryRows<{ statement: string }>(`SHOW CREATE DICTIONARY ${qualified(r.database, r.name)}`)
    const row: TableRow = { database: r.database, name: r.name, engine: 'Dictionary' }
    out.push(describe(row, s?.statement ?? '', [], new Map(), byKey))
  }
  return out
}
