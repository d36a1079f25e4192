/**
 * The recovery window: which times a base backup plus the archived WAL can restore
 * to, per timeline. Pure; table-driven tests in test/postgres/window.test.ts.
 *
 * PostgreSQL's rules this follows (restore always uses recovery_target_timeline =
 * latest):
 * - Recovery follows the newest timeline it can find by probing history files
 *   upward from the backup's timeline (N+1, N+2, … until one is missing), along that
 *   timeline's ancestry. A backup is usable only if it lies on that path and ended
 *   before its timeline branched off.
 * - Segment number s is read from the newest timeline on the path that began at or
 *   before segment s.
 * - A backup is consistent at its stop LSN: its earliest target is its end time
 *   (server clock, read after the backup stopped), never its start.
 * - Recovery to T stops before the first commit later than T, and fails if the WAL
 *   ends first. So a time T is restorable only if the archive holds a commit later
 *   than T: the archiver's heartbeat. A heartbeat read the clock at `us`, then
 *   committed (commit time ≥ us) with its record ending before `lsn`; once WAL up to
 *   `lsn` is archived, every T < us is reachable. WAL must be contiguous from the
 *   backup's start: the first missing segment ends the window.
 */
import type { Heartbeat } from './heartbeats.ts'
import { newestCovered } from './heartbeats.ts'
import type { Micros } from './instant.ts'
import { segmentOf, segmentStartLsn, walFileName, type HistoryEntry } from './wal.ts'

/** What one timeline's archive holds. */
export interface TimelineArchive {
  /** Segment numbers of the complete segments. */
  segments: ReadonlySet<bigint>
  /** The newest upload of the open segment. */
  partial?: { segno: bigint; coversLsn: bigint } | undefined
  /** The timeline's history (ancestors), when its history file is archived. */
  history?: readonly HistoryEntry[] | undefined
  heartbeats: readonly Heartbeat[]
}

/** The archive of one cluster. */
export interface ArchiveView {
  segSize: number
  timelines: ReadonlyMap<number, TimelineArchive>
}

/** What the window needs to know of a base backup. */
export interface WindowBackup {
  id: string
  timeline: number
  startLsn: bigint
  stopLsn: bigint
  /** Server time after the backup stopped: the earliest target. */
  endUs: Micros
}

/** One stretch of a timeline path: `timeline` holds the WAL from `begin` up to `end` (exclusive; open for the last). */
export interface PathStep {
  timeline: number
  begin: bigint
  end: bigint | undefined
}

/** What a backup can restore to. */
export interface BackupWindow {
  backupId: string
  /** The timeline recovery ends on (the newest reachable from the backup's). */
  timeline: number
  restorable: boolean
  /** Why not, when not restorable. */
  reason?: string
  /** Earliest target (inclusive). */
  from: Micros
  /** Latest provable target (inclusive); undefined until a heartbeat after the backup is archived. */
  to?: Micros | undefined
  /** WAL before this LSN is archived contiguously from the backup's start. */
  coverageEnd: bigint
  /** The first segment missing after the backup's start (the archive's end or a gap). */
  firstMissing: string
}

/** A merged stretch of restorable times on one timeline. */
export interface TimeWindow {
  timeline: number
  from: Micros
  to: Micros
  backups: string[]
}

/** The newest timeline recovery reaches from `start`: PostgreSQL probes history files N+1, N+2, … until one is missing. */
export function newestTimeline(start: number, archive: ArchiveView): number {
  let n = start
  while (archive.timelines.get(n + 1)?.history !== undefined) n++
  return n
}

/** The ancestry of `timeline`, oldest first; without its history file, the timeline alone (as PostgreSQL assumes). */
export function timelinePath(timeline: number, archive: ArchiveView): PathStep[] {
  const steps: PathStep[] = []
  let begin = 0n
  for (const e of archive.timelines.get(timeline)?.history ?? []) {
    steps.push({ timeline: e.parentTimeline, begin, end: e.switchLsn })
    begin = e.switchLsn
  }
  steps.push({ timeline, begin, end: undefined })
  return steps
}

/** The timeline segment `segno` is read from on `path`. */
export function segmentTimeline(path: readonly PathStep[], segno: bigint, segSize: number): number {
  for (let i = path.length - 1; i > 0; i--) {
    const step = path[i] as PathStep
    if (segmentOf(step.begin, segSize) <= segno) return step.timeline
  }
  return (path[0] as PathStep).timeline
}

/** How far WAL is archived contiguously along `path` from `from`: the LSN before which every byte is archived, and the first segment missing. */
export function coverageEnd(path: readonly PathStep[], from: bigint, archive: ArchiveView): { end: bigint; firstMissing: string } {
  const seg = archive.segSize
  let segno = segmentOf(from, seg)
  while (archive.timelines.get(segmentTimeline(path, segno, seg))?.segments.has(segno)) segno++
  const tli = segmentTimeline(path, segno, seg)
  let end = segmentStartLsn(segno, seg)
  const partial = archive.timelines.get(tli)?.partial
  if (partial && partial.segno === segno && partial.coversLsn > end) end = partial.coversLsn
  return { end, firstMissing: walFileName(tli, segno, seg) }
}

/** The heartbeats on `path`: each timeline's points inside its stretch. */
function pathHeartbeats(path: readonly PathStep[], archive: ArchiveView): Heartbeat[] {
  return path.flatMap((s) => (archive.timelines.get(s.timeline)?.heartbeats ?? []).filter((p) => p.lsn > s.begin && (s.end === undefined || p.lsn <= s.end)))
}

/** What `b` can restore to, given the archive. */
export function backupWindow(b: WindowBackup, archive: ArchiveView): BackupWindow {
  const timeline = newestTimeline(b.timeline, archive)
  const path = timelinePath(timeline, archive)
  const base = { backupId: b.id, timeline, from: b.endUs }
  const step = path.find((s) => s.timeline === b.timeline)
  if (!step || b.startLsn < step.begin || (step.end !== undefined && b.stopLsn > step.end)) {
    return { ...base, restorable: false, reason: `timeline ${timeline}, which recovery follows, does not pass through this backup`, coverageEnd: 0n, firstMissing: '' }
  }
  const cov = coverageEnd(path, b.startLsn, archive)
  if (cov.end < b.stopLsn) {
    return { ...base, restorable: false, reason: `WAL segment ${cov.firstMissing}, needed to make the backup consistent, is not archived`, coverageEnd: cov.end, firstMissing: cov.firstMissing }
  }
  const h = newestCovered(pathHeartbeats(path, archive), cov.end, b.endUs)
  return { ...base, restorable: true, to: h === undefined ? undefined : h.us - 1n, coverageEnd: cov.end, firstMissing: cov.firstMissing }
}

/** The restorable stretches of time per timeline, merged across backups, in time order. */
export function timeWindows(windows: readonly BackupWindow[]): TimeWindow[] {
  const usable = windows.filter((w): w is BackupWindow & { to: Micros } => w.restorable && w.to !== undefined && w.to >= w.from)
  usable.sort((a, b) => a.timeline - b.timeline || (a.from < b.from ? -1 : a.from > b.from ? 1 : 0))
  const out: TimeWindow[] = []
  for (const w of usable) {
    const cur = out.at(-1)
    if (cur && cur.timeline === w.timeline && w.from <= cur.to + 1n) {
      if (w.to > cur.to) cur.to = w.to
      cur.backups.push(w.backupId)
    } else {
      out.push({ timeline: w.timeline, from: w.from, to: w.to, backups: [w.backupId] })
    }
  }
  return out
}
