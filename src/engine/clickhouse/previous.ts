/**
 * What earlier backups stored, for reuse: the entries of the newest committed
 * ClickHouse manifest(s) (every manifest lists everything it needs, so older ones
 * add nothing the newest does not have for units that still exist) and of the
 * journals of backups that did not finish (objects they uploaded before they
 * failed).
 */
import { listAll } from '../../sinks/sink.ts'
import { JOURNAL_PREFIX, type ObjectRef, type Repository } from '../repository/index.ts'
import { readJson } from '../repository/json.ts'
import { isChObject, isClickHouseManifest, type ChObject } from './manifest.ts'

/** Earlier objects, and which of them are known only from journals (not guaranteed to exist). */
export interface PreviousObjects {
  objects: ChObject[]
  fromJournal: Set<string>
}

/**
 * The ids that may be the newest backup: ids sort by time to the second and a
 * random suffix orders those of one second arbitrarily, so all of the last
 * second are taken (their objects are all valid candidates).
 */
export function newestIds(sortedIds: readonly string[]): string[] {
  const last = sortedIds.at(-1)
  if (last === undefined) return []
  const stamp = last.slice(0, last.indexOf('-'))
  return sortedIds.filter((id) => id.startsWith(`${stamp}-`))
}

/** Reads the newest manifest and every journal of the clickhouse source. Read-only. */
export async function previousObjects(repo: Repository): Promise<PreviousObjects> {
  const objects: ChObject[] = []
  const keys = new Set<string>()
  for (const id of newestIds(await repo.listManifestIds('clickhouse'))) {
    const m = await repo.readManifest('clickhouse', id)
    for (const o of isClickHouseManifest(m) ? m.objects : []) {
      if (!isChObject(o) || keys.has(o.key)) continue
      keys.add(o.key)
      objects.push(o)
    }
  }
  const fromJournal = new Set<string>()
  for await (const item of listAll(repo.sink, `${JOURNAL_PREFIX}clickhouse/`)) {
    let journal: { objects?: ObjectRef[] }
    try {
      journal = await readJson<{ objects?: ObjectRef[] }>(repo.sink, item.key)
    } catch (err) {
      // A journal removed meanwhile (committed or pruned) or unreadable is only a lost hint.
      if (repo.sink.isNotFound(err) || (err as { code?: string }).code === 'TM_ERR_REPO_CORRUPT') continue
      throw err
    }
    for (const o of journal.objects ?? []) {
      if (!isChObject(o) || keys.has(o.key)) continue
      keys.add(o.key)
      objects.push(o)
      fromJournal.add(o.key)
    }
  }
  return { objects, fromJournal }
}
