/**
 * The order in which a restore replays a catalog. The rule that shapes it: a
 * materialized view must not exist while its source tables are being loaded,
 * or restored rows would be aggregated a second time into a target that is
 * itself restored. So:
 *
 *   1. databases;
 *   2. storage tables (not MV inner tables), then their data;
 *   3. views, materialized views, dictionaries and DDL-only engines, in
 *      dependency order; right after an MV that owns an inner table, that
 *      inner table's data (the MV's DDL creates the table; loading it directly
 *      does not trigger the MV, and anything reading it comes later);
 *   4. Distributed tables last.
 */
import { tableKey, type Catalog, type TableInfo, type TableKind } from './catalog.ts'

/** One action of a restore, in order. `table` is a `db.name` key of the catalog. */
export type RestoreStep =
  | { step: 'database'; database: string }
  | { step: 'create'; table: string; kind: TableKind }
  | { step: 'data'; table: string }

const keyOf = (t: TableInfo) => tableKey(t.database, t.name)

/** Orders `tables` so each comes after what it depends on (within the list); ties and cycles fall back to name order. */
function topological(tables: TableInfo[], alias: Map<string, string>): TableInfo[] {
  const byKey = new Map(tables.map((t) => [keyOf(t), t]))
  const pending = new Map(tables.map((t) => [keyOf(t), new Set(t.dependsOn.map((d) => alias.get(d) ?? d).filter((d) => byKey.has(d) && d !== keyOf(t)))]))
  const out: TableInfo[] = []
  while (pending.size > 0) {
    const ready = [...pending].filter(([, deps]) => deps.size === 0).map(([k]) => k).sort()
    // A cycle cannot be satisfied: take the first remaining one by name and go on.
    const next = ready[0] ?? [...pending.keys()].sort()[0] as string
    pending.delete(next)
    for (const deps of pending.values()) deps.delete(next)
    out.push(byKey.get(next) as TableInfo)
  }
  return out
}

/** The full sequence of restore steps for a catalog (pure; table-driven tests). */
export function restoreOrder(catalog: Pick<Catalog, 'databases' | 'tables'>): RestoreStep[] {
  const steps: RestoreStep[] = [...catalog.databases].map((d) => d.name).sort().map((database) => ({ step: 'database' as const, database }))
  const sorted = [...catalog.tables].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0))
  const storage = sorted.filter((t) => t.kind === 'table' && t.innerOf === undefined)
  const inner = new Map(sorted.filter((t) => t.innerOf !== undefined).map((t) => [t.innerOf as string, t]))
  // Depending on an inner table means depending on the MV that creates it.
  const alias = new Map([...inner].map(([mv, t]) => [keyOf(t), mv]))
  for (const t of storage) steps.push({ step: 'create', table: keyOf(t), kind: t.kind })
  for (const t of storage) if (t.hasData) steps.push({ step: 'data', table: keyOf(t) })
  const deferred = sorted.filter((t) => t.kind !== 'table' && t.kind !== 'distributed')
  for (const t of topological(deferred, alias)) {
    steps.push({ step: 'create', table: keyOf(t), kind: t.kind })
    const own = inner.get(keyOf(t))
    if (own?.hasData) steps.push({ step: 'data', table: keyOf(own) })
  }
  for (const t of topological(sorted.filter((t) => t.kind === 'distributed'), alias)) steps.push({ step: 'create', table: keyOf(t), kind: t.kind })
  return steps
}
