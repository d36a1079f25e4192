/**
 * Looking at a primary and a target to plan a run (or measure lag): which backups the
 * target lacks, which of them its policy wants, which of their objects it already has.
 */
import { isTidemarkError } from '../../errors.ts'
import { listAll, type Sink } from '../../sinks/sink.ts'
import { listBackups, readStoredManifests, type BackupRef, type StoredManifest } from '../manifests.ts'
import { mapLimit } from '../parallel.ts'
import { DATA_PREFIX, MANIFEST_PREFIX, SOURCES, manifestKey, type ManifestBase, type Repository } from '../repository/index.ts'
import { readJson } from '../repository/json.ts'
import type { BackupSummary, RetentionPolicy } from '../retention.ts'
import { allYoung, planReplication, wantedByPolicy, type ReplicationPlan } from './plan.ts'

/**
 * Above this many objects to look up, the target's data objects are listed (1000 a
 * request) instead of a HEAD each. A backup's manifest names every object it needs,
 * usually a large share of what the target holds, so listing wins early.
 */
const HEAD_LIMIT = 64
const HEAD_PARALLEL = 16

export interface Survey {
  plan: ReplicationPlan
  /** The stored bytes of each manifest to write, by id. */
  manifests: Map<string, StoredManifest>
  /** Backups the target lacks that its own policy would prune at once: not copied. */
  skippedByPolicy: string[]
}

/** Backup ids present at a target, by listing its manifests. */
export async function backupsAt(sink: Sink): Promise<BackupRef[]> {
  const out: BackupRef[] = []
  for (const source of SOURCES) {
    const prefix = `${MANIFEST_PREFIX}${source}/`
    for await (const o of listAll(sink, prefix)) if (o.key.endsWith('.json')) out.push({ source, id: o.key.slice(prefix.length, -'.json'.length) })
  }
  return out
}

async function summariesAt(sink: Sink, refs: readonly BackupRef[]): Promise<BackupSummary[]> {
  return mapLimit(refs, 8, async (r) => {
    const m = await readJson<ManifestBase>(sink, manifestKey(r.source, r.id))
    return { id: m.id, source: m.source, endedAt: m.endedAt }
  })
}

/** The candidates the target's policy wants; all of them when there is no policy or it cannot decide. */
async function filterByPolicy(target: Sink, atTarget: readonly BackupRef[], candidates: StoredManifest[], policy: RetentionPolicy | undefined, now: Date): Promise<Set<string>> {
  const all = new Set(candidates.map((c) => c.manifest.id))
  if (!policy || candidates.length === 0) return all
  const summaries = candidates.map((c) => c.manifest)
  if (allYoung(summaries, policy, now)) return all
  try {
    return wantedByPolicy(summaries, await summariesAt(target, atTarget), policy, now)
  } catch (err) {
    // A policy that refuses to decide (it would delete everything) filters nothing: copying too much is the safe side.
    if (isTidemarkError(err, 'TM_ERR_RETENTION_UNSAFE')) return all
    throw err
  }
}

/** Which of `keys` the target holds, with their sizes (HEAD and listing report the same sizes). */
async function presentAt(target: Sink, keys: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  if (keys.length > HEAD_LIMIT) {
    for await (const o of listAll(target, DATA_PREFIX)) out.set(o.key, o.size)
    return out
  }
  await mapLimit(keys, HEAD_PARALLEL, async (key) => {
    try {
      out.set(key, (await target.head(key)).size)
    } catch (err) {
      if (!target.isNotFound(err)) throw err
    }
  })
  return out
}

/** Surveys what replicating `primary` to `target` would do at `now`. Reads only. */
export async function survey(primary: Repository, target: Sink, policy: RetentionPolicy | undefined, now: Date): Promise<Survey> {
  const atTarget = await backupsAt(target)
  const have = new Set(atTarget.map((r) => `${r.source}/${r.id}`))
  const lacking = (await listBackups(primary)).filter((r) => !have.has(`${r.source}/${r.id}`))
  const stored = await readStoredManifests(primary, lacking)
  const wanted = await filterByPolicy(target, atTarget, stored, policy, now)
  const chosen = stored.filter((s) => wanted.has(s.manifest.id))
  const keys = [...new Set(chosen.flatMap((s) => s.manifest.objects.map((o) => o.key)))]
  const plan = planReplication(chosen.map((s) => s.manifest), await presentAt(target, keys))
  return {
    plan,
    manifests: new Map(chosen.map((s) => [s.manifest.id, s])),
    skippedByPolicy: stored.filter((s) => !wanted.has(s.manifest.id)).map((s) => s.manifest.id),
  }
}
