/**
 * Looking at the target server before a restore changes anything: which of
 * the planned databases and objects exist already, how many rows the
 * existing tables hold, and which existing materialized views would receive
 * the restored rows a second time. `conflicts` (pure) turns that into the
 * reasons to refuse without --allow-non-empty.
 */
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
