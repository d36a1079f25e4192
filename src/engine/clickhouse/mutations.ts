/**
 * Proof from `system.mutations` that a partition whose fingerprint moved only by
 * its mutation version still holds the rows of an earlier backup, without reading
 * them (FINGERPRINT.md, "Mutations").
 *
 * A server versions every part a mutation covers, whether or not the mutation
 * changed a row of it. When every mutation that can have reached the partition
 * since the earlier backup is an `ALTER … DELETE` (which can only remove rows)
 * and the fingerprint's row count did not change (compareFingerprints says
 * 'mutated' only then), no row was removed: the content is the earlier content.
 * An `UPDATE`, a lightweight delete (a mutation `UPDATE _row_exists = 0 …` on
 * servers that have it) or any other command gives no such proof.
 *
 * "Every mutation" needs the list to be complete: a server forgets the oldest
 * finished mutations beyond `finished_mutations_to_keep`, in order. The list is
 * complete over a range when it never reached that bound, or when it still holds
 * a mutation of the partition at or below the range's start (what is forgotten
 * is always older than what is kept).
 */
import type { ClickHouseDriver } from './driver.ts'
import { quoteString } from './names.ts'

/** One mutation as the server lists it; `blocks` are its block numbers per partition id (`''`: every partition). */
export interface Mutation {
  command: string
  done: boolean
  blocks: { partitionId: string; number: bigint }[]
}

/** A table's mutations, and how many finished ones the server keeps. */
export interface MutationLog {
  mutations: Mutation[]
  /** `finished_mutations_to_keep` of the table; undefined when unknown. */
  keep: number | undefined
}

const DELETE = /^\s*DELETE\s+WHERE\b/i

/** The block number of `m` in `partitionId`, if it covers that partition. */
function numberIn(m: Mutation, partitionId: string): bigint | undefined {
  return m.blocks.find((b) => b.partitionId === '' || b.partitionId === partitionId)?.number
}

/**
 * True when the mutations of `log` that can have reached a partition holding blocks from
 * `minBlock` on, up to the mutation version `upTo`, are all DELETEs, and the log provably
 * lists all of them (see the module comment). Pure.
 */
export function deletesOnly(log: MutationLog, partitionId: string, minBlock: bigint, upTo: bigint): boolean {
  const numbered = log.mutations.flatMap((m) => {
    const number = numberIn(m, partitionId)
    return number === undefined ? [] : [{ m, number }]
  })
  const inRange = numbered.filter((x) => x.number > minBlock && x.number <= upTo)
  if (!inRange.some((x) => x.number === upTo)) return false // the mutation that set the current version must be on record
  if (!inRange.every((x) => DELETE.test(x.m.command))) return false
  const finished = log.mutations.filter((m) => m.done).length
  const neverForgotten = log.keep !== undefined && finished < log.keep
  return neverForgotten || numbered.some((x) => x.number <= minBlock)
}

/** `finished_mutations_to_keep` as set in a table's DDL, else undefined. */
export function keepFromDdl(ddl: string): number | undefined {
  const m = /\bfinished_mutations_to_keep\s*=\s*(\d+)/i.exec(ddl)
  return m ? Number(m[1]) : undefined
}

/** Reads a table's mutations and its `finished_mutations_to_keep` (the DDL's, else the server default). */
export async function readMutationLog(driver: ClickHouseDriver, database: string, table: string, ddl: string, signal?: AbortSignal): Promise<MutationLog> {
  const rows = await driver.queryRows<{ command: string; is_done: number | string; pids: string[]; nums: (string | number)[] }>(
    `SELECT command, is_done, block_numbers.partition_id AS pids, block_numbers.number AS nums FROM system.mutations WHERE database = ${quoteString(database)} AND table = ${quoteString(table)}`,
    undefined,
    { signal },
  )
  let keep = keepFromDdl(ddl)
  if (keep === undefined) {
    const [s] = await driver.queryRows<{ value: string }>("SELECT value FROM system.merge_tree_settings WHERE name = 'finished_mutations_to_keep'", undefined, { signal })
    keep = s && /^\d+$/.test(s.value) ? Number(s.value) : undefined
  }
  const mutations = rows.map((r) => ({
    command: r.command,
    done: Number(r.is_done) === 1,
    blocks: r.pids.map((partitionId, i) => ({ partitionId, number: BigInt(r.nums[i] ?? -1) })),
  }))
  return { mutations, keep }
}
