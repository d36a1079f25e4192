/**
 * Heartbeat points: (server time, LSN) pairs that prove how far in time the archived
 * WAL reaches. Kept in one rewritten record per timeline, thinned so it stays small:
 * every recent point, and of older ones the last per WAL segment (a coverage end lies
 * on a segment boundary or in the newest partial upload, so the last point of each
 * segment answers "the newest point before here" exactly). Pure.
 */
import { formatMicros, parseInstant, type Micros } from './instant.ts'
import type { HeartbeatPoint } from './wal-format.ts'
import { formatLsn, parseLsn, segmentOf } from './wal.ts'

/** A heartbeat point in numbers. */
export interface Heartbeat {
  us: Micros
  lsn: bigint
}

/** Points kept whatever their segment. */
export const RECENT_POINTS = 64
/** Points kept at most. */
export const MAX_POINTS = 4096

/** Parses stored points (skipping malformed ones: a bad point must not hide the good ones). */
export function parseHeartbeats(points: readonly HeartbeatPoint[]): Heartbeat[] {
  const out: Heartbeat[] = []
  for (const p of points) {
    try {
      out.push({ us: parseInstant(p.at), lsn: parseLsn(p.lsn) })
    } catch {
      // ignored, see above
    }
  }
  return out
}

/** Points as stored. */
export function formatHeartbeats(points: readonly Heartbeat[]): HeartbeatPoint[] {
  return points.map((p) => ({ at: formatMicros(p.us), lsn: formatLsn(p.lsn) }))
}

/** Adds a point (ignored unless it is newer in both time and LSN than the last) and thins the list. */
export function addHeartbeat(points: readonly Heartbeat[], p: Heartbeat, segSize: number): Heartbeat[] {
  const last = points.at(-1)
  const all = last && (p.us <= last.us || p.lsn < last.lsn) ? [...points] : [...points, p]
  return thinHeartbeats(all, segSize)
}

/** Keeps the newest RECENT_POINTS points, the last point of each segment before them, and at most MAX_POINTS. */
export function thinHeartbeats(points: readonly Heartbeat[], segSize: number): Heartbeat[] {
  const cut = Math.max(0, points.length - RECENT_POINTS)
  const older = points.slice(0, cut).filter((p, i, a) => {
    const next = a[i + 1] ?? points[cut]
    return next === undefined || segmentOf(next.lsn, segSize) !== segmentOf(p.lsn, segSize)
  })
  return [...older, ...points.slice(cut)].slice(-MAX_POINTS)
}

/** The newest point whose commit is in WAL before `end` and that is later than `after`. */
export function newestCovered(points: readonly Heartbeat[], end: bigint, after: Micros): Heartbeat | undefined {
  let best: Heartbeat | undefined
  for (const p of points) if (p.lsn <= end && p.us > after && (!best || p.us > best.us)) best = p
  return best
}
