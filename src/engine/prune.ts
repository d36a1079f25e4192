/**
 * Prune: plan, then execute (mark-and-sweep, FORMAT.md rule 6). The plan is pure
 * (prune/plan.ts) and is all a dry run shows. Execution holds the writer lease and
 * deletes in the order that keeps every backup whole: manifests first; then the
 * manifests are listed again, and any backup committed meanwhile protects its
 * objects; then data objects, journals and expired locks.
 */
import type { Sink } from '../sinks/sink.ts'
import type { Clock } from './clock.ts'
import { listBackups, readManifests } from './manifests.ts'
import { walRemovable } from './postgres/wal-retention.ts'
import { allManifests, dataObjects, journals, locks } from './prune/gather.ts'
import { planPrune, type PrunePlan } from './prune/plan.ts'
import type { ManifestBase, Repository } from './repository/index.ts'
import { applyRetention, type RetentionPolicy } from './retention.ts'

export { planPrune, WAL_PREFIX, type JournalEntry, type PruneInput, type PrunePlan } from './prune/plan.ts'

/** A retention policy plus the safety margin for unreferenced data (the configuration's `retention` section). */
export interface PrunePolicy extends RetentionPolicy {
  safetyMarginHours: number
}

export interface PruneOptions {
  policy: PrunePolicy
  /** Plan only: nothing is deleted and no lease is taken. */
  dryRun?: boolean
  /** Default: the repository's clock. */
  clock?: Clock
  /** Prefixes never swept as unreferenced (default: the WAL archive). */
  continuous?: readonly string[]
  /** The source's own rule for continuously archived objects, given the backups that stay (default: PostgreSQL's WAL rule, postgres/wal-retention.ts). */
  continuousRemovable?: (kept: readonly ManifestBase[]) => Iterable<string> | Promise<Iterable<string>>
}

/** What was deleted; `protectedByNewBackups` counts planned objects spared because a backup committed meanwhile references them. */
export interface PruneDone {
  manifests: number
  objects: number
  bytes: number
  journals: number
  locks: number
  protectedByNewBackups: number
}

export interface PruneReport {
  dryRun: boolean
  plan: PrunePlan
  deleted?: PruneDone
}

const BATCH = 1000

async function deleteAll(sink: Sink, keys: readonly string[], signal: AbortSignal): Promise<void> {
  for (let i = 0; i < keys.length; i += BATCH) {
    signal.throwIfAborted()
    await sink.delete(keys.slice(i, i + BATCH), { signal })
  }
}

/** Reads the repository and plans a prune at `now`. Reads only. */
export async function planRepositoryPrune(repo: Repository, opts: PruneOptions, now: Date): Promise<{ plan: PrunePlan; manifests: ManifestBase[] }> {
  const safetyMarginMs = opts.policy.safetyMarginHours * 3_600_000
  const manifests = await allManifests(repo)
  const decision = applyRetention(manifests, opts.policy, now)
  const kept = new Set(decision.keep.map((k) => k.id))
  const rule = opts.continuousRemovable ?? walRemovable(repo)
  const removable = new Set(await rule(manifests.filter((m) => kept.has(m.id))))
  const plan = planPrune({
    manifests,
    decision,
    data: await dataObjects(repo.sink),
    journals: await journals(repo.sink, now.getTime() - safetyMarginMs),
    locks: await locks(repo.sink),
    now,
    safetyMarginMs,
    continuous: opts.continuous,
    continuousRemovable: removable,
  })
  return { plan, manifests }
}

/** Object keys referenced by backups that exist now but were not in the plan's view (committed meanwhile). */
async function newlyReferenced(repo: Repository, known: ReadonlySet<string>): Promise<Set<string>> {
  const fresh = (await listBackups(repo)).filter((b) => !known.has(b.id))
  const keys = new Set<string>()
  for (const m of await readManifests(repo, fresh)) for (const o of m.objects) keys.add(o.key)
  return keys
}

/** Deletes what `plan` names, manifests first, re-checking for backups committed meanwhile. */
async function execute(repo: Repository, plan: PrunePlan, known: ReadonlySet<string>, signal: AbortSignal): Promise<PruneDone> {
  await deleteAll(repo.sink, plan.manifests.map((m) => m.key), signal)
  const spared = await newlyReferenced(repo, known)
  const objects = plan.objects.filter((o) => !spared.has(o.key))
  await deleteAll(repo.sink, objects.map((o) => o.key), signal)
  await deleteAll(repo.sink, [...plan.journals.map((j) => j.key), ...plan.locks], signal)
  return {
    manifests: plan.manifests.length,
    objects: objects.length,
    bytes: objects.reduce((a, o) => a + o.size, 0),
    journals: plan.journals.length,
    locks: plan.locks.length,
    protectedByNewBackups: plan.objects.length - objects.length,
  }
}

/**
 * Applies the retention policy to `repo`: deletes the backups it removes and the data
 * no remaining backup references (older than the safety margin). Takes the writer
 * lease (TM_ERR_REPO_LOCKED naming the holder otherwise); TM_ERR_RETENTION_UNSAFE
 * when the policy would delete every backup of a source. Safe to re-run after a failure.
 */
export async function prune(repo: Repository, opts: PruneOptions): Promise<PruneReport> {
  const clock = opts.clock ?? repo.clock
  if (opts.dryRun) return { dryRun: true, plan: (await planRepositoryPrune(repo, opts, clock.now())).plan }
  const lease = await repo.lock('prune')
  try {
    const { plan, manifests } = await planRepositoryPrune(repo, opts, clock.now())
    const deleted = await execute(repo, plan, new Set(manifests.map((m) => m.id)), lease.signal)
    return { dryRun: false, plan, deleted }
  } finally {
    await lease.release()
  }
}
