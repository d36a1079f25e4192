/**
 * The manifest of a ClickHouse parts backup (FORMAT.md, "ClickHouse parts"):
 * the logical manifest's shape (catalog, objects per partition with rows,
 * stats) with method `clickhouse-parts`; objects of MergeTree tables are
 * packed part directories (parts-tar.ts) and carry `part`, other storage
 * tables are logical Native objects as in a logical backup.
 */
import { dataKey, type ManifestBase, type ObjectRef } from '../repository/index.ts'
import type { ChObject, ClickHouseManifest } from './manifest.ts'
import { encodeSegment } from './object-keys.ts'

/** The `method` of a parts manifest. */
export const CH_PARTS_METHOD = 'clickhouse-parts'

/**
 * Objects a parts backup stores at once: twice `clickhouse.parallelism`. The logical
 * method's bound is the server's export and insert work; a part is local reads and writes
 * plus a worker's compression, and at `clickhouse.parallelism` parts at once both the main
 * thread and the workers were idle a third of the time, waiting on each object's file and
 * fsync round trips (bench/RESULTS.md, 2026-12-07: a full CLI parts backup of the
 * benchmark dataset, 8 alternating runs, median 1.66 s with 2 parts at once, 1.46 s with
 * 4; 8 were no faster than 4).
 */
export function partsAtOnce(parallelism: number): number {
  return parallelism * 2
}

/**
 * Parts a parts restore writes and attaches at once: four times `clickhouse.parallelism`.
 * A part's restore is mostly waiting: reads, file creations and writes (on this machine's
 * disk the creations cost the kernel far more than the bytes), then an ATTACH of a few
 * ms; more parts in flight keep that work overlapping (bench/RESULTS.md, 2026-12-07:
 * CLI restores of the benchmark dataset, 9 alternating rounds, 8 parts at once faster than
 * 4 in 8 of them, medians 2.66 s against 2.97 s; 16 at once no clearer gain over 8 for
 * 50 MiB more memory).
 */
export function partsRestoredAtOnce(parallelism: number): number {
  return parallelism * 4
}

/** One stored part directory (or, without `part`, a logical object of a non-MergeTree table). */
export interface ChPartObject extends ChObject {
  /** The part's directory name on the server that was backed up (`<partition id>_<min>_<max>_<level>[_<mutation>]`). */
  part?: string
  /** sha256 (hex) of the part's checksums.txt: with the name, what identifies the part's content. */
  checksumsSha256?: string
}

/** Counts of a parts backup besides the ChBackupStats. */
export interface ChPartsStats {
  partsTotal: number
  partsUploaded: number
  partsReused: number
  /** Non-MergeTree tables exported logically in the same backup. */
  logicalTables: number
}

/** A committed ClickHouse parts backup. */
export interface ClickHousePartsManifest extends Omit<ClickHouseManifest, 'method' | 'objects'> {
  method: typeof CH_PARTS_METHOD
  objects: ChPartObject[]
  parts: ChPartsStats
}

/** True when a parsed manifest is a ClickHouse parts one. */
export function isClickHousePartsManifest(m: ManifestBase): m is ClickHousePartsManifest {
  return m.source === 'clickhouse' && m.method === CH_PARTS_METHOD && typeof (m as Partial<ClickHousePartsManifest>).catalog === 'object'
}

/** True for an object that is a packed part (not a logical fallback object). */
export function isPartObject(o: ObjectRef): o is ChPartObject & { part: string } {
  return typeof (o as ChPartObject).part === 'string'
}

/**
 * `data/clickhouse/parts/<db>/<table>/<part>-<first 16 hex of sha256(checksums.txt)>.part`:
 * the same part content always gets the same key, so a part stored once is referenced afterwards.
 */
export function partKey(database: string, table: string, part: string, checksumsSha256: string): string {
  return dataKey('clickhouse', ['parts', encodeSegment(database), encodeSegment(table), `${encodeSegment(part)}-${checksumsSha256.slice(0, 16)}.part`].join('/'))
}

/** The partition id of a part name: ClickHouse names parts `<partition id>_…` and partition ids hold no `_`. */
export function partitionOfPart(part: string): string {
  const i = part.indexOf('_')
  return i < 0 ? part : part.slice(0, i)
}

/** The manifest as the restore planner reads it (it only uses catalog and objects, whatever the method). */
export function asPlannable(m: ClickHousePartsManifest): ClickHouseManifest {
  return m as unknown as ClickHouseManifest
}
