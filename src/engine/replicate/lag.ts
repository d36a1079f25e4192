/**
 * Replication lag of a target, for metrics: how long the oldest backup it lacks has
 * been waiting (seconds since that backup ended; 0 when it lacks none) and how many
 * bytes are still to copy. The age of the oldest missing backup is what grows while
 * replication is stuck; the newest's would stay small as new backups keep coming.
 * Never throws: an unreachable or misconfigured target is reported as an error.
 */
import { asTidemarkError, type ErrorCode } from '../../errors.ts'
import type { Repository } from '../repository/index.ts'
import { lagOf } from './plan.ts'
import { survey } from './survey.ts'
import { ensureReplica, type ReplicaTarget } from './target.ts'

export type ReplicationLag =
  | { target: string; ok: true; seconds: number; bytes: number; backups: number }
  | { target: string; ok: false; error: { code: ErrorCode; message: string } }

/** The lag of `target` behind `primary` at `now` (default: the primary's clock). Reads only. */
export async function replicationLag(primary: Repository, target: ReplicaTarget, now: Date = primary.clock.now()): Promise<ReplicationLag> {
  try {
    await ensureReplica(primary, target.sink, { create: false })
    const s = await survey(primary, target.sink, target.policy, now)
    return { target: target.name, ok: true, ...lagOf(s.plan, now) }
  } catch (err) {
    const e = asTidemarkError(err)
    return { target: target.name, ok: false, error: { code: e.code, message: `secondary ${target.name} (${target.sink.description}): ${e.message}` } }
  }
}
