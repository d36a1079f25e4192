/**
 * The manifest of a PostgreSQL base backup (method `postgres-base`): the tar stream
 * pg_basebackup wrote, plus every archived WAL file from the backup's start to its
 * stop, so the backup restores on its own to its end time (FORMAT.md rule 4).
 */
import { TidemarkError } from '../../errors.ts'
import type { ManifestBase } from '../repository/format.ts'
import { parseInstant } from './instant.ts'
import { parseLsn } from './wal.ts'
import type { WindowBackup } from './window.ts'

export const BASE_METHOD = 'postgres-base'

/** The PostgreSQL side of a base backup's manifest. LSNs as PostgreSQL prints them; times ISO 8601 UTC. */
export interface PostgresBaseInfo {
  systemId: string
  serverMajor: number
  walSegSize: number
  timeline: number
  startLsn: string
  stopLsn: string
  startWalFile: string
  /** From backup_label: server time, whole seconds. */
  startTime: string
  /** Server time read after the backup stopped, to the microsecond: the earliest restorable time. */
  endTime: string
  label: string
  /** Key of the tar object among `objects`. */
  tarKey: string
  /** Raw bytes of the tar stream. */
  tarBytes: number
  /** The archived WAL files among `objects` (segments from start to stop, the timeline's history file). */
  walFiles: string[]
}

/** A committed base backup. */
export interface PostgresBaseManifest extends ManifestBase {
  method: typeof BASE_METHOD
  postgres: PostgresBaseInfo
}

/** True for a base backup's manifest (the source also holds logical dumps). */
export function isBaseManifest(m: ManifestBase): m is PostgresBaseManifest {
  return m.source === 'postgres' && m.method === BASE_METHOD && typeof (m as Partial<PostgresBaseManifest>).postgres === 'object'
}

/** What the recovery window needs of a base backup; TM_ERR_REPO_CORRUPT when the manifest's fields do not parse. */
export function windowBackupOf(m: PostgresBaseManifest): WindowBackup {
  try {
    return { id: m.id, timeline: m.postgres.timeline, startLsn: parseLsn(m.postgres.startLsn), stopLsn: parseLsn(m.postgres.stopLsn), endUs: parseInstant(m.postgres.endTime) }
  } catch (err) {
    throw new TidemarkError('TM_ERR_REPO_CORRUPT', `manifest of backup ${m.id} has malformed PostgreSQL fields: ${(err as Error).message}`, { cause: err })
  }
}
