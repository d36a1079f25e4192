/**
 * Continuous copying of objects written without a manifest (PostgreSQL's WAL
 * archive under `data/postgres/wal/`): every object under a prefix that the target
 * lacks, holds with another size, or holds older than the primary's (an open
 * `.partial` segment is rewritten in place with the same size) is copied.
 *
 * No lease is taken: like the WAL archiver on the primary, this only adds
 * content-named objects, and prune never sweeps the WAL prefix as unreferenced, so
 * it cannot race a prune or a backup. Stores keep modification times to the second
 * and their clocks may differ: a rewrite in the same second as the previous copy (or
 * hidden by the target's clock running ahead) is picked up at the next rewrite, so an
 * object rewritten in place converges, and one that completes under a new name is
 * copied as new.
 */
import { TidemarkError } from '../../errors.ts'
import { listAll, type ObjectInfo } from '../../sinks/sink.ts'
import type { RetryOptions } from '../../sinks/retry.ts'
import { forEachLimit } from '../parallel.ts'
import { DATA_PREFIX, type Repository } from '../repository/index.ts'
import { copyServerSide, copyStreamed } from './copy.ts'
import { ensureReplica, type ReplicaTarget } from './target.ts'

export interface PrefixOptions {
  parallelism?: number | undefined
  /** Only objects for which this is true are considered (e.g. WAL the target's own retention still wants). */
  filter?: ((o: ObjectInfo) => boolean) | undefined
  signal?: AbortSignal | undefined
  retry?: Partial<RetryOptions> | undefined
}

export interface PrefixResult {
  objectsCopied: number
  bytesCopied: number
  objectsPresent: number
}

/** Which primary objects the target needs: absent there, another size, or older there. Pure. */
export function prefixToCopy(primary: readonly ObjectInfo[], target: ReadonlyMap<string, ObjectInfo>): ObjectInfo[] {
  return primary.filter((o) => {
    const t = target.get(o.key)
    return t === undefined || t.size !== o.size || t.lastModified.getTime() < o.lastModified.getTime()
  })
}

async function listed(sink: ReplicaTarget['sink'], prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = []
  for await (const o of listAll(sink, prefix)) out.push(o)
  return out
}

/** Copies every object under `prefix` (inside `data/`) that the target needs; idempotent, safe to run at any time. */
export async function replicatePrefix(primary: Repository, target: ReplicaTarget, prefix: string, opts: PrefixOptions = {}): Promise<PrefixResult> {
  if (!prefix.startsWith(DATA_PREFIX)) throw new TidemarkError('TM_ERR_USAGE', `replicatePrefix copies data objects only: prefix ${JSON.stringify(prefix)} is not under ${DATA_PREFIX}`)
  await ensureReplica(primary, target.sink)
  const source = (await listed(primary.sink, prefix)).filter((o) => opts.filter?.(o) ?? true)
  const there = new Map((await listed(target.sink, prefix)).map((o) => [o.key, o]))
  const todo = prefixToCopy(source, there)
  const result: PrefixResult = { objectsCopied: 0, bytesCopied: 0, objectsPresent: source.length - todo.length }
  await forEachLimit(todo, opts.parallelism ?? 8, async (o) => {
    const want = { key: o.key, size: o.size }
    try {
      const bytes = target.serverCopy ? await copyServerSide(target.serverCopy, target.sink, want, opts) : await copyStreamed(primary.sink, target.sink, want, opts)
      result.bytesCopied += bytes
      result.objectsCopied++
    } catch (err) {
      // Gone since the listing (a `.partial` renamed to its final name): the next run copies what replaced it.
      if (!primary.sink.isNotFound(err)) throw err
    }
  }, opts.signal)
  return result
}
