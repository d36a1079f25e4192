/**
 * Parses the `backup_label` file PostgreSQL puts at the start of a base backup: where
 * WAL replay starts, on which timeline, and when the backup started. Pure.
 */
import { TidemarkError } from '../../errors.ts'
import { parseLsn } from './wal.ts'
import { TZ_ABBREVIATIONS } from './tz-abbrev.ts'

/** What a backup_label says. `fields` holds every `KEY: value` line as written. */
export interface BackupLabel {
  startLsn: bigint
  startWalFile: string
  checkpointLsn: bigint
  method: string | undefined
  backupFrom: string | undefined
  startTime: Date
  /** False when the zone abbreviation was ambiguous or unknown and `near` decided the offset. */
  startTimeExact: boolean
  label: string
  timeline: number
  fields: Readonly<Record<string, string>>
}

const FIFTEEN_MIN = 15 * 60_000

function formatError(msg: string): TidemarkError {
  return new TidemarkError('TM_ERR_POSTGRES_FORMAT', msg)
}

/**
 * Parses backup_label text. `near` (for example the time the backup was started by our
 * clock) resolves an ambiguous time zone abbreviation such as IST or CST, and infers the
 * offset of an unknown one; without it those throw TM_ERR_POSTGRES_FORMAT.
 */
export function parseBackupLabel(text: string, opts: { near?: Date } = {}): BackupLabel {
  const fields: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const i = line.indexOf(': ')
    if (i > 0) fields[line.slice(0, i)] = line.slice(i + 2).replace(/\r$/, '')
  }
  const need = (key: string): string => {
    const v = fields[key]
    if (v === undefined) throw formatError(`backup_label has no "${key}" line`)
    return v
  }
  const start = /^(\S+) \(file ([0-9A-F]{24})\)$/.exec(need('START WAL LOCATION'))
  if (!start) throw formatError(`backup_label has a malformed START WAL LOCATION: "${fields['START WAL LOCATION']}"`)
  const startWalFile = start[2] as string
  // The segment size is not known here; the timeline is the file name's first 8 hex digits.
  const fileTimeline = Number.parseInt(startWalFile.slice(0, 8), 16)
  const timeline = fields['START TIMELINE'] === undefined ? fileTimeline : Number(fields['START TIMELINE'])
  if (!Number.isInteger(timeline) || timeline < 1) throw formatError(`backup_label has a malformed START TIMELINE: "${fields['START TIMELINE']}"`)
  const time = parseLabelTime(need('START TIME'), opts.near)
  return {
    startLsn: parseLsn(start[1] as string),
    startWalFile,
    checkpointLsn: parseLsn(need('CHECKPOINT LOCATION')),
    method: fields['BACKUP METHOD'],
    backupFrom: fields['BACKUP FROM'],
    startTime: time.date,
    startTimeExact: time.exact,
    label: fields.LABEL ?? '',
    timeline,
    fields,
  }
}

/**
 * Converts `2026-11-28 09:40:00 CET` (PostgreSQL's `%Y-%m-%d %H:%M:%S %Z`) to an instant.
 * Numeric abbreviations (`+04`, `-0330`) and unambiguous names are exact; see parseBackupLabel for `near`.
 */
export function parseLabelTime(text: string, near?: Date): { date: Date; exact: boolean } {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) (\S+)$/.exec(text.trim())
  if (!m) throw formatError(`backup_label has a malformed START TIME: "${text}"`)
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const wall = Date.UTC(y, mo - 1, d, h, mi, s)
  const zone = m[7] as string
  const numeric = /^([+-])(\d{2})(\d{2})?$/.exec(zone)
  if (numeric) {
    const minutes = (Number(numeric[2]) * 60 + Number(numeric[3] ?? 0)) * (numeric[1] === '-' ? -1 : 1)
    return { date: new Date(wall - minutes * 60_000), exact: true }
  }
  const offsets = TZ_ABBREVIATIONS[zone]
  if (offsets?.length === 1) return { date: new Date(wall - (offsets[0] as number) * 60_000), exact: true }
  if (near === undefined) {
    throw formatError(`backup_label START TIME "${text}" uses the ${offsets ? 'ambiguous' : 'unknown'} time zone abbreviation "${zone}"; pass the time the backup started to resolve it`)
  }
  return { date: new Date(wall - chooseOffset(wall, offsets, near) * 60_000), exact: false }
}

/** The candidate offset (minutes) that puts the wall time nearest `near`; with none, the nearest quarter hour. */
function chooseOffset(wall: number, offsets: readonly number[] | undefined, near: Date): number {
  if (!offsets) return Math.round((wall - near.getTime()) / FIFTEEN_MIN) * 15
  let best = offsets[0] as number
  for (const o of offsets) {
    if (Math.abs(wall - o * 60_000 - near.getTime()) < Math.abs(wall - best * 60_000 - near.getTime())) best = o
  }
  return best
}
