/**
 * What earlier backups stored, for reuse: the entries of the newest committed
 * ClickHouse manifest(s) (every manifest lists everything it needs, so older ones
 * add nothing the newest does not have for units that still exist) and of the
 * journals of backups that did not finish (objects they uploaded before they
 * failed).
 */
import { listAll } from '../../sinks/sink.ts'
import { JOURNAL_PREFIX, newestIds, type ObjectRef, type Repository } from '../repository/index.ts'
import { readJson } from '../repository/json.ts'
import { isChObject, isClickHouseManifest, type ChObject } from './manifest.ts'

/**
 * One partition's (or table's) objects as one earlier backup recorded them: together they
 * hold its rows at `fingerprint`. From a journal, a set is one whole object that may not
 * exist (its backup failed); deltas are never taken from journals, since their base is
 * only known from a manifest.
 */
export interface EarlierSet {
  objects: ChObject[]
  fingerprint: string
  fromJournal: boolean
}

/** Earlier sets, newest first. */
export interface PreviousObjects {
  sets: EarlierSet[]
}

/** The sets of one manifest: its objects grouped by unit. */
function setsOf(objects: readonly ChObject[]): EarlierSet[] {
  const byUnit = new Map<string, ChObject[]>()
  for (const o of objects) {
    const k = [o.database, o.table, o.partitionId, o.tableIdentity].join('\0')
    byUnit.set(k, [...(byUnit.get(k) ?? []), o])
  }
  return [...byUnit.values()].map((list) => ({ objects: list, fingerprint: (list[0] as ChObject).fingerprint, fromJournal: false }))
}

/** Reads the newest manifest and every journal of the clickhouse source. Read-only. */
export async function previousObjects(repo: Repository): Promise<PreviousObjects> {
  const sets: EarlierSet[] = []
  const keys = new Set<string>()
  for (const id of newestIds(await repo.listManifestIds('clickhouse')).reverse()) {
    const m = await repo.readManifest('clickhouse', id)
    for (const set of setsOf(isClickHouseManifest(m) ? m.objects.filter(isChObject) : [])) {
      // Two manifests of the same second may list the same objects: one set is enough.
      if (set.objects.every((o) => keys.has(o.key))) continue
      for (const o of set.objects) keys.add(o.key)
      sets.push(set)
    }
  }
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
      if (!isChObject(o) || o.afterBlock !== undefined || keys.has(o.key)) continue
      keys.add(o.key)
      sets.push({ objects: [o], fingerprint: o.fingerprint, fromJournal: true })
    }
  }
  return { sets }
}
