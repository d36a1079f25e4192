/**
 * Cross-region copies: a secondary repository is a copy of the primary (same
 * config.json, same key, same backup ids), kept up to date by `replicate`: for each
 * backup the secondary lacks, every object its manifest references that the
 * secondary lacks is copied (streamed, in parallel, checked by size and sha256 on
 * arrival, server-side when both live in the same bucket), then the manifest, last.
 * The secondary's writer lease is held while writing to it. The primary is only read.
 * Each run also copies the continuous WAL archive (replicatePrefix), so that a
 * secondary restores PostgreSQL past its newest base backup's end.
 */
import { TidemarkError, asTidemarkError } from '../errors.ts'
import type { RetryOptions } from '../sinks/retry.ts'
import type { Clock } from './clock.ts'
import { acquireLease } from './repository/lease.ts'
import type { Repository } from './repository/index.ts'
import { executePlan, type CopyTotals } from './replicate/execute.ts'
import type { PrefixResult } from './replicate/prefix.ts'
import { copyWal } from './replicate/wal-copy.ts'
import { survey } from './replicate/survey.ts'
import { ensureReplica, type ReplicaTarget } from './replicate/target.ts'

export { replicatePrefix, prefixToCopy, type PrefixOptions, type PrefixResult } from './replicate/prefix.ts'
export { replicationLag, type ReplicationLag } from './replicate/lag.ts'
export { ensureReplica, type ReplicaTarget } from './replicate/target.ts'
export { sameStoreCopier, type ServerCopier, type StoreLocation } from './replicate/same-store.ts'
export { planReplication, lagOf, type ReplicationPlan } from './replicate/plan.ts'
export type { CopyTotals } from './replicate/execute.ts'

export interface ReplicateOptions {
  /** Objects copied at once (default 8). */
  parallelism?: number
  /** Default: the primary's clock. */
  clock?: Clock
  /** The secondary's lease time to live (default 60 s). */
  leaseTtlMs?: number
  signal?: AbortSignal
  retry?: Partial<RetryOptions>
  onProgress?: (t: Readonly<CopyTotals>) => void
}

/** What one run did. `objectsPresent` were already at the secondary and not sent again. */
export interface ReplicationResult extends CopyTotals {
  target: string
  /** The secondary was empty and was initialised as a copy of the primary. */
  created: boolean
  objectsPresent: number
  bytesPresent: number
  /** Backups not copied because the secondary's own policy would prune them at once. */
  skippedByPolicy: string[]
  /** The WAL archive's copy (counted apart from the backups' objects). */
  wal: PrefixResult
}


/** Runs `fn` and rewrites any error so it names the secondary, keeping its code. */
async function naming<T>(target: ReplicaTarget, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    const e = asTidemarkError(err)
    throw new TidemarkError(e.code, `secondary ${target.name} (${target.sink.description}): ${e.message}`, { cause: err, details: { ...e.details, secondary: target.name } })
  }
}

/**
 * Brings `target` up to date with `primary`. Idempotent and resumable: objects and
 * backups already there are not sent again. TM_ERR_REPO_LOCKED when another writer
 * holds the secondary's lease; TM_ERR_INTEGRITY (naming the key) when an object does
 * not match its manifest; errors name the secondary and keep their code.
 */
export function replicate(primary: Repository, target: ReplicaTarget, opts: ReplicateOptions = {}): Promise<ReplicationResult> {
  return naming(target, async () => {
    if (target.sink.description === primary.sink.description) throw new TidemarkError('TM_ERR_USAGE', 'the secondary is the primary repository itself')
    const clock = opts.clock ?? primary.clock
    const { created } = await ensureReplica(primary, target.sink)
    const lease = await acquireLease(target.sink, { clock, ttlMs: opts.leaseTtlMs ?? 60_000, purpose: `replicate from ${primary.sink.description}` })
    try {
      const signal = opts.signal ? AbortSignal.any([opts.signal, lease.signal]) : lease.signal
      const s = await survey(primary, target.sink, target.policy, clock.now())
      const totals = await executePlan(primary, target.sink, s, {
        parallelism: opts.parallelism ?? 8,
        signal,
        retry: opts.retry,
        serverCopy: target.serverCopy,
        onProgress: opts.onProgress,
      })
      // After the backups: a base backup's own WAL is among its objects; this adds what came since.
      const wal = await copyWal(primary, target, { parallelism: opts.parallelism, signal, retry: opts.retry })
      return { target: target.name, created, ...totals, objectsPresent: s.plan.present, bytesPresent: s.plan.presentBytes, skippedByPolicy: s.skippedByPolicy, wal }
    } finally {
      // A lock we cannot delete (secondary gone) expires by itself; the run's own error matters more.
      await lease.release().catch(() => undefined)
    }
  })
}

/** Copies the continuous WAL archive to `target` (no lease: see replicate/prefix.ts), except WAL its own prune would remove; errors name the secondary. */
export function replicateWal(primary: Repository, target: ReplicaTarget, opts: Pick<ReplicateOptions, 'parallelism' | 'signal' | 'retry'> = {}): Promise<PrefixResult> {
  return naming(target, () => copyWal(primary, target, opts))
}
