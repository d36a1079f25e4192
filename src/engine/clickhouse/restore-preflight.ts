/**
 * Looking at the target server before a restore changes anything: which of
 * the planned databases and objects exist already, how many rows the
 * existing tables hold, and which existing materialized views would receive
 * the restored rows a second time. `conflicts` (pure) turns that into the
 * reasons to refuse without --allow-non-empty. `missingDependencies` refuses a
 * view or materialized view whose source or target table is neither restored
 * nor on the target (a --tables selection that left it out, or a backup taken
 * with such a filter): its CREATE would fail after the data was loaded.
 */
import { TidemarkError } from '../../errors.ts'
import { tableKey } from './catalog.ts'
import { discover } from './discovery.ts'
import type { ClickHouseDriver } from './driver.ts'
import { qualified } from './names.ts'
import type { RestorePlan } from './restore-plan.ts'

/** An object of the plan that the target already has. */
export interface ExistingObject {
  engine: string
  /** Rows it holds (0 for objects without data of their own). */
  rows: number
}

/** What the target holds that matters to the plan. */
export interface TargetState {
  databases: Set<string>
  /** Planned objects (target `db.name`) that exist already. */
  existing: Map<string, ExistingObject>
  /** Existing materialized views (`db.name`) in the target databases, with the tables they read. */
  views: Map<string, string[]>
}

/** A reason to refuse the restore unless the operator allows a non-empty target. */
export interface Conflict {
  table: string
  reason: string
}

/** Reads the target's state for `plan`. Read-only. */
export async function inspectTarget(driver: ClickHouseDriver, plan: RestorePlan, signal?: AbortSignal): Promise<TargetState> {
  const names = plan.databases.map((d) => d.name)
  const rows = await driver.queryRows<{ name: string }>('SELECT name FROM system.databases WHERE has({dbs:Array(String)}, name)', { dbs: names }, { signal })
  const databases = new Set(rows.map((r) => r.name))
  const existing = new Map<string, ExistingObject>()
  const views = new Map<string, string[]>()
  if (databases.size === 0) return { databases, existing, views }
  const escape = (n: string) => n.replace(/[*?]/g, '?')
  const catalog = await discover(driver, { include: [...databases].map(escape), exclude: [] })
  for (const t of catalog.tables) {
    const key = tableKey(t.database, t.name)
    if (t.kind === 'materialized-view') views.set(key, t.dependsOn.filter((d) => d !== t.target))
    if (!plan.tables.has(key)) continue
    let count = 0
    if (t.hasData) {
      const [r] = await driver.queryRows<{ n: string }>(`SELECT count() AS n FROM ${qualified(t.database, t.name)}`, undefined, { signal })
      count = Number(r?.n ?? 0)
    }
    existing.set(key, { engine: t.engine, rows: count })
  }
  return { databases, existing, views }
}

/** Why the restore would not leave the target as the backup describes (pure). */
export function conflicts(plan: RestorePlan, state: TargetState): Conflict[] {
  const out: Conflict[] = []
  for (const [key, e] of state.existing) if (e.rows > 0) out.push({ table: key, reason: `holds ${e.rows} row${e.rows === 1 ? '' : 's'}` })
  const loaded = new Set([...plan.tables].filter(([, p]) => p.objects.length > 0).map(([k]) => k))
  for (const [mv, sources] of state.views) {
    const fed = sources.filter((s) => loaded.has(s))
    if (fed.length > 0) out.push({ table: mv, reason: `is a materialized view over ${fed.join(', ')}: it would receive the restored rows a second time` })
  }
  return out.sort((a, b) => (a.table < b.table ? -1 : 1))
}

/** The tables planned views and materialized views need that the plan does not restore (pure): view → tables. */
export function unplannedDependencies(plan: RestorePlan): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const [key, p] of plan.tables) {
    if (p.info.kind !== 'view' && p.info.kind !== 'materialized-view') continue
    const missing = p.info.dependsOn.filter((d) => d !== key && !plan.tables.has(d))
    if (missing.length > 0) out.set(key, missing)
  }
  return out
}

/**
 * Throws TM_ERR_RESTORE_UNKNOWN_TABLE, before anything is changed, when a planned view or
 * materialized view reads or writes a table that is neither restored nor on the target.
 */
export async function checkDependencies(driver: ClickHouseDriver, plan: RestorePlan, signal?: AbortSignal): Promise<void> {
  const wanted = unplannedDependencies(plan)
  if (wanted.size === 0) return
  const keys = [...new Set([...wanted.values()].flat())].sort()
  const rows = await driver.queryRows<{ k: string }>("SELECT concat(database, '.', name) AS k FROM system.tables WHERE has({keys:Array(String)}, concat(database, '.', name))", { keys }, { signal })
  const present = new Set(rows.map((r) => r.k))
  const lacking = [...wanted].map(([view, deps]) => [view, deps.filter((d) => !present.has(d))] as const).filter(([, deps]) => deps.length > 0)
  if (lacking.length === 0) return
  const what = lacking.map(([view, deps]) => `${view} needs ${deps.join(', ')}`).join('; ')
  throw new TidemarkError(
    'TM_ERR_RESTORE_UNKNOWN_TABLE',
    `views that need tables this restore does not bring and the target does not have (${what}); nothing was changed. Add those tables to --tables (with --rename-db they are renamed too), or restore them first`,
    { details: { missing: Object.fromEntries(lacking) } },
  )
}
