/**
 * Carrying out a replication plan: objects copied `parallelism` at a time, and each
 * manifest written as soon as the last object it needs has arrived, never before,
 * so the target never holds a manifest whose data is missing. A run that stops
 * halfway leaves complete objects and complete backups; the next run's survey finds
 * them and sends only the rest.
 */
import { forEachLimit } from '../parallel.ts'
import { manifestKey, type ObjectRef, type Repository } from '../repository/index.ts'
import type { RetryOptions } from '../../sinks/retry.ts'
import type { Sink } from '../../sinks/sink.ts'
import { copyServerSide, copyStreamed } from './copy.ts'
import type { ServerCopier } from './same-store.ts'
import type { Survey } from './survey.ts'

/** Running totals of a run; `onProgress` receives them after every object. */
export interface CopyTotals {
  objectsCopied: number
  bytesCopied: number
  serverSideCopies: number
  manifestsCopied: string[]
}

export interface ExecuteOptions {
  parallelism: number
  signal?: AbortSignal | undefined
  retry?: Partial<RetryOptions> | undefined
  serverCopy?: ServerCopier | undefined
  onProgress?: ((t: Readonly<CopyTotals>) => void) | undefined
}

/** Copies the surveyed plan from `primary` to `target`; on failure, what was done stays done and the first error is thrown. */
export async function executePlan(primary: Repository, target: Sink, s: Survey, opts: ExecuteOptions): Promise<CopyTotals> {
  const totals: CopyTotals = { objectsCopied: 0, bytesCopied: 0, serverSideCopies: 0, manifestsCopied: [] }
  const copying = new Set(s.plan.objects.map((o) => o.key))
  // For each manifest, the objects it still waits for.
  const waiting = new Map(s.plan.manifests.map((m) => [m.id, new Set(m.objects.map((o) => o.key).filter((k) => copying.has(k)))]))
  const waiters = new Map<string, string[]>()
  for (const [id, keys] of waiting) for (const k of keys) waiters.set(k, [...(waiters.get(k) ?? []), id])

  const commit = async (id: string) => {
    const stored = s.manifests.get(id)!
    const key = manifestKey(stored.manifest.source, id)
    await target.put(key, stored.bytes, { contentLength: stored.bytes.length, signal: opts.signal })
    totals.manifestsCopied.push(id)
  }
  // Manifests whose objects are all at the target already.
  for (const [id, keys] of waiting) if (keys.size === 0) await commit(id)

  const copyOne = async (ref: ObjectRef) => {
    const want = { key: ref.key, size: ref.size, sha256: ref.sha256 }
    const bytes = opts.serverCopy ? await copyServerSide(opts.serverCopy, target, want, opts) : await copyStreamed(primary.sink, target, want, opts)
    totals.objectsCopied++
    totals.bytesCopied += bytes
    if (opts.serverCopy) totals.serverSideCopies++
    opts.onProgress?.(totals)
    for (const id of waiters.get(ref.key) ?? []) {
      const rest = waiting.get(id)!
      rest.delete(ref.key)
      if (rest.size === 0) await commit(id)
    }
  }
  await forEachLimit(s.plan.objects, opts.parallelism, copyOne, opts.signal)
  return totals
}
