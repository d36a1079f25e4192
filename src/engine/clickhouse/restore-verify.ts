/**
 * The check at the end of a restore: every restored table's row count and
 * content digest against what the manifest says it must hold (plus what the
 * table held before, when the operator allowed a non-empty target).
 */
import type { ClickHouseDriver } from './driver.ts'
import { measure, type Measured } from './export-unit.ts'
import { combineDigests } from './manifest.ts'
import type { PlannedTable } from './restore-plan.ts'

/** The outcome for one table. */
export interface TableCheck {
  table: string
  /** `db.name` in the backup. */
  source: string
  expectedRows: number
  rows: number
  expectedDigest: string | null
  /** Null when not measured (nothing to compare it with). */
  digest: string | null
  /**
   * ok — rows and (when comparable) digest match;
   * merged — fewer rows than expected in an engine that merges rows in the background (Replacing, Summing, …): expected after merges, not an error;
   * mismatch — anything else.
   */
  status: 'ok' | 'merged' | 'mismatch'
  /** False when the digest could not be compared (an object without digest, or another server version). */
  digestCompared: boolean
}

const MERGING = /(Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite)MergeTree$/

/** Compares a measured table with its expectation (pure). */
export function judge(
  planned: Pick<PlannedTable, 'source' | 'info'>,
  expected: { rows: number; digest: string | null },
  measured: { rows: number; digest: string | null },
  sameVersion: boolean,
): TableCheck {
  const digestCompared = sameVersion && expected.digest !== null
  const rowsOk = measured.rows === expected.rows
  const digestOk = !digestCompared || measured.digest === expected.digest
  const merged = !rowsOk && measured.rows < expected.rows && MERGING.test(planned.info.engine)
  return {
    table: `${planned.info.database}.${planned.info.name}`,
    source: planned.source,
    expectedRows: expected.rows,
    rows: measured.rows,
    expectedDigest: expected.digest,
    digest: measured.digest,
    status: rowsOk && digestOk ? 'ok' : merged ? 'merged' : 'mismatch',
    digestCompared,
  }
}

/** Measures every restored table with data and judges it; `before` holds what pre-existing tables held. */
export async function verifyTables(
  driver: ClickHouseDriver,
  tables: readonly PlannedTable[],
  before: ReadonlyMap<string, Measured>,
  sameVersion: boolean,
  signal?: AbortSignal,
): Promise<TableCheck[]> {
  const out: TableCheck[] = []
  for (const p of tables.filter((t) => t.info.hasData)) {
    const key = `${p.info.database}.${p.info.name}`
    const base = before.get(key)
    const expected = base ? combineDigests([p.expected, base]) : p.expected
    // A digest reads every restored row again: only when there is one to compare with.
    out.push(judge(p, expected, await measure(driver, p.info, undefined, sameVersion && expected.digest !== null, signal), sameVersion))
  }
  return out
}

/** What the tables of `keys` that already hold rows hold, measured as verifyTables will need it. */
export async function measureExisting(driver: ClickHouseDriver, tables: ReadonlyMap<string, PlannedTable>, existing: Iterable<[string, { rows: number }]>, signal?: AbortSignal): Promise<Map<string, Measured>> {
  const before = new Map<string, Measured>()
  for (const [key, e] of existing) {
    const p = tables.get(key) as PlannedTable
    if (e.rows > 0) before.set(key, await measure(driver, p.info, undefined, p.expected.digest !== null, signal))
  }
  return before
}
