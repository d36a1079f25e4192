/**
 * Time-aligned restore planning: pure functions from the stores' catalogs and a
 * requested time to the restore points and a plan. No I/O, no clock: "latest" is
 * resolved against the catalogs, never against now.
 *
 * Where each store can land:
 * - ClickHouse: only on a backup's end time (rows written during a backup may or may
 *   not be in it; everything before its start is).
 * - PostgreSQL, physical: anywhere inside a recovery window (from a base backup's end to
 *   the newest time the contiguous WAL after it provably covers); a WAL gap ends a window.
 * - PostgreSQL, logical: only on a dump's snapshot time.
 *
 * A restore never lands after the requested time: a restore "to 09:40" must not bring
 * back what happened at 09:41. With ClickHouse and logical PostgreSQL, whose points
 * rarely coincide, PostgreSQL takes the first dump at or after the ClickHouse point and
 * no later than the requested time (PostgreSQL ahead of ClickHouse is the harmless
 * direction: every run still finds its project).
 */
import { TidemarkError } from '../errors.ts'

export interface ClickHouseCatalog {
  backups: readonly { id: string; startedAt: string; endedAt: string }[]
}

export interface PhysicalPostgresCatalog {
  method: 'physical'
  /** Restorable intervals, from base backup ends and contiguous WAL; disjoint. */
  windows: readonly { timeline: number; from: string; to: string }[]
  baseBackups: readonly { id: string; timeline: number; endedAt: string }[]
}

export interface LogicalPostgresCatalog {
  method: 'logical'
  dumps: readonly { id: string; at: string }[]
}

export type PostgresCatalog = PhysicalPostgresCatalog | LogicalPostgresCatalog

/** The catalogs of the selected stores; an absent store is not restored. */
export interface Catalogs {
  clickhouse?: ClickHouseCatalog
  postgres?: PostgresCatalog
}

export type Requested = 'latest' | Date

export interface LossWindow {
  /** Where the store lands. */
  from: string
  /** The requested time (for latest: the chosen point). */
  to: string
  seconds: number
}

export interface ClickHouseStep {
  backupId: string
  target: string
  loss: LossWindow
}

export type PostgresStep =
  | { method: 'physical'; baseBackupId: string; timeline: number; target: string; loss: LossWindow }
  | { method: 'logical'; dumpId: string; target: string; loss: LossWindow }

export interface Plan {
  requested: string
  /** The common point: where ClickHouse lands, else where PostgreSQL lands. */
  point: string
  clickhouse?: ClickHouseStep
  postgres?: PostgresStep
}

/** One time all selected stores can be restored to, or (physical PostgreSQL alone) a range of them. */
export type RestorePoint = { at: string } | { from: string; to: string; timeline: number }

const ms = (iso: string) => Date.parse(iso)
const iso = (t: number) => new Date(t).toISOString()

function noStores(): never {
  throw new TidemarkError('TM_ERR_USAGE', 'select at least one store to restore (clickhouse, postgres)')
}

/** Physical PostgreSQL's landing for time t: the window holding it and the newest base backup ending at or before t in it. */
function physicalAt(pg: PhysicalPostgresCatalog, t: number) {
  const w = pg.windows.find((w) => ms(w.from) <= t && t <= ms(w.to))
  if (!w) return undefined
  const base = pg.baseBackups
    .filter((b) => b.timeline === w.timeline && ms(b.endedAt) <= t && ms(b.endedAt) >= ms(w.from))
    .sort((a, b) => ms(b.endedAt) - ms(a.endedAt))[0]
  return base ? { window: w, base } : undefined
}

/** Logical PostgreSQL's landing for a ClickHouse point e: the dump nearest after it, in [e, limit]. */
function logicalFor(pg: LogicalPostgresCatalog, e: number, limit: number) {
  return pg.dumps.filter((d) => ms(d.at) >= e && ms(d.at) <= limit).sort((a, b) => ms(a.at) - ms(b.at))[0]
}

/**
 * Every restore point of the selected stores, oldest first (ranges for physical
 * PostgreSQL alone). `until` bounds how late logical PostgreSQL may land when paired
 * with ClickHouse (the requested time).
 */
export function restorePoints(c: Catalogs, until = Infinity): RestorePoint[] {
  const { clickhouse: ch, postgres: pg } = c
  if (ch) {
    const ends = [...new Set(ch.backups.map((b) => ms(b.endedAt)))].sort((a, b) => a - b)
    return ends
      .filter((e) => !pg || (pg.method === 'physical' ? physicalAt(pg, e) : logicalFor(pg, e, until)))
      .map((e) => ({ at: iso(e) }))
  }
  if (!pg) return noStores()
  if (pg.method === 'logical') return [...pg.dumps].sort((a, b) => ms(a.at) - ms(b.at)).map((d) => ({ at: d.at }))
  return [...pg.windows].sort((a, b) => ms(a.from) - ms(b.from)).map((w) => ({ from: w.from, to: w.to, timeline: w.timeline }))
}

const pointStart = (p: RestorePoint) => ms('at' in p ? p.at : p.from)
const pointEnd = (p: RestorePoint) => ms('at' in p ? p.at : p.to)

/**
 * The plan for restoring the selected stores to `requested`: the newest common point at
 * or before it. Throws TM_ERR_NO_RESTORE_POINT, naming the nearest points, when there is none.
 */
export function plan(c: Catalogs, requested: Requested): Plan {
  const r = requested === 'latest' ? Infinity : requested.getTime()
  const chosen = restorePoints(c, r)
    .filter((p) => pointStart(p) <= r)
    .at(-1)
  if (!chosen) throw noPoint(restorePoints(c), requested)
  const t = Math.min(pointEnd(chosen), r)
  const to = requested === 'latest' ? t : r
  const loss = (from: number): LossWindow => ({ from: iso(from), to: iso(to), seconds: (to - from) / 1000 })
  const out: Plan = { requested: requested === 'latest' ? 'latest' : iso(r), point: iso(t) }

  if (c.clickhouse) {
    const b = c.clickhouse.backups.filter((b) => ms(b.endedAt) === t).sort((x, y) => (x.id < y.id ? 1 : -1))[0]!
    out.clickhouse = { backupId: b.id, target: iso(t), loss: loss(t) }
  }
  const pg = c.postgres
  if (pg?.method === 'physical') {
    const at = physicalAt(pg, t)!
    out.postgres = { method: 'physical', baseBackupId: at.base.id, timeline: at.window.timeline, target: iso(t), loss: loss(t) }
  } else if (pg?.method === 'logical') {
    const d = c.clickhouse ? logicalFor(pg, t, r)! : pg.dumps.find((d) => ms(d.at) === t)!
    out.postgres = { method: 'logical', dumpId: d.id, target: d.at, loss: loss(ms(d.at)) }
  }
  return out
}

function noPoint(points: RestorePoint[], requested: Requested): TidemarkError {
  if (points.length === 0) {
    return new TidemarkError('TM_ERR_NO_RESTORE_POINT', 'the selected stores have no common restore point yet: take a backup of each first', { details: { nearest: [] } })
  }
  const r = requested === 'latest' ? Infinity : requested.getTime()
  const before = points.filter((p) => pointStart(p) <= r).at(-1)
  const after = points.find((p) => pointStart(p) > r)
  const nearest = [before, after].filter((p): p is RestorePoint => p !== undefined)
  const show = (p: RestorePoint) => ('at' in p ? p.at : `${p.from} … ${p.to}`)
  return new TidemarkError(
    'TM_ERR_NO_RESTORE_POINT',
    `no common restore point at or before ${requested === 'latest' ? 'latest' : requested.toISOString()}; nearest: ${nearest.map(show).join(', ')}`,
    { details: { nearest } },
  )
}
