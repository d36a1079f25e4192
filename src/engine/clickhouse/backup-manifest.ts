/** Assembling a ClickHouse manifest and its statistics from the outcome of each unit (pure). */
import { FORMAT_NAME, FORMAT_VERSION } from '../repository/index.ts'
import type { Catalog } from './catalog.ts'
import { CH_LOGICAL_METHOD, type ChBackupStats, type ChObject, type ClickHouseManifest } from './manifest.ts'

/**
 * How one unit ended up in the backup: its objects (several for a partition with deltas)
 * and, of those, the ones this backup wrote. `appended`: a delta was written, the rest reused.
 */
export interface UnitOutcome {
  objects: ChObject[]
  written: ChObject[]
  how: 'exported' | 'appended' | 'reused' | 'reused-by-digest' | 'reused-after-deletes'
}

/** Everything the manifest says besides the objects. */
export interface ManifestHead {
  id: string
  startedAt: Date
  endedAt: Date
  full: boolean
  endpoint: string
  catalog: Catalog
}

const byUnit = (a: ChObject, b: ChObject) => {
  const ka = [a.database, a.table, a.partitionId].join('\0')
  const kb = [b.database, b.table, b.partitionId].join('\0')
  return ka < kb ? -1 : ka > kb ? 1 : 0
}

/** Statistics of a backup from its outcomes. */
export function backupStats(outcomes: readonly UnitOutcome[], durationMs: number): ChBackupStats {
  const sum = (list: readonly ChObject[], f: (o: ChObject) => number) => list.reduce((n, o) => n + f(o), 0)
  const all = outcomes.flatMap((o) => o.objects)
  const written = outcomes.flatMap((o) => o.written)
  const count = (...how: UnitOutcome['how'][]) => outcomes.filter((o) => how.includes(o.how)).length
  return {
    partitionsTotal: outcomes.length,
    partitionsExported: count('exported', 'appended'),
    partitionsAppended: count('appended'),
    partitionsReused: count('reused', 'reused-by-digest', 'reused-after-deletes'),
    partitionsReusedByDigest: count('reused-by-digest'),
    partitionsReusedAfterDeletes: count('reused-after-deletes'),
    rows: sum(all, (o) => o.rows),
    rawBytes: sum(all, (o) => o.rawSize),
    storedBytes: sum(all, (o) => o.size),
    exportedRawBytes: sum(written, (o) => o.rawSize),
    exportedStoredBytes: sum(written, (o) => o.size),
    durationMs,
  }
}

/** The manifest to commit: objects in (database, table, partition) order. */
export function assembleManifest(head: ManifestHead, outcomes: readonly UnitOutcome[]): ClickHouseManifest {
  return {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    id: head.id,
    source: 'clickhouse',
    method: CH_LOGICAL_METHOD,
    startedAt: head.startedAt.toISOString(),
    endedAt: head.endedAt.toISOString(),
    full: head.full,
    serverVersion: head.catalog.serverVersion,
    endpoint: head.endpoint,
    catalog: { databases: head.catalog.databases, tables: head.catalog.tables },
    objects: outcomes.flatMap((o) => o.objects).sort(byUnit),
    stats: backupStats(outcomes, head.endedAt.getTime() - head.startedAt.getTime()),
  }
}
