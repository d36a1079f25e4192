/**
 * SQL that moves one partition's rows out and back in, and a content digest
 * to compare a partition (or table) across time or across servers.
 *
 * Selecting one partition: `_partition_id = '…'` is exact on every version
 * (18.x included) but servers before 21.5 do not use it to skip parts, so on
 * them each partition's export reads the whole table. `_part IN (…)` does skip
 * parts on 18.x; combined with `_partition_id` and followed by
 * partsStillActive() it reads exactly the parts the fingerprint was computed
 * from (see partitions.ts).
 */
import { storedColumns, type ColumnInfo, type TableInfo } from './catalog.ts'
import { literal, qualified, quoteIdent, quoteString } from './names.ts'

/** Which rows of a table one unit of backup covers. */
export interface PartitionSelector {
  partitionId: string
  /** When given, only these active parts (must all belong to the partition). */
  parts?: readonly string[]
}

/** WHERE condition selecting one partition (optionally restricted to named parts). */
export function partitionPredicate(sel: PartitionSelector): string {
  const byId = `_partition_id = ${quoteString(sel.partitionId)}`
  if (!sel.parts) return byId
  // `IN (…)` with a tuple literal: 18.x does not accept an array on the right of IN.
  const list = sel.parts.length === 0 ? "('')" : `(${sel.parts.map(quoteString).join(', ')})`
  return `${byId} AND _part IN ${list}`
}

/** The stored columns as a quoted, comma-separated list (the order of the export and of the INSERT). */
export function columnList(columns: readonly ColumnInfo[]): string {
  return columns.map((c) => quoteIdent(c.name)).join(', ')
}

type TableRef = Pick<TableInfo, 'database' | 'name' | 'columns'>

/** `SELECT <stored columns> FROM db.t [WHERE predicate]`; add the format with the driver. */
export function exportSql(table: TableRef, predicate?: string): string {
  const where = predicate ? ` WHERE ${predicate}` : ''
  return `SELECT ${columnList(storedColumns(table))} FROM ${qualified(table.database, table.name)}${where}`
}

/** `INSERT INTO db.t (<stored columns>) FORMAT Native` for a body produced by exportSql. */
export function insertNativeSql(table: TableRef, database = table.database): string {
  return `INSERT INTO ${qualified(database, table.name)} (${columnList(storedColumns(table))}) FORMAT Native`
}

const NATIVE_HASHABLE = /^(U?Int(8|16|32|64|128|256)|Float(32|64)|Date|Date32|DateTime(\(.*\))?|String|FixedString\(\d+\)|Enum(8|16)\(.*\)|LowCardinality\(String\))$/s

/**
 * The expression(s) hashing one column. Types cityHash64 reads directly are
 * hashed as they are (cheap); others through toString (UUID, Decimal, Array,
 * Tuple, AggregateFunction… are not all hashable on old servers); a Nullable
 * adds its null flag, because a NULL argument would make the whole row's hash
 * NULL, and sum() skips NULLs.
 */
export function hashArgs(column: Pick<ColumnInfo, 'name' | 'type'>): string {
  const c = quoteIdent(column.name)
  if (/^(LowCardinality\()?Nullable\(/.test(column.type)) return `isNull(${c}), ifNull(toString(${c}), '')`
  return NATIVE_HASHABLE.test(column.type) ? c : `toString(${c})`
}

/** `SELECT count() AS rows` over the rows `predicate` selects: no column is read. */
export function countSql(table: TableRef, predicate?: string): string {
  return `SELECT count() AS rows FROM ${qualified(table.database, table.name)}${predicate ? ` WHERE ${predicate}` : ''}`
}

/**
 * `SELECT count() AS rows, sum(cityHash64(…)) AS digest` over the stored
 * columns: order-independent (merges and parallel reads do not matter), equal
 * for equal multisets of rows. Compare only digests computed by the same
 * server version: text forms of some types differ between versions.
 */
export function digestSql(table: TableRef, predicate?: string): string {
  const cols = storedColumns(table)
  const hash = cols.length === 0 ? literal(0) : `sum(cityHash64(${cols.map(hashArgs).join(', ')}))`
  const where = predicate ? ` WHERE ${predicate}` : ''
  return `SELECT count() AS rows, ${hash} AS digest FROM ${qualified(table.database, table.name)}${where}`
}
