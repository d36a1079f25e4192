/**
 * Repository keys of ClickHouse logical objects:
 *
 *   data/clickhouse/<db>/<table>/<partition id>/<fingerprint>-<backup id>.native
 *
 * The backup id is part of the key because exporting the same fingerprint twice
 * may give different bytes (row order changes after merges): two exports must
 * never share a key. Reuse is decided from manifest entries, never by finding
 * a key.
 */
import { dataKey } from '../repository/index.ts'

/**
 * One key segment for any name: bytes other than `[A-Za-z0-9_-]` become `%XX`
 * (UTF-8, upper-case hex). Injective, never empty, never `.` or `..`, and only
 * printable ASCII without `/` (the Sink key rules).
 */
export function encodeSegment(name: string): string {
  if (name === '') return '%'
  let out = ''
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Where a unit's object is written; unique per (unit, fingerprint, backup). */
export function objectKey(database: string, table: string, partitionId: string, fingerprint: string, backupId: string): string {
  const path = [database, table, partitionId, `${fingerprint}-${backupId}`].map(encodeSegment)
  path[3] = `${path[3]}.native`
  return dataKey('clickhouse', path.join('/'))
}
