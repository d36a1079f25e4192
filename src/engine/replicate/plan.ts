/**
 * What a replication run has to do: pure functions from what the primary holds and
 * what the target already has to the list of objects to copy and manifests to write.
 */
import { applyRetention, type RetentionPolicy, type BackupSummary } from '../retention.ts'
import type { ManifestBase, ObjectRef } from '../repository/index.ts'

/** The work of one run. Objects are distinct and in the order the manifests first need them. */
export interface ReplicationPlan {
  /** Manifests to write (oldest first), each after all its objects are at the target. */
  manifests: ManifestBase[]
  /** Objects the target lacks (or holds with another size). */
  objects: ObjectRef[]
  bytes: number
  /** Objects the manifests need that the target already holds with the right size. */
  present: number
  presentBytes: number
}

/**
 * The plan for copying `missing` (primary manifests the target lacks) to a target
 * whose data objects are `present` (key → size). An object is taken as there when
 * the target has its key with the recorded size: objects are immutable and put is atomic.
 */
export function planReplication(missing: readonly ManifestBase[], present: ReadonlyMap<string, number>): ReplicationPlan {
  const manifests = [...missing].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const objects = new Map<string, ObjectRef>()
  const there = new Map<string, number>()
  for (const m of manifests) {
    for (const ref of m.objects) {
      if (present.get(ref.key) === ref.size) there.set(ref.key, ref.size)
      else if (!objects.has(ref.key)) objects.set(ref.key, ref)
    }
  }
  const sum = (xs: Iterable<number>) => [...xs].reduce((a, b) => a + b, 0)
  const list = [...objects.values()]
  return { manifests, objects: list, bytes: sum(list.map((o) => o.size)), present: there.size, presentBytes: sum(there.values()) }
}

/**
 * The candidates the target's own policy keeps, judged together with the backups
 * the target already has, at `now`. A candidate it would remove is not copied, so a
 * target that keeps fewer backups than the primary is not refilled after each prune.
 * Backups younger than the policy's minimum age are always kept, so the common case
 * (copy right after a backup) needs nothing from the target's manifests.
 */
export function wantedByPolicy(candidates: readonly BackupSummary[], atTarget: readonly BackupSummary[], policy: RetentionPolicy, now: Date): Set<string> {
  const ids = new Set(candidates.map((c) => c.id))
  const kept = applyRetention([...atTarget.filter((b) => !ids.has(b.id)), ...candidates], policy, now).keep
  return new Set(kept.map((k) => k.id).filter((id) => ids.has(id)))
}

/** True when every candidate is younger than the policy's minimum age (so it is kept whatever else exists). */
export function allYoung(candidates: readonly BackupSummary[], policy: RetentionPolicy, now: Date): boolean {
  return candidates.every((c) => now.getTime() - Date.parse(c.endedAt) < policy.minAgeHours * 3_600_000)
}

/** Lag figures from a plan: seconds since the oldest missing backup ended (0 when none), bytes still to copy. */
export function lagOf(plan: ReplicationPlan, now: Date): { seconds: number; bytes: number; backups: number } {
  const oldest = plan.manifests.reduce<number | undefined>((min, m) => {
    const t = Date.parse(m.endedAt)
    return Number.isFinite(t) && (min === undefined || t < min) ? t : min
  }, undefined)
  const seconds = oldest === undefined ? 0 : Math.max(0, Math.floor((now.getTime() - oldest) / 1000))
  return { seconds, bytes: plan.bytes, backups: plan.manifests.length }
}
