/**
 * Retention: which backups a policy keeps, and why. Pure functions of (backups,
 * policy, now), so they can be table-tested and so a dry run shows exactly what
 * prune would do. Every rule works per source (a ClickHouse and a PostgreSQL backup
 * never compete for the same slot), and all calendar arithmetic is UTC.
 */
import { TidemarkError } from '../errors.ts'

/** A retention policy; the configuration's `retention` section fits it. */
export interface RetentionPolicy {
  /** The newest N backups of each source. */
  keepLast: number
  /** The newest backup of each of the last D UTC calendar days (today included). */
  keepDaily: number
  /** The newest backup of each of the last W ISO weeks (Monday 00:00 UTC starts a week). */
  keepWeekly: number
  /** Everything that ended less than this many hours ago. */
  minAgeHours: number
}

/** What retention needs to know of a backup (a manifest fits). */
export interface BackupSummary {
  id: string
  source: string
  /** ISO time; the backup's restore point. */
  endedAt: string
}

export interface KeptBackup {
  id: string
  source: string
  reasons: string[]
}

export interface RemovedBackup {
  id: string
  source: string
  reason: string
}

/** The decision, each list sorted by id (i.e. by time). */
export interface RetentionDecision {
  keep: KeptBackup[]
  remove: RemovedBackup[]
}

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000

/** Days since the epoch of a UTC time. */
function dayIndex(ms: number): number {
  return Math.floor(ms / DAY_MS)
}

/** ISO weeks since the Monday before the epoch (1970-01-01 was a Thursday). */
function weekIndex(ms: number): number {
  return Math.floor((dayIndex(ms) + 3) / 7)
}

/** The ISO week of a time, UTC, e.g. `2026-W48`. */
export function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()))
  // The ISO year of a week is the year of its Thursday.
  t.setUTCDate(t.getUTCDate() + 4 - (t.getUTCDay() || 7))
  const year = t.getUTCFullYear()
  const week = Math.floor((t.getTime() - Date.UTC(year, 0, 1)) / DAY_MS / 7) + 1
  return `${year}-W${String(week).padStart(2, '0')}`
}

/** Throws TM_ERR_CONFIG_INVALID unless every count is a non-negative integer. */
export function checkPolicy(p: RetentionPolicy): void {
  for (const k of ['keepLast', 'keepDaily', 'keepWeekly', 'minAgeHours'] as const) {
    if (!Number.isSafeInteger(p[k]) || p[k] < 0) throw new TidemarkError('TM_ERR_CONFIG_INVALID', `retention.${k} must be a non-negative integer, got ${p[k]}`)
  }
}

function describe(p: RetentionPolicy): string {
  return `keepLast ${p.keepLast}, keepDaily ${p.keepDaily}, keepWeekly ${p.keepWeekly}, minAgeHours ${p.minAgeHours}`
}

interface Dated extends BackupSummary {
  ms: number
}

function dated(b: BackupSummary): Dated {
  const ms = Date.parse(b.endedAt)
  if (!Number.isFinite(ms)) throw new TidemarkError('TM_ERR_REPO_CORRUPT', `backup ${b.id} has an invalid endedAt ${JSON.stringify(b.endedAt)}`)
  return { ...b, ms }
}

/** The policy's own reasons to keep each backup of one source (newest first); no safety net. */
function ruleReasons(newestFirst: readonly Dated[], p: RetentionPolicy, now: number): Map<string, string[]> {
  const reasons = new Map<string, string[]>(newestFirst.map((b) => [b.id, []]))
  const add = (b: Dated, why: string) => reasons.get(b.id)?.push(why)
  const days = new Set<number>()
  const weeks = new Set<number>()
  newestFirst.forEach((b, i) => {
    if (i < p.keepLast) add(b, `last ${i + 1} of ${p.keepLast}`)
    // A backup stamped in the future (clock skew) counts as today's.
    const day = Math.min(dayIndex(b.ms), dayIndex(now))
    if (dayIndex(now) - day < p.keepDaily && !days.has(day)) {
      days.add(day)
      add(b, `daily ${new Date(day * DAY_MS).toISOString().slice(0, 10)}`)
    }
    const week = Math.min(weekIndex(b.ms), weekIndex(now))
    if (weekIndex(now) - week < p.keepWeekly && !weeks.has(week)) {
      weeks.add(week)
      add(b, `weekly ${isoWeek(new Date(Math.min(b.ms, now)))}`)
    }
    if (now - b.ms < p.minAgeHours * HOUR_MS) add(b, `younger than ${p.minAgeHours}h`)
  })
  return reasons
}

/**
 * Which backups `policy` keeps at `now`, with every reason, and which it removes.
 * The newest backup of each source is always kept. Throws TM_ERR_RETENTION_UNSAFE
 * when the policy's rules by themselves keep no backup of some source (it would
 * delete every backup but for that safety net): such a policy is a mistake.
 */
export function applyRetention(backups: readonly BackupSummary[], policy: RetentionPolicy, now: Date): RetentionDecision {
  checkPolicy(policy)
  const keep: KeptBackup[] = []
  const remove: RemovedBackup[] = []
  const bySource = Map.groupBy(backups.map(dated), (b) => b.source)
  for (const [source, list] of bySource) {
    const newestFirst = list.sort((a, b) => b.ms - a.ms || (a.id < b.id ? 1 : -1))
    const reasons = ruleReasons(newestFirst, policy, now.getTime())
    if (newestFirst.every((b) => reasons.get(b.id)?.length === 0)) {
      throw new TidemarkError(
        'TM_ERR_RETENTION_UNSAFE',
        `the retention policy (${describe(policy)}) would delete every ${source} backup (${list.length}); refusing. Keep at least the last backup (keepLast >= 1)`,
        { details: { source, backups: list.length } },
      )
    }
    reasons.get(newestFirst[0]!.id)!.push(`newest backup of ${source}`)
    for (const b of newestFirst) {
      const why = reasons.get(b.id)!
      if (why.length > 0) keep.push({ id: b.id, source, reasons: why })
      else remove.push({ id: b.id, source, reason: `no rule keeps it (${describe(policy)})` })
    }
  }
  const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  return { keep: keep.sort(byId), remove: remove.sort(byId) }
}

/** Where a WAL object lies in the log: `[start, end)` as positions (LSNs) that compare across the archive. */
export interface WalRange {
  start: bigint
  end: bigint
}

/** The WAL rule's decision. `horizon` is the oldest kept base backup's start (undefined: none kept). */
export interface WalRetention {
  keep: string[]
  remove: string[]
  horizon: bigint | undefined
}

/**
 * PostgreSQL's WAL rule: WAL that ends at or before the start of the oldest kept base
 * backup is removable; WAL a kept base backup needs (from its start on) never is.
 * `positionOf` maps an archive key to its range, or undefined for objects that are
 * not ordinary segments (timeline history files…), which are always kept. With no
 * kept base backup, nothing is removable: WAL alone is all there is to restore from.
 */
export function applyWalRetention(keys: readonly string[], positionOf: (key: string) => WalRange | undefined, keptBaseStarts: readonly bigint[]): WalRetention {
  const horizon = keptBaseStarts.length === 0 ? undefined : keptBaseStarts.reduce((a, b) => (b < a ? b : a))
  const keep: string[] = []
  const remove: string[] = []
  for (const key of keys) {
    const pos = positionOf(key)
    if (horizon !== undefined && pos !== undefined && pos.end <= horizon) remove.push(key)
    else keep.push(key)
  }
  return { keep, remove, horizon }
}
