/** Reads the committed logical dumps of the repository, oldest first. Reads only. */
import { mapLimit } from '../parallel.ts'
import type { Repository } from '../repository/index.ts'
import { isDumpManifest, type PostgresDumpManifest } from './dump-manifest.ts'

/** Every committed dump, ordered by its restore point. */
export async function listDumps(repo: Repository): Promise<PostgresDumpManifest[]> {
  const all = await mapLimit(await repo.listManifestIds('postgres'), 8, (id) => repo.readManifest('postgres', id))
  return all.filter(isDumpManifest).sort((a, b) => (a.postgres.at < b.postgres.at ? -1 : a.postgres.at > b.postgres.at ? 1 : 0))
}
