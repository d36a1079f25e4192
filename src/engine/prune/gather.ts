/** Reading what a prune plan is made from: manifests, data objects, journals and locks. Reads only. */
import { listAll, type ObjectInfo, type Sink } from '../../sinks/sink.ts'
import { listBackups, readManifests } from '../manifests.ts'
import { mapLimit } from '../parallel.ts'
import { DATA_PREFIX, JOURNAL_PREFIX, LOCK_PREFIX, type ManifestBase, type Repository } from '../repository/index.ts'
import { readJson } from '../repository/json.ts'
import type { JournalEntry } from './plan.ts'

async function listed(sink: Sink, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = []
  for await (const o of listAll(sink, prefix)) out.push(o)
  return out
}

/** Reads a small JSON object, or undefined when it vanished since it was listed. */
async function readIfThere<T>(sink: Sink, key: string): Promise<T | undefined> {
  try {
    return await readJson<T>(sink, key)
  } catch (err) {
    if (sink.isNotFound(err)) return undefined
    throw err
  }
}

/** Every committed manifest. An unreadable one fails the prune: its references are unknown, so nothing could be swept safely. */
export async function allManifests(repo: Repository): Promise<ManifestBase[]> {
  return readManifests(repo, await listBackups(repo))
}

/** Every data object with its size and last modification time. */
export function dataObjects(sink: Sink): Promise<ObjectInfo[]> {
  return listed(sink, DATA_PREFIX)
}

/** Journals; the references of those modified since `cutoff` (a backup still writing them) are read. */
export async function journals(sink: Sink, cutoff: number): Promise<JournalEntry[]> {
  return mapLimit(await listed(sink, JOURNAL_PREFIX), 8, async (info) => {
    if (info.lastModified.getTime() < cutoff) return { info }
    const j = await readIfThere<{ objects?: { key: string }[] }>(sink, info.key)
    return { info, refs: (j?.objects ?? []).map((o) => o.key) }
  })
}

/** Lock objects with their expiry; unreadable ones are left out (never deleted by prune). */
export async function locks(sink: Sink): Promise<{ key: string; expiresAt: string }[]> {
  const out: { key: string; expiresAt: string }[] = []
  for (const info of await listed(sink, LOCK_PREFIX)) {
    try {
      const l = await readIfThere<{ expiresAt?: unknown }>(sink, info.key)
      if (typeof l?.expiresAt === 'string') out.push({ key: info.key, expiresAt: l.expiresAt })
    } catch {
      // A damaged lock is the operator's to look at, not ours to remove.
    }
  }
  return out
}
