/**
 * How the WAL archive lives in the repository (FORMAT.md, "PostgreSQL WAL"): key
 * layout and the small JSON records written next to the data objects. Pure.
 *
 *   data/postgres/wal/<system-id>/<TLI>/<segment>            segment (pipeline output)
 *   data/postgres/wal/<system-id>/<TLI>/<segment>.ref.json   its reference: written after it
 *   data/postgres/wal/<system-id>/<TLI>/<TLI>.history(.ref.json)   timeline history, likewise
 *   data/postgres/wal/<system-id>/<TLI>/<segment>.partial.<h> an upload of the open segment
 *   data/postgres/wal/<system-id>/<TLI>/partial.json         the newest such upload (rewritten)
 *   data/postgres/wal/<system-id>/<TLI>/heartbeats.json      server time ↔ LSN points (rewritten)
 *
 * The system identifier keeps two clusters' WAL apart: their segment names collide.
 */
import { TidemarkError } from '../../errors.ts'
import { dataKey, type ObjectRef } from '../repository/format.ts'

/** The prefix of every WAL archive object; prune never sweeps it as unreferenced. */
export const WAL_ROOT = dataKey('postgres', 'wal/')

const SEGMENT_RE = /^[0-9A-F]{24}$/
const HISTORY_RE = /^[0-9A-F]{8}\.history$/
const SYSTEM_RE = /^\d{1,20}$/

/** A complete segment or a history file, as archived. Written after the data object it describes. */
export interface WalFileRecord {
  format: 'tidemark-wal-file'
  version: 1
  systemId: string
  name: string
  timeline: number
  archivedAt: string
  ref: ObjectRef
}

/** The newest upload of a timeline's open segment: WAL before `coversLsn` is in it (proven by the replication slot). */
export interface PartialRecord {
  format: 'tidemark-wal-partial'
  version: 1
  systemId: string
  timeline: number
  segment: string
  coversLsn: string
  uploadedAt: string
  ref: ObjectRef
}

/** A heartbeat: the archiver committed a transaction after reading the server's clock at `at`; its commit record ends before `lsn`. */
export interface HeartbeatPoint {
  at: string
  lsn: string
}

/** The heartbeats of one timeline, oldest first. */
export interface HeartbeatsRecord {
  format: 'tidemark-wal-heartbeats'
  version: 1
  systemId: string
  timeline: number
  points: HeartbeatPoint[]
}

/** A key under a system's archive, classified. */
export type ArchiveKey =
  | { kind: 'file-ref'; systemId: string; timeline: number; name: string; type: 'segment' | 'history' }
  | { kind: 'partial'; systemId: string; timeline: number }
  | { kind: 'heartbeats'; systemId: string; timeline: number }
  | { kind: 'data'; systemId: string; timeline: number; name: string }

const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0')

/** Throws TM_ERR_POSTGRES_WAL_NAME unless `id` looks like a PostgreSQL system identifier (a 64-bit decimal). */
export function checkSystemId(id: string): string {
  if (!SYSTEM_RE.test(id)) throw new TidemarkError('TM_ERR_POSTGRES_WAL_NAME', `"${id}" is not a PostgreSQL system identifier (a decimal number, as pg_controldata prints it)`)
  return id
}

/** The archive prefix of one cluster. */
export function systemPrefix(systemId: string): string {
  return `${WAL_ROOT}${checkSystemId(systemId)}/`
}

/** Which kind of archived file a name is: `segment`, `history`, or undefined for anything else. */
export function walFileType(name: string): 'segment' | 'history' | undefined {
  return SEGMENT_RE.test(name) ? 'segment' : HISTORY_RE.test(name) ? 'history' : undefined
}

/** The timeline a segment or history file name belongs to (its first eight hex digits). */
export function timelineOfName(name: string): number {
  if (walFileType(name) === undefined) throw new TidemarkError('TM_ERR_POSTGRES_WAL_NAME', `"${name}" is not a WAL segment or timeline history file name`)
  return Number.parseInt(name.slice(0, 8), 16)
}

/** The archive prefix of one timeline of a cluster. */
export function timelinePrefix(systemId: string, timeline: number): string {
  return `${systemPrefix(systemId)}${hex8(timeline)}/`
}

/** The data object of a complete segment or history file. */
export function walDataKey(systemId: string, name: string): string {
  return `${timelinePrefix(systemId, timelineOfName(name))}${name}`
}

/** The reference record of a complete segment or history file. */
export function walRefKey(systemId: string, name: string): string {
  return `${walDataKey(systemId, name)}.ref.json`
}

/** The data object of one upload of an open segment; `hash` names its content. */
export function partialDataKey(systemId: string, segment: string, hash: string): string {
  if (!/^[0-9a-f]{8,64}$/.test(hash)) throw new TidemarkError('TM_ERR_INTERNAL', `bad partial content hash "${hash}"`)
  return `${walDataKey(systemId, segment)}.partial.${hash}`
}

/** The record of a timeline's newest open-segment upload. */
export function partialKey(systemId: string, timeline: number): string {
  return `${timelinePrefix(systemId, timeline)}partial.json`
}

/** The heartbeat record of a timeline. */
export function heartbeatsKey(systemId: string, timeline: number): string {
  return `${timelinePrefix(systemId, timeline)}heartbeats.json`
}

/** Where a base backup's tar stream is stored. */
export function baseBackupKey(backupId: string): string {
  return dataKey('postgres', `base/${backupId}.tar`)
}

/** Classifies a key under WAL_ROOT; undefined for keys that are not part of the layout. */
export function parseArchiveKey(key: string): ArchiveKey | undefined {
  if (!key.startsWith(WAL_ROOT)) return undefined
  const parts = key.slice(WAL_ROOT.length).split('/')
  if (parts.length !== 3) return undefined
  const [systemId, tli, file] = parts as [string, string, string]
  if (!SYSTEM_RE.test(systemId) || !/^[0-9A-F]{8}$/.test(tli)) return undefined
  const timeline = Number.parseInt(tli, 16)
  if (file === 'partial.json') return { kind: 'partial', systemId, timeline }
  if (file === 'heartbeats.json') return { kind: 'heartbeats', systemId, timeline }
  const name = file.endsWith('.ref.json') ? file.slice(0, -'.ref.json'.length) : undefined
  const type = name === undefined ? undefined : walFileType(name)
  if (name !== undefined && type !== undefined && timelineOfName(name) === timeline) return { kind: 'file-ref', systemId, timeline, name, type }
  return { kind: 'data', systemId, timeline, name: file }
}
