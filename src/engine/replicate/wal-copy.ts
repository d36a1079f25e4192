/**
 * Copying the WAL archive to a secondary without undoing the secondary's own prune:
 * segments that end before the horizon of the base backups the secondary holds
 * (postgres/wal-retention.ts) restore nothing there, and are what its prune removes,
 * so they are not copied. Everything else under the archive prefix is (replicatePrefix).
 */
import type { Sink } from '../../sinks/sink.ts'
import { mapLimit } from '../parallel.ts'
import { keptBases, segmentsBeforeHorizon } from '../postgres/wal-retention.ts'
import { WAL_PREFIX } from '../prune/plan.ts'
import { manifestKey, type ManifestBase, type Repository } from '../repository/index.ts'
import { readJson } from '../repository/json.ts'
import { replicatePrefix, type PrefixOptions, type PrefixResult } from './prefix.ts'
import { backupsAt } from './survey.ts'
import type { ReplicaTarget } from './target.ts'

/** The PostgreSQL manifests the target holds. */
async function postgresManifests(sink: Sink): Promise<ManifestBase[]> {
  const refs = (await backupsAt(sink)).filter((r) => r.source === 'postgres')
  return mapLimit(refs, 8, (r) => readJson<ManifestBase>(sink, manifestKey(r.source, r.id)))
}

/** Which archive keys the target wants: all but segments older than every base backup it holds. Reads the target's manifests. */
export async function walWanted(target: ReplicaTarget): Promise<(key: string) => boolean> {
  const bases = keptBases(await postgresManifests(target.sink).catch((err: unknown) => {
    // A target not initialised yet holds no backups.
    if (target.sink.isNotFound(err)) return []
    throw err
  }))
  return (key) => bases.length === 0 || segmentsBeforeHorizon([key], bases).length === 0
}

/** Copies the WAL archive objects the target lacks and wants (walWanted). Idempotent. */
export async function copyWal(primary: Repository, target: ReplicaTarget, opts: Omit<PrefixOptions, 'filter'> = {}): Promise<PrefixResult> {
  const wanted = await walWanted(target)
  return replicatePrefix(primary, target, WAL_PREFIX, { ...opts, filter: (o) => wanted(o.key) })
}
