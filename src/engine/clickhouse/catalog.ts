/**
 * What discovery found on a server: plain data, JSON-serialisable, so the
 * backup can store it in its manifest and restore can plan from it without a
 * server.
 */

/** How an object is backed up and when it is restored. */
export type TableKind =
  /** Own storage whose rows are exported (MergeTree family, Log family, Memory, …). Includes MV inner tables. */
  | 'table'
  | 'view'
  | 'materialized-view'
  | 'dictionary'
  | 'distributed'
  /** DDL only: engines that hold no data of their own or whose data lives elsewhere (Null, Merge, Buffer, Kafka, URL, MySQL, Set, Join, …). */
  | 'external'

/** One column as `SELECT *` and `INSERT` see it, plus how its value is computed. */
export interface ColumnInfo {
  name: string
  type: string
  /** '' (ordinary), 'DEFAULT', 'MATERIALIZED', 'ALIAS' (or 'EPHEMERAL' on modern servers). */
  defaultKind: string
  defaultExpression: string
}

/** One database: recreated from `ddl` before its tables. */
export interface DatabaseInfo {
  name: string
  engine: string
  ddl: string
}

/** One table, view, dictionary… */
export interface TableInfo {
  database: string
  name: string
  engine: string
  kind: TableKind
  /** The full CREATE statement as the server prints it. */
  ddl: string
  /** Engine name ends in MergeTree: backed up partition by partition. */
  mergeTree: boolean
  /** Partition key expression; '' when the table is not partitioned (one partition `all`). */
  partitionKey: string
  /** Rows can be exported and re-inserted (kind 'table'). */
  hasData: boolean
  /** `db.table` keys this object reads from or writes into (MV sources and target, view sources, Distributed/Buffer destination, dictionary source). */
  dependsOn: string[]
  /** Materialized view: `db.table` that receives its rows (its TO table or its inner table). */
  target?: string
  /** Inner storage table of this materialized view (`db.mv`): created by the MV's own DDL. */
  innerOf?: string
  /** Ordinary columns in table order, then MATERIALIZED/ALIAS ones (empty for objects without columns). */
  columns: ColumnInfo[]
}

/** Everything discovery returns. */
export interface Catalog {
  serverVersion: string
  databases: DatabaseInfo[]
  tables: TableInfo[]
}

/** The `db.table` key used in dependsOn/target/innerOf. */
export function tableKey(database: string, name: string): string {
  return `${database}.${name}`
}

/** Columns that `SELECT *` returns and `INSERT … FORMAT Native` must list, in order. */
export function storedColumns(table: Pick<TableInfo, 'columns'>): ColumnInfo[] {
  return table.columns.filter((c) => c.defaultKind === '' || c.defaultKind === 'DEFAULT')
}
