/**
 * The partition fingerprint: a short string computed from a partition's active
 * parts (system.parts) and the table's columns. Equal fingerprints mean the
 * partition's content has not changed, so the object of an earlier backup is
 * referenced again. It must not change when parts merge, and must change when
 * the content does. Why each case holds is written down in FINGERPRINT.md;
 * keep the two in step.
 *
 * Components, all invariant under an ordinary merge:
 *   - the lowest min_block_number and highest max_block_number of the active
 *     parts: a merge covers exactly its inputs' span; every insert, ATTACH or
 *     REPLACE gets a block number above all existing ones;
 *   - the total row count: a merge that drops rows (Replacing, Collapsing,
 *     Summing, Aggregating, TTL) changes the content, and does change this;
 *   - the highest mutation version among the parts (a part's data_version when
 *     it differs from its min block, else 0): every mutation gives the parts it
 *     covers a new, higher version, and a merge keeps the highest of its
 *     inputs. Not max(data_version): merging an unmutated newer part into a
 *     mutated one lowers that;
 *   - a hash of the column list (name, type, default kind and expression):
 *     ADD/DROP/MODIFY/RENAME COLUMN, and a new DEFAULT that changes what
 *     `SELECT *` returns for old parts.
 *
 * Not the set of block ranges: in a non-replicated table block numbers are
 * shared by all partitions, so a partition's parts leave gaps that a merge
 * closes (parts 1_1 and 3_3 merge into 1_3).
 */
import { createHash } from 'node:crypto'
import type { ColumnInfo } from './catalog.ts'

/** One active part, as read from system.parts (block numbers and versions as decimal strings or numbers). */
export interface PartRow {
  name: string
  rows: number | string
  minBlock: number | string
  maxBlock: number | string
  dataVersion: number | string
}

/** The decoded components of a fingerprint. */
export interface PartitionState {
  minBlock: bigint
  maxBlock: bigint
  rows: bigint
  mutation: bigint
  columns: string
}

const VERSION = 'f1'

/** 16 hex digits identifying the column list; order matters (it is the order of `SELECT *`). */
export function columnsHash(columns: readonly ColumnInfo[]): string {
  const canonical = JSON.stringify(columns.map((c) => [c.name, c.type, c.defaultKind, c.defaultExpression]))
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16)
}

/** The state of one partition from its active parts; throws on an empty list (a partition without parts does not exist). */
export function partitionState(parts: readonly PartRow[], columns: readonly ColumnInfo[]): PartitionState {
  if (parts.length === 0) throw new Error('partitionState: a partition has at least one active part')
  let minBlock: bigint | undefined
  let maxBlock: bigint | undefined
  let rows = 0n
  let mutation = 0n
  for (const p of parts) {
    const lo = BigInt(p.minBlock)
    const hi = BigInt(p.maxBlock)
    const version = BigInt(p.dataVersion)
    minBlock = minBlock === undefined || lo < minBlock ? lo : minBlock
    maxBlock = maxBlock === undefined || hi > maxBlock ? hi : maxBlock
    rows += BigInt(p.rows)
    // data_version is the mutation version for a mutated part and the min block otherwise.
    if (version !== lo && version > mutation) mutation = version
  }
  return { minBlock: minBlock as bigint, maxBlock: maxBlock as bigint, rows, mutation, columns: columnsHash(columns) }
}

/** Encodes a state as `f1-b<min>-<max>-r<rows>-m<mutation>-c<columns>` (safe in object names). */
export function encodeFingerprint(s: PartitionState): string {
  return `${VERSION}-b${s.minBlock}-${s.maxBlock}-r${s.rows}-m${s.mutation}-c${s.columns}`
}

/** The fingerprint of a partition: see the module comment for what it covers. */
export function fingerprint(parts: readonly PartRow[], columns: readonly ColumnInfo[]): string {
  return encodeFingerprint(partitionState(parts, columns))
}

/** Decodes a fingerprint; undefined for another format version or garbage (treat as "changed"). */
export function decodeFingerprint(fp: string): PartitionState | undefined {
  const m = /^f1-b(\d+)-(\d+)-r(\d+)-m(\d+)-c([0-9a-f]{16})$/.exec(fp)
  if (!m) return undefined
  return { minBlock: BigInt(m[1] as string), maxBlock: BigInt(m[2] as string), rows: BigInt(m[3] as string), mutation: BigInt(m[4] as string), columns: m[5] as string }
}

/**
 * How a partition compares with its last backed-up state:
 * 'same' — reuse the earlier object;
 * 'mutated' — only the mutation version moved: a mutation ran over the
 *   partition but may not have touched its rows (servers version every part a
 *   mutation covers, touched or not); compare a content digest before
 *   re-exporting;
 * 'changed' — export again.
 */
export function compareFingerprints(previous: string | undefined, current: string): 'same' | 'mutated' | 'changed' {
  if (previous === current) return 'same'
  const a = previous === undefined ? undefined : decodeFingerprint(previous)
  const b = decodeFingerprint(current)
  if (!a || !b) return 'changed'
  const sameData = a.minBlock === b.minBlock && a.maxBlock === b.maxBlock && a.rows === b.rows && a.columns === b.columns
  return sameData && b.mutation > a.mutation ? 'mutated' : 'changed'
}

/** The parts added to a partition since a backup, when that is all that happened (see appendedParts). */
export interface Appended {
  /** Names of the parts above `afterBlock`: the rows to add to the kept objects. */
  parts: string[]
  rows: number
  /** The block the kept objects end at. */
  afterBlock: string
  /** How many of the earlier objects (in order) hold the rows up to `afterBlock`. */
  keep: number
}

/** Where the earlier objects of a partition end: after object i, every block up to `block` is held, `rows` rows in all. */
export interface Boundary {
  block: bigint
  rows: bigint
}

/**
 * What was added to a partition since a state `previous` was backed up, when nothing else
 * happened (pure). The earlier objects end at `boundaries` (the last one at the previous
 * state's highest block). Required: the columns, the lowest block and the mutation version
 * are unchanged, and at some boundary every active part lies wholly at or below it or
 * wholly above it, and the parts at or below it hold exactly the rows the objects up to it
 * hold. Then those parts hold what those objects hold (the same argument as for an
 * unchanged fingerprint), and the parts above it are the rest. The highest such boundary
 * is taken; a background merge across the last one falls back to an earlier one.
 * Undefined otherwise: rows removed by a deduplicating merge or TTL, a mutation, a new
 * column, or nothing new.
 */
export function appendedParts(previous: string, current: string, parts: readonly PartRow[], boundaries: readonly Boundary[]): Appended | undefined {
  const a = decodeFingerprint(previous)
  const b = decodeFingerprint(current)
  if (!a || !b || a.minBlock !== b.minBlock || a.mutation !== b.mutation || a.columns !== b.columns || b.maxBlock <= a.maxBlock) return undefined
  for (let k = boundaries.length - 1; k >= 0; k--) {
    const edge = boundaries[k] as Boundary
    const added: PartRow[] = []
    let below = 0n
    let clean = true
    for (const p of parts) {
      if (BigInt(p.maxBlock) <= edge.block) below += BigInt(p.rows)
      else if (BigInt(p.minBlock) > edge.block) added.push(p)
      else clean = false
    }
    if (clean && below === edge.rows && added.length > 0) {
      return { parts: added.map((p) => p.name).sort(), rows: added.reduce((n, p) => n + Number(p.rows), 0), afterBlock: String(edge.block), keep: k + 1 }
    }
  }
  return undefined
}
