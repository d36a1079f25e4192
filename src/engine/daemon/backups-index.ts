/**
 * The backups as the API lists them: one summary per committed manifest, whatever
 * its source and method. Reads only manifests.
 */
import { TidemarkError } from '../../errors.ts'
import { listBackups, readManifests } from '../manifests.ts'
import { isBackupId, sourceOfBackupId, type ManifestBase, type Repository, type SourceName } from '../repository/index.ts'
import type { BackupSummary } from './facade.ts'

/** A manifest's summary (pure). The restore point is the end time (a base backup's is where its window starts). */
export function summarizeManifest(m: ManifestBase): BackupSummary {
  const pg = (m as { postgres?: { endTime?: string } }).postgres
  return {
    id: m.id,
    source: m.source,
    method: m.method,
    startedAt: m.startedAt,
    endedAt: m.endedAt,
    restorePoint: pg?.endTime ?? m.endedAt,
    objects: m.objects.length,
    storedBytes: m.objects.reduce((n, o) => n + o.size, 0),
    rawBytes: m.objects.reduce((n, o) => n + o.rawSize, 0),
  }
}

/** Every backup (of `source`), oldest first, ended within [from, to]. */
export async function listBackupSummaries(repo: Repository, q: { source?: SourceName; from?: Date; to?: Date }): Promise<BackupSummary[]> {
  const refs = (await listBackups(repo)).filter((r) => q.source === undefined || r.source === q.source)
  const within = (s: BackupSummary) => (q.from === undefined || Date.parse(s.endedAt) >= q.from.getTime()) && (q.to === undefined || Date.parse(s.endedAt) <= q.to.getTime())
  return (await readManifests(repo, refs)).map(summarizeManifest).filter(within).sort((a, b) => Date.parse(a.endedAt) - Date.parse(b.endedAt))
}

/** One backup with its manifest (objects left out: they can be thousands); TM_ERR_MANIFEST_NOT_FOUND when unknown. */
export async function getBackup(repo: Repository, id: string): Promise<BackupSummary & { manifest: Record<string, unknown> }> {
  const source = isBackupId(id) ? sourceOfBackupId(id) : undefined
  if (!source) throw new TidemarkError('TM_ERR_MANIFEST_NOT_FOUND', `"${id}" is not a backup id (they look like 20261128T094000Z-ch-3fa1); list them with GET /v1/backups`)
  let m: ManifestBase
  try {
    m = await repo.readManifest(source, id)
  } catch (err) {
    if (err instanceof TidemarkError && err.code === 'TM_ERR_MANIFEST_NOT_FOUND') throw new TidemarkError('TM_ERR_MANIFEST_NOT_FOUND', `no backup ${id}; list them with GET /v1/backups`, { cause: err })
    throw err
  }
  const { objects: _objects, ...rest } = m
  return { ...summarizeManifest(m), manifest: rest as Record<string, unknown> }
}

/** Sum of the distinct objects referenced by every manifest (a cheap repository size: the WAL archive's unreferenced tail is not counted). */
export async function referencedBytes(repo: Repository): Promise<number> {
  const seen = new Map<string, number>()
  for (const m of await readManifests(repo, await listBackups(repo))) for (const o of m.objects) seen.set(o.key, o.size)
  let n = 0
  for (const v of seen.values()) n += v
  return n
}
