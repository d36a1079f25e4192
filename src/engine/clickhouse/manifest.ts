/**
 * The manifest of a ClickHouse logical backup, as stored in
 * `manifests/clickhouse/<id>.json` (FORMAT.md, "ClickHouse logical"). Plain
 * JSON-serialisable data: restore plans from it without asking a server.
 */
import { tableKey, type DatabaseInfo, type TableInfo } from './catalog.ts'
import type { ManifestBase, ObjectRef } from '../repository/index.ts'

/** The `method` of every manifest this module describes. */
export const CH_LOGICAL_METHOD = 'clickhouse-logical'

/**
 * One stored object: the rows of one partition of a MergeTree table, or of a
 * whole non-MergeTree storage table (partition id `all`), in Native format.
 * The ObjectRef fields say how it is stored; the others what it holds.
 */
export interface ChObject extends ObjectRef {
  database: string
  table: string
  /** `system.parts.partition_id`; `all` for unpartitioned and non-MergeTree tables. */
  partitionId: string
  /** Rows in the object (count() over exactly the exported parts). */
  rows: number
  /** Column names, in the order of the Native data (what the INSERT lists). */
  columns: string[]
  /**
   * The fingerprint of the partition when this backup recorded it: `f1-…`
   * (fingerprint.ts) for a partition, `t1-…` (unit-fingerprint.ts) for a whole table.
   */
  fingerprint: string
  /** `sum(cityHash64(…))` of the rows in the object (export-sql.ts digestSql), as a decimal string; null when unknown. */
  digest: string | null
  /**
   * Which incarnation of the table the object came from (table-identity.ts): a
   * table dropped and created again restarts its block numbers, so its
   * fingerprints could repeat with other content; reuse requires this to match.
   */
  tableIdentity: string
  /** The backup that wrote the object (part of its key); later backups that reuse it keep this. */
  writtenBy: string
  /**
   * Present on a delta: an object holding only the parts added to its partition above
   * this block number (decimal) since an earlier backup. A partition's rows are those of
   * all its objects in the manifest together; they are loaded as one unit.
   */
  afterBlock?: string
}

/** Figures of one backup (also what `tidemark backup clickhouse` prints). */
export interface ChBackupStats {
  /** Units in the backup: partitions of MergeTree tables plus non-empty other storage tables. */
  partitionsTotal: number
  /** Exported in this backup: whole, or as a delta (the parts added since the previous backup). */
  partitionsExported: number
  /** Of the exported ones: how many as a delta. */
  partitionsAppended: number
  partitionsReused: number
  /** Of the reused ones: how many needed a content digest first (fingerprint moved by a mutation only). */
  partitionsReusedByDigest: number
  /** Of the reused ones: how many after mutations that were all DELETEs removing nothing (mutations.ts); absent in manifests written before it existed. */
  partitionsReusedAfterDeletes?: number
  rows: number
  /** Raw (Native) and stored bytes of every object the backup references. */
  rawBytes: number
  storedBytes: number
  /** Raw and stored bytes written by this backup. */
  exportedRawBytes: number
  exportedStoredBytes: number
  durationMs: number
}

/** A committed ClickHouse logical backup. */
export interface ClickHouseManifest extends ManifestBase {
  source: 'clickhouse'
  method: typeof CH_LOGICAL_METHOD
  /** True when every unit was exported again (`--full`), nothing reused. */
  full: boolean
  /** `version()` of the server backed up. */
  serverVersion: string
  /** Server endpoint (host:port) backed up, for people. */
  endpoint: string
  /** Every database and object selected, with its DDL, engine, columns and dependencies. */
  catalog: { databases: DatabaseInfo[]; tables: TableInfo[] }
  objects: ChObject[]
  stats: ChBackupStats
}

/** True for a reference written by this module (manifests and journals also hold plain ObjectRefs of other sources). */
export function isChObject(ref: ObjectRef): ref is ChObject {
  const o = ref as Partial<ChObject>
  return typeof o.database === 'string' && typeof o.table === 'string' && typeof o.partitionId === 'string' && typeof o.fingerprint === 'string' && typeof o.tableIdentity === 'string' && Array.isArray(o.columns)
}

/** True when a parsed manifest is a ClickHouse logical one this code can restore. */
export function isClickHouseManifest(m: ManifestBase): m is ClickHouseManifest {
  return m.source === 'clickhouse' && m.method === CH_LOGICAL_METHOD && typeof (m as Partial<ClickHouseManifest>).catalog === 'object'
}

/** The `db.table` key of an object. */
export function objectTable(o: Pick<ChObject, 'database' | 'table'>): string {
  return tableKey(o.database, o.table)
}

const U64 = 1n << 64n

/** Row count and digest of a set of objects taken together: digests are sums mod 2^64, so they add. Digest null if any part is unknown. */
export function combineDigests(parts: readonly { rows: number; digest: string | null }[]): { rows: number; digest: string | null } {
  let rows = 0
  let digest: bigint | null = 0n
  for (const p of parts) {
    rows += p.rows
    digest = digest === null || p.digest === null ? null : (digest + BigInt(p.digest)) % U64
  }
  return { rows, digest: digest === null ? null : digest.toString() }
}
