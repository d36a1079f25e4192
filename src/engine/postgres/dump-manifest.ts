/**
 * The manifest of a PostgreSQL logical dump (method `postgres-dump`): one
 * `pg_dump -Fc` archive of one database, taken on an exported snapshot whose time is
 * the dump's restore point.
 */
import { dataKey, type ManifestBase } from '../repository/format.ts'

export const DUMP_METHOD = 'postgres-dump'

/** The PostgreSQL side of a dump's manifest. Times ISO 8601 UTC, to the microsecond. */
export interface PostgresDumpInfo {
  serverMajor: number
  /** The database dumped. */
  database: string
  /** Server clock read just after the snapshot was taken: nothing committed later is in the dump. The restore point. */
  at: string
  /** Server clock read when the snapshot's transaction began: everything committed earlier is in the dump. */
  notBefore: string
  /** Key of the archive among `objects`. */
  dumpKey: string
  /** Raw bytes of pg_dump's output. */
  dumpBytes: number
  pgDumpVersion: string
}

/** A committed logical dump. */
export interface PostgresDumpManifest extends ManifestBase {
  method: typeof DUMP_METHOD
  postgres: PostgresDumpInfo
}

/** True for a logical dump's manifest. */
export function isDumpManifest(m: ManifestBase): m is PostgresDumpManifest {
  return m.source === 'postgres' && m.method === DUMP_METHOD && typeof (m as Partial<PostgresDumpManifest>).postgres === 'object'
}

/** The repository key of a dump's archive (named by the backup id: written once). */
export function dumpKey(backupId: string): string {
  return dataKey('postgres', `dump/${backupId}.dump`)
}
