/**
 * Replication lag of a target, for metrics: how long the oldest thing it lacks has
 * been waiting and how many bytes are still to copy. Backups count from the end of
 * the oldest missing one; the WAL archive from the modification time of the oldest
 * object the target lacks (or holds older) and wants (replicate/wal-copy.ts). The
 * age of the oldest missing item is what grows while replication is stuck; the
 * newest's would stay small as new backups and segments keep coming.
 * Never throws: an unreachable or misconfigured target is reported as an error.
 */
import { asTidemarkError, type ErrorCode } from '../../errors.ts'
import { listAll, type ObjectInfo, type Sink } from '../../sinks/sink.ts'
import { WAL_PREFIX } from '../prune/plan.ts'
import type { Repository } from '../repository/index.ts'
import { lagOf } from './plan.ts'
import { prefixToCopy } from './prefix.ts'
import { survey } from './survey.ts'
import { walWanted } from './wal-copy.ts'
import { ensureReplica, type ReplicaTarget } from './target.ts'

export type ReplicationLag =
  | { target: string; ok: true; seconds: number; bytes: number; backups: number; wal: { objects: number; bytes: number; seconds: number } }
  | { target: string; ok: false; error: { code: ErrorCode; message: string } }

async function listed(sink: Sink, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = []
  for await (const o of listAll(sink, prefix)) out.push(o)
  return out
}

/** The WAL still to copy: objects, bytes, and seconds since the oldest of them was written at the primary (0 when none). Pure. */
export function walLagOf(todo: readonly ObjectInfo[], now: Date): { objects: number; bytes: number; seconds: number } {
  const oldest = todo.reduce<number | undefined>((min, o) => (min === undefined || o.lastModified.getTime() < min ? o.lastModified.getTime() : min), undefined)
  return { objects: todo.length, bytes: todo.reduce((a, o) => a + o.size, 0), seconds: oldest === undefined ? 0 : Math.max(0, Math.floor((now.getTime() - oldest) / 1000)) }
}

/** The lag of `target` behind `primary` at `now` (default: the primary's clock), backups and WAL together. Reads only. */
export async function replicationLag(primary: Repository, target: ReplicaTarget, now: Date = primary.clock.now()): Promise<ReplicationLag> {
  try {
    await ensureReplica(primary, target.sink, { create: false })
    const s = await survey(primary, target.sink, target.policy, now)
    const backups = lagOf(s.plan, now)
    const there = new Map((await listed(target.sink, WAL_PREFIX)).map((o) => [o.key, o]))
    const wanted = await walWanted(target)
    const wal = walLagOf(prefixToCopy((await listed(primary.sink, WAL_PREFIX)).filter((o) => wanted(o.key)), there), now)
    return { target: target.name, ok: true, seconds: Math.max(backups.seconds, wal.seconds), bytes: backups.bytes + wal.bytes, backups: backups.backups, wal }
  } catch (err) {
    const e = asTidemarkError(err)
    return { target: target.name, ok: false, error: { code: e.code, message: `secondary ${target.name} (${target.sink.description}): ${e.message}` } }
  }
}
