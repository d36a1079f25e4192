/**
 * Reading committed manifests in bulk, for the commands that look at every backup
 * (replicate, prune, verify). Manifests are small JSON objects; they are read a few
 * at a time in parallel because a repository holds hundreds of them.
 */
import { TidemarkError } from '../errors.ts'
import { mapLimit } from './parallel.ts'
import { manifestKey, readAll, SOURCES, type ManifestBase, type Repository, type SourceName } from './repository/index.ts'

const READ_PARALLEL = 8

/** A backup id with its source. */
export interface BackupRef {
  source: SourceName
  id: string
}

/** A manifest as stored: its exact bytes (so a copy is byte-identical) and its parsed form. */
export interface StoredManifest {
  manifest: ManifestBase
  bytes: Buffer
}

/** Every committed backup of every source, each source's oldest first. */
export async function listBackups(repo: Repository): Promise<BackupRef[]> {
  const out: BackupRef[] = []
  for (const source of SOURCES) for (const id of await repo.listManifestIds(source)) out.push({ source, id })
  return out
}

/** The manifests of `refs`, read in parallel; TM_ERR_MANIFEST_NOT_FOUND for a missing one, TM_ERR_REPO_CORRUPT for unreadable JSON. */
export function readManifests(repo: Repository, refs: readonly BackupRef[]): Promise<ManifestBase[]> {
  return mapLimit(refs, READ_PARALLEL, (r) => repo.readManifest(r.source, r.id))
}

/** Like readManifests, keeping each manifest's stored bytes. */
export function readStoredManifests(repo: Repository, refs: readonly BackupRef[]): Promise<StoredManifest[]> {
  return mapLimit(refs, READ_PARALLEL, async (r) => {
    const key = manifestKey(r.source, r.id)
    let bytes: Buffer
    try {
      bytes = await readAll(await repo.sink.get(key))
    } catch (err) {
      if (repo.sink.isNotFound(err)) throw new TidemarkError('TM_ERR_MANIFEST_NOT_FOUND', `backup ${r.id} vanished from ${repo.sink.description} while being read (pruned meanwhile?)`, { cause: err })
      throw err
    }
    try {
      return { manifest: JSON.parse(bytes.toString('utf8')) as ManifestBase, bytes }
    } catch (err) {
      throw new TidemarkError('TM_ERR_REPO_CORRUPT', `manifest ${key} in ${repo.sink.description} is not valid JSON: ${(err as Error).message}`, { cause: err })
    }
  })
}
