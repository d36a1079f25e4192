/**
 * Choosing the base backup for a point-in-time restore. Pure: given each backup's
 * window and a target, the backup to restore, or an error that names the window.
 *
 * - A time T: the newest backup ending at or before T whose window reaches T. A T
 *   inside a backup's own run (between its start and end) is thus served by the
 *   previous backup, and refused when there is none: a backup is only consistent at
 *   its end.
 * - `latest`: the backup whose archived WAL reaches furthest (the newest of those);
 *   recovery then replays everything the archive holds, the newest partial upload
 *   included.
 */
import { TidemarkError } from '../../errors.ts'
import { formatMicros, type Micros } from './instant.ts'
import { formatLsn } from './wal.ts'
import { timeWindows, type BackupWindow, type TimeWindow } from './window.ts'

/** What to restore. `expectedEnd` is the latest provable time the WAL reaches (latest restores may replay a little more). */
export interface RestorePlan {
  backupId: string
  timeline: number
  target: 'latest' | Micros
  window: BackupWindow
  expectedEnd: Micros | undefined
}

const describe = (w: TimeWindow): string => `${formatMicros(w.from)} to ${formatMicros(w.to)} (timeline ${w.timeline})`

function describeAll(windows: readonly TimeWindow[]): string {
  return windows.length === 0 ? 'no restorable time yet (the archive holds no heartbeat after any backup: is `tidemark wal-archive` running?)' : windows.map(describe).join('; ')
}

function outOfWindow(target: Micros, windows: readonly TimeWindow[]): TidemarkError {
  const t = formatMicros(target)
  const first = windows[0]
  const last = windows.at(-1)
  let why = `${t} is outside the recovery window`
  if (first && target < first.from) why = `${t} is before the earliest restorable time ${formatMicros(first.from)}`
  else if (last && target > last.to) why = `${t} is after the latest restorable time ${formatMicros(last.to)}`
  else if (first) why = `${t} falls in a gap of the WAL archive`
  return new TidemarkError('TM_ERR_RESTORE_OUT_OF_WINDOW', `${why}. Restorable: ${describeAll(windows)}`, {
    details: { target: t, windows: windows.map((w) => ({ timeline: w.timeline, from: formatMicros(w.from), to: formatMicros(w.to) })) },
  })
}

function noBackup(windows: readonly BackupWindow[]): TidemarkError {
  if (windows.length === 0) return new TidemarkError('TM_ERR_RESTORE_NO_BACKUP', 'the repository holds no PostgreSQL base backup: take one with `tidemark backup postgres` (with `tidemark wal-archive` running)')
  const reasons = windows.map((w) => `${w.backupId}: ${w.reason ?? 'not restorable'}`).join('; ')
  return new TidemarkError('TM_ERR_RESTORE_NO_BACKUP', `no base backup can be restored: ${reasons}`)
}

const newer = (a: BackupWindow, b: BackupWindow): boolean => a.from > b.from || (a.from === b.from && a.backupId > b.backupId)

/** The plan for `target`; TM_ERR_RESTORE_NO_BACKUP or TM_ERR_RESTORE_OUT_OF_WINDOW (naming the window) otherwise. */
export function planRestore(windows: readonly BackupWindow[], target: 'latest' | Micros): RestorePlan {
  const restorable = windows.filter((w) => w.restorable)
  if (restorable.length === 0) throw noBackup(windows)
  let best: BackupWindow | undefined
  if (target === 'latest') {
    for (const w of restorable) if (!best || w.coverageEnd > best.coverageEnd || (w.coverageEnd === best.coverageEnd && newer(w, best))) best = w
  } else {
    for (const w of restorable) if (w.to !== undefined && w.from <= target && target <= w.to && (!best || newer(w, best))) best = w
    if (!best) throw outOfWindow(target, timeWindows(windows))
  }
  const chosen = best as BackupWindow
  return { backupId: chosen.backupId, timeline: chosen.timeline, target, window: chosen, expectedEnd: chosen.to }
}

/** One line for logs and the CLI: which backup, which target, how far the WAL reaches. */
export function describePlan(p: RestorePlan): string {
  const target = p.target === 'latest' ? 'the end of the archive' : formatMicros(p.target)
  const end = p.expectedEnd === undefined ? `WAL up to ${formatLsn(p.window.coverageEnd)}` : `WAL up to ${formatLsn(p.window.coverageEnd)}, proven to ${formatMicros(p.expectedEnd)}`
  return `base backup ${p.backupId}, recovering to ${target} on timeline ${p.timeline} (${end})`
}
