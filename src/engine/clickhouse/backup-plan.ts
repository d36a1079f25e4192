/**
 * The incremental decision of a ClickHouse logical backup, as pure functions:
 * from what the server holds now (units with fingerprints) and what earlier
 * backups stored (their manifest entries), which units are reused, which are
 * exported, and which need a content digest before deciding.
 *
 * Reuse is looked up by (database, table, partition id) and then fingerprint
 * (or, after a mutation moved only the mutation version, by digest); never by
 * finding an object key.
 */
import { storedColumns, type TableInfo } from './catalog.ts'
import { appendedParts, columnsHash, compareFingerprints, decodeFingerprint, type Appended, type Boundary, type PartRow } from './fingerprint.ts'
import { combineDigests, type ChObject } from './manifest.ts'
import type { PartitionSnapshot } from './partitions.ts'
import type { EarlierSet } from './previous.ts'

/** One unit of backup as the server holds it now. */
export interface BackupUnit {
  database: string
  table: string
  partitionId: string
  /** Partition value as the server prints it (messages only). */
  partition: string
  kind: 'partition' | 'table'
  /** The table's incarnation (table-identity.ts); objects of another incarnation are never reused. */
  tableIdentity: string
  fingerprint: string
  rows: number
  /** Estimated raw bytes (progress and scheduling only). */
  bytes: number
  /** Partition units: the active parts the fingerprint was computed from. */
  parts?: string[]
  /** Partition units: those parts with rows and block numbers. */
  partRows?: PartRow[]
  /** Table units: the digest measured before planning (part of the fingerprint). */
  digest?: string
}

/**
 * Why a set is reused: its fingerprint is the unit's; or only the mutation version moved
 * and a content digest matched, or every mutation since was a DELETE that removed
 * nothing (mutations.ts).
 */
export type ReuseProof = 'fingerprint' | 'digest' | 'deletes'

/** What to do with one unit. `append`: reuse `base` and export only the parts added since (a delta object). */
export type PlannedUnit =
  | { action: 'reuse'; unit: BackupUnit; set: EarlierSet; proof: ReuseProof }
  | { action: 'check'; unit: BackupUnit; candidates: EarlierSet[] }
  | { action: 'append'; unit: BackupUnit; base: EarlierSet; added: Appended }
  | { action: 'export'; unit: BackupUnit; reason: 'new' | 'changed' | 'full' }

/**
 * Deltas a partition may have before it is exported whole again: each one is another
 * object to read on restore, and a whole export folds them into one.
 */
export const MAX_DELTAS = 8

/** The units of a MergeTree table: one per partition. */
export function partitionUnits(table: Pick<TableInfo, 'database' | 'name'>, tableIdentity: string, partitions: readonly PartitionSnapshot[]): BackupUnit[] {
  return partitions.map((p) => ({
    database: table.database,
    table: table.name,
    tableIdentity,
    partitionId: p.partitionId,
    partition: p.partition,
    kind: 'partition' as const,
    fingerprint: p.fingerprint,
    rows: p.rows,
    bytes: p.bytes,
    parts: [...p.parts],
    partRows: [...p.partRows],
  }))
}

/**
 * The fingerprint of a whole non-MergeTree table: its row count, column list
 * and content digest (such tables have no parts to fingerprint, so the digest
 * decides reuse). `t1-r<rows>-c<columns>-d<digest>`.
 */
export function tableUnitFingerprint(rows: number, digest: string, columns: TableInfo['columns']): string {
  return `t1-r${rows}-c${columnsHash(columns)}-d${digest}`
}

/** The unit of a non-MergeTree storage table measured as `rows`/`digest`; none when it is empty (nothing to store). */
export function tableUnit(table: TableInfo, tableIdentity: string, measured: { rows: number; digest: string }): BackupUnit | undefined {
  if (measured.rows === 0) return undefined
  return {
    database: table.database,
    table: table.name,
    tableIdentity,
    partitionId: 'all',
    partition: 'tuple()',
    kind: 'table',
    fingerprint: tableUnitFingerprint(measured.rows, measured.digest, table.columns),
    rows: measured.rows,
    bytes: 0,
    digest: measured.digest,
  }
}

const unitKey = (o: Pick<BackupUnit, 'database' | 'table' | 'partitionId' | 'tableIdentity'>) => [o.database, o.table, o.partitionId, o.tableIdentity].join('\0')

/** Rows and digest of a set's objects together. */
function setContent(set: EarlierSet): { rows: number; digest: string | null } {
  return combineDigests(set.objects.map((o) => ({ rows: o.rows, digest: o.digest })))
}

/**
 * Decides each unit, given the earlier sets newest first: `full` exports everything;
 * otherwise a set with the same fingerprint is reused; a committed set the partition
 * only gained parts since (appendedParts), with fewer than MAX_DELTAS deltas, gets a
 * delta (bestAppend); sets whose fingerprint differs only by a later
 * mutation version make the unit a `check` (resolveCheck); anything else is exported.
 */
export function planBackup(units: readonly BackupUnit[], previous: readonly EarlierSet[], opts: { full: boolean }): PlannedUnit[] {
  const byUnit = new Map<string, EarlierSet[]>()
  for (const set of previous) {
    const k = unitKey(set.objects[0] as ChObject)
    byUnit.set(k, [...(byUnit.get(k) ?? []), set])
  }
  return units.map((unit): PlannedUnit => {
    if (opts.full) return { action: 'export', unit, reason: 'full' }
    const earlier = byUnit.get(unitKey(unit)) ?? []
    const same = earlier.find((set) => set.fingerprint === unit.fingerprint)
    if (same) return { action: 'reuse', unit, set: same, proof: 'fingerprint' }
    if (unit.kind !== 'partition') return { action: 'export', unit, reason: earlier.length > 0 ? 'changed' : 'new' }
    const append = bestAppend(earlier, unit)
    if (append) return { action: 'append', unit, ...append }
    const candidates = earlier.filter((set) => compareFingerprints(set.fingerprint, unit.fingerprint) === 'mutated')
    if (candidates.length > 0) return { action: 'check', unit, candidates }
    return { action: 'export', unit, reason: earlier.length > 0 ? 'changed' : 'new' }
  })
}

/**
 * Where a set's objects end, in order: each object up to the block where the next (a
 * delta) starts, the last one at the set's highest block. Undefined for a set this code
 * did not write in order (no fingerprint to read, or deltas out of order).
 */
export function boundariesOf(set: EarlierSet): Boundary[] | undefined {
  const state = decodeFingerprint(set.fingerprint)
  if (!state) return undefined
  const out: Boundary[] = []
  let rows = 0n
  for (let i = 0; i < set.objects.length; i++) {
    rows += BigInt((set.objects[i] as ChObject).rows)
    const next = set.objects[i + 1]?.afterBlock
    const block = next === undefined ? state.maxBlock : BigInt(next)
    if (out.length > 0 && block <= (out.at(-1) as Boundary).block) return undefined
    out.push({ block, rows })
  }
  return out
}

/**
 * The set to add a delta to: of the committed sets the partition only gained parts since,
 * the one needing the smallest delta (highest boundary). Backups of one second are not
 * ordered by id, hence no "newest first" here. A set with MAX_DELTAS deltas gets no more
 * unless the delta replaces some of them.
 */
function bestAppend(earlier: readonly EarlierSet[], unit: BackupUnit): { base: EarlierSet; added: Appended } | undefined {
  let best: { base: EarlierSet; added: Appended } | undefined
  for (const set of earlier) {
    const edges = set.fromJournal || !unit.partRows ? undefined : boundariesOf(set)
    const added = edges && appendedParts(set.fingerprint, unit.fingerprint, unit.partRows as PartRow[], edges)
    if (!added || added.keep > MAX_DELTAS) continue
    if (!best || BigInt(added.afterBlock) > BigInt(best.added.afterBlock)) best = { base: { ...set, objects: set.objects.slice(0, added.keep) }, added }
  }
  return best
}

/** The candidates of a `check` that recorded a content digest (only those can be compared with a measured one). */
export function withDigest(planned: Extract<PlannedUnit, { action: 'check' }>): EarlierSet[] {
  return planned.candidates.filter((set) => setContent(set).digest !== null)
}

/**
 * After a `check`: reuse a candidate every mutation since which was a DELETE (`deletesOnly`,
 * mutations.ts, given the candidate's lowest block and the unit's mutation version), else
 * one whose content equals the `measured` digest, else export.
 */
export function resolveCheck(
  planned: Extract<PlannedUnit, { action: 'check' }>,
  proofs: { deletesOnly?: (minBlock: bigint, upTo: bigint) => boolean; measured?: { rows: number; digest: string } | undefined },
): PlannedUnit {
  const now = decodeFingerprint(planned.unit.fingerprint)
  const { deletesOnly, measured } = proofs
  const deletes = now && deletesOnly && planned.candidates.find((set) => {
    const was = decodeFingerprint(set.fingerprint)
    return was !== undefined && deletesOnly(was.minBlock, now.mutation)
  })
  if (deletes) return { action: 'reuse', unit: planned.unit, set: deletes, proof: 'deletes' }
  const match = measured && withDigest(planned).find((set) => {
    const c = setContent(set)
    return c.digest === measured.digest && c.rows === measured.rows
  })
  if (match) return { action: 'reuse', unit: planned.unit, set: match, proof: 'digest' }
  return { action: 'export', unit: planned.unit, reason: 'changed' }
}

/** The manifest entry of a reused object: the same stored object, recorded with the unit's current fingerprint. */
export function reusedEntry(object: ChObject, unit: BackupUnit): ChObject {
  return { ...object, fingerprint: unit.fingerprint }
}

/** Column names of a table's Native export, in order. */
export function exportColumnNames(table: Pick<TableInfo, 'columns'>): string[] {
  return storedColumns(table).map((c) => c.name)
}
