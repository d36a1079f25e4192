/**
 * The incarnation of a table: something that changes when a table is dropped
 * and created again under the same name. Block numbers start again in a new
 * table, so without this a new table's partition could repeat an old
 * fingerprint (same block span, same row count) with different rows, and an
 * old object would be reused for it.
 *
 * Servers with Atomic databases give every table a UUID: `u<uuid>`. Older ones
 * (18.x, Ordinary databases) have none; the modification time of the table's
 * metadata file stands in: `m<time>`. That file is rewritten by CREATE and by
 * ALTERs of the table's structure or settings, never by inserts, merges or
 * mutations; an ALTER thus costs one full export of that table, never a wrong
 * reuse.
 */
import type { ClickHouseDriver } from './driver.ts'
import { tableKey } from './catalog.ts'

const ZERO_UUID = '00000000-0000-0000-0000-000000000000'

interface Row {
  database: string
  name: string
  uuid?: string
  mtime?: string
}

/** `db.table` → identity, for every table of `databases` (of every database but `system` when not given). Read-only. */
export async function tableIdentities(driver: ClickHouseDriver, databases?: readonly string[]): Promise<Map<string, string>> {
  const have = new Set(
    (await driver.queryRows<{ name: string }>("SELECT name FROM system.columns WHERE database = 'system' AND table = 'tables'")).map((r) => r.name),
  )
  const cols = ['database', 'name']
  if (have.has('uuid')) cols.push('toString(uuid) AS uuid')
  if (have.has('metadata_modification_time')) cols.push('toString(toUnixTimestamp(metadata_modification_time)) AS mtime')
  const where = databases === undefined ? "database != 'system'" : 'has({dbs:Array(String)}, database)'
  const rows = await driver.queryRows<Row>(`SELECT ${cols.join(', ')} FROM system.tables WHERE ${where}`, databases === undefined ? undefined : { dbs: [...databases] })
  return new Map(rows.map((r) => [tableKey(r.database, r.name), identityOf(r)]))
}

/** The identity of one system.tables row (pure). */
export function identityOf(r: { uuid?: string; mtime?: string }): string {
  if (r.uuid && r.uuid !== ZERO_UUID) return `u${r.uuid}`
  return `m${r.mtime ?? '0'}`
}
